"""Claude Code hook latency: wall time of one ``foothold-audit hook claude-code`` event, as Claude Code waits for it.

    python -m benchmarks.bench_hook [--calls 30] [--endpoint URL]

Method. Every event is a fresh process fed a realistic payload on stdin, timed from spawn to exit on the
monotonic clock. A call is PreToolUse, the tool's effect (not timed), PostToolUse, rotating Bash
(``git status``), Edit (the file really changes) and Read. HOME is a temp dir with typical dotfiles, SSH
keys, agent folders and a 600 KB ``~/.claude.json``; the project is a git repository; system paths are the
real ones. Spans go to an in-process OTLP/HTTP sink that answers 200 at once (or to ``--endpoint``), so
export is a real HTTP round trip without a collector's load on the machine. Each configuration's first call
is a warm-up (page cache, first-sight hashing) and is not counted; p99 of a few dozen samples is about
the maximum.

Breakdown: the bare interpreter (``python -c pass``); import time by package group from one Pre and one
Post run with ``PYTHONPROFILEIMPORTTIME=1`` (self times summed, nothing counted twice; importtime itself adds a
little); the watch-list snapshot in-process, first sight (every watched file hashed) against a warm start
from the states the hook persists (only stats). The rest of the wall time is the hook's work and exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.common import median, percentile, print_machine, progress, table

MODULE_ENTRY = [sys.executable, "-m", "foothold.instrumentation.integrations.claude_code"]
# Import time by the package a module belongs to (longest prefix wins); anything else is "stdlib, other".
GROUPS = {
    "CLI framework (typer, rich, pydantic)": (
        "typer",
        "rich",
        "pydantic",
        "pydantic_core",
        "annotated_types",
        "typing_inspection",
        "click",
        "shellingham",
        "markdown_it",
        "mdurl",
        "pygments",
        "foothold.cli",
        "foothold.dashboards",
    ),
    "classifier (bashlex builds its LALR tables; rules YAML)": ("bashlex", "yaml", "foothold.detections"),
    "OTLP/HTTP export (SDK exporter: requests, protobuf; hook: http.client, ssl)": (
        "opentelemetry.exporter",
        "opentelemetry.proto",
        "google",
        "requests",
        "urllib3",
        "charset_normalizer",
        "idna",
        "certifi",
        "ssl",
        "_ssl",
        "http",
        "email",
    ),
    "OpenTelemetry API and SDK": ("opentelemetry",),
    "foothold instrumentation": ("foothold",),
}
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)")


class _Sink(BaseHTTPRequestHandler):
    """OTLP/HTTP receiver that takes every request and answers an empty ExportTraceServiceResponse."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def sandbox(root: Path) -> tuple[Path, Path]:
    home, project = root / "home", root / "home" / "src" / "app"
    files = {
        ".bashrc": "export PATH=$HOME/bin:$PATH\n" * 40,
        ".profile": "umask 022\n" * 10,
        ".zshrc": "autoload -U compinit\n" * 30,
        ".gitconfig": "[user]\n\tname = Dev\n",
        ".ssh/authorized_keys": "ssh-ed25519 AAAAC3Nza dev@laptop\n",
        ".ssh/id_ed25519.pub": "ssh-ed25519 AAAA\n",
        ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "A" * 400,
        ".ssh/known_hosts": "github.com ssh-ed25519 AAAA\n" * 50,
        ".ssh/config": "Host *\n  IdentitiesOnly yes\n",
        ".claude.json": json.dumps({"projects": {f"/src/p{i}": {"history": ["x" * 200] * 10} for i in range(280)}}),
        ".claude/settings.json": "{}\n",
        ".claude/CLAUDE.md": "Be brief.\n" * 20,
        **{f".claude/agents/agent{i}.md": "You review code.\n" * 30 for i in range(4)},
        **{f".claude/commands/cmd{i}.md": "Run the tests.\n" * 10 for i in range(4)},
        ".config/systemd/user/default.target.wants/sync.service": "[Service]\nExecStart=/usr/bin/true\n",
    }
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    for name, text in {
        "CLAUDE.md": "Use make test.\n",
        ".claude/settings.json": "{}\n",
        "app.py": "print('hi')\n" * 50,
        ".github/workflows/ci.yml": "on: push\njobs: {}\n",
    }.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    return home, project


def calls(project: Path) -> list[tuple[str, dict, dict, object]]:
    """(tool, input, response, effect) shaped like Claude Code's payloads."""
    source = project / "app.py"

    def edit() -> None:
        source.write_text(source.read_text().replace("print('hi')", "print('hello')", 1))

    status = {"stdout": "On branch main\nnothing to commit\n", "stderr": "", "interrupted": False, "isImage": False}
    return [
        (
            "Bash",
            {"command": "git status", "description": "Show working tree status"},
            status,
            lambda: subprocess.run(["git", "status"], cwd=project, capture_output=True),
        ),
        (
            "Edit",
            {
                "file_path": str(source),
                "old_string": "print('hi')",
                "new_string": "print('hello')",
                "replace_all": False,
            },
            {"filePath": str(source), "oldString": "print('hi')", "newString": "print('hello')", "userModified": False},
            edit,
        ),
        (
            "Read",
            {"file_path": str(source)},
            {"type": "text", "file": {"filePath": str(source), "content": source.read_text()[:2000], "numLines": 50}},
            lambda: None,
        ),
    ]


def run_events(
    command: list[str], env: dict[str, str], project: Path, n: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and CPU seconds (user + system of the hook process) per event. On a shared machine the
    wall time mostly measures the wait for a core; the CPU time is what the hook itself costs."""
    seconds: dict[str, list[float]] = {"PreToolUse": [], "PostToolUse": []}
    cpu: dict[str, list[float]] = {"PreToolUse": [], "PostToolUse": []}
    plan = calls(project)
    for i in range(n + 1):
        tool, tool_input, response, effect = plan[i % len(plan)]
        base = {
            "session_id": "bench-session",
            "transcript_path": "/dev/null",
            "cwd": str(project),
            "permission_mode": "default",
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_use_id": f"toolu_{i}",
        }
        for event, extra in (("PreToolUse", {}), ("PostToolUse", {"tool_response": response})):
            text = json.dumps({**base, "hook_event_name": event, **extra})
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            done = subprocess.run(command, input=text, capture_output=True, text=True, env=env, cwd=project)
            elapsed = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode or done.stdout:
                raise SystemExit(f"{' '.join(command)} answered {done.returncode} {done.stdout!r} {done.stderr!r}")
            if i:
                seconds[event].append(elapsed)
                cpu[event].append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
            if event == "PreToolUse":
                effect()  # type: ignore[operator]
    return seconds, cpu


def import_groups(command: list[str], env: dict[str, str], project: Path) -> dict[str, Counter]:
    by_event: dict[str, Counter] = {}
    tool, tool_input, response, _ = calls(project)[0]
    base = {
        "session_id": "bench-imports",
        "cwd": str(project),
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_imports",
    }
    for event, extra in (("PreToolUse", {}), ("PostToolUse", {"tool_response": response})):
        done = subprocess.run(
            command,
            input=json.dumps({**base, "hook_event_name": event, **extra}),
            capture_output=True,
            text=True,
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            cwd=project,
        )
        totals: Counter = Counter()
        for self_us, module in _IMPORT_LINE.findall(done.stderr):
            totals[_group(module)] += int(self_us) / 1000
        by_event[event] = totals
    return by_event


def _group(module: str) -> str:
    best, found = "", "stdlib, other"
    for group, prefixes in GROUPS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, found = prefix, group
    return found


def snapshot_ms(home: Path, project: Path, state: Path, runs: int) -> tuple[float, float]:
    """Median in-process cost of the Pre's snapshot: first sight (every watched file hashed), and a warm start
    from the states an earlier hook process persisted (stats only)."""
    os.environ["FOOTHOLD_HOOK_STATE_DIR"] = str(state)
    from foothold.instrumentation.integrations import hook_files

    def first_sight() -> None:
        hook_files.watcher(str(home)).before(str(project))

    def warm() -> None:
        watcher = hook_files.watcher(str(home))
        watcher.seed(hook_files.load_known())
        watcher.before(str(project))

    earlier = hook_files.watcher(str(home))
    earlier.before(str(project))
    hook_files.save_known(earlier.known())
    figures = []
    for body in (first_sight, warm):
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            body()
            seconds.append(time.perf_counter() - started)
        figures.append(median(seconds) * 1000)
    return figures[0], figures[1]


def _wall(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True)
    return time.monotonic() - started


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_hook", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30, help="tool calls per configuration (two events each)")
    parser.add_argument("--endpoint", help="OTLP/HTTP endpoint to export to (default: an in-process sink)")
    args = parser.parse_args(argv)
    print_machine("Claude Code hook latency")
    foothold = shutil.which("foothold-audit", path=str(Path(sys.executable).parent)) or shutil.which("foothold-audit")
    hook = [foothold, "hook", "claude-code"] if foothold else [sys.executable, "-m", "foothold", "hook", "claude-code"]
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = args.endpoint or f"http://127.0.0.1:{sink.server_port}"
    with tempfile.TemporaryDirectory(prefix="foothold-bench-hook-") as tmp:
        home, project = sandbox(Path(tmp))
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", ""),
            "FOOTHOLD_HOOK_STATE_DIR": f"{tmp}/state",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "FOOTHOLD_FINGERPRINT_KEY": "bench-key",
        }
        configurations = [
            ("foothold-audit hook claude-code", hook, env),
            ("  --deny-persistence", [*hook, "--deny-persistence"], env),
            (
                "  collector down (0.5 s bound)",
                hook,
                {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}"},
            ),
            ("python -m ...claude_code (no CLI framework)", MODULE_ENTRY, env),
        ]
        rows = []
        for label, command, config_env in configurations:
            progress(label.strip())
            walls, cpus = run_events(command, config_env, project, args.calls)
            for event, samples in walls.items():
                rows.append(
                    [
                        label,
                        event,
                        len(samples),
                        percentile(samples, 0.5) * 1000,
                        percentile(samples, 0.99) * 1000,
                        max(samples) * 1000,
                        percentile(cpus[event], 0.5) * 1000,
                        percentile(cpus[event], 0.99) * 1000,
                    ]
                )
        headers = ["command", "event", "n", "p50 ms", "p99 ms", "max ms", "cpu p50 ms", "cpu p99 ms"]
        print(table(headers, rows))

        interpreter = median([_wall([sys.executable, "-c", "pass"]) for _ in range(10)]) * 1000
        groups = import_groups(hook, env, project)
        cold, warm = snapshot_ms(home, project, Path(tmp) / "bench-state", 20)
        print("\nBreakdown of foothold-audit hook claude-code (ms)")
        breakdown = [["bare interpreter (python -c pass)", interpreter, interpreter]]
        breakdown += [
            [f"import: {name}", groups["PreToolUse"][name], groups["PostToolUse"][name]]
            for name in [*GROUPS, "stdlib, other"]
        ]
        breakdown.append(["watch-list snapshot, first sight (in-process)", cold, float("nan")])
        breakdown.append(["watch-list snapshot, warm start (in-process)", warm, float("nan")])
        print(table(["part", "PreToolUse", "PostToolUse"], breakdown))
    sink.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
