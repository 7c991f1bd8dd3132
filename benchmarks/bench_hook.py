"""Claude Code hook latency: wall and CPU time of one ``foothold-audit hook claude-code`` event, as Claude Code
waits for it, with every call's span verified at the collector.

    python -m benchmarks.bench_hook [--calls 30] [--sink]

Method. Every event is a fresh process (the console script, as ``hook install`` writes it) fed a realistic
payload on stdin, timed from spawn to exit on the monotonic clock; its CPU time is the user + system time of
that process (``getrusage`` of the child). A call is PreToolUse, the tool's effect (not timed), PostToolUse,
rotating Bash (``git status``), Edit (the file really changes) and Read. HOME is a temp dir with typical
dotfiles, SSH keys, agent folders and a 600 KB ``~/.claude.json``; the project is a git repository; system
paths are the real ones. Spans go to a Foothold collector started for the run (``python -m foothold collect``,
chDB), or with ``--sink`` to an in-process OTLP/HTTP sink that counts them and answers at once. At the end every
tool call's ``execute_tool`` span must be at the collector exactly once (the collector-down configuration's
from the spool, resent by later events), else the run fails.

Configurations: the default (the first event of a configuration starts the per-user forwarder, which answers
the later ones: ``fwd cpu`` is its CPU per event, read from /proc since it is not our child); with
``--deny-persistence``; a process per event (``FOOTHOLD_HOOK_FORWARDER=0``, the design before the forwarder);
the collector down. Each configuration's first call is a warm-up (page cache, first-sight hashing, starting the
forwarder), reported on its own and not counted; p99 of a few dozen samples is about the maximum.

Breakdown: the bare interpreter (``python -c pass``); import time by package group from one Pre and one Post
run with ``PYTHONPROFILEIMPORTTIME=1`` (self times summed; importtime itself adds a little), for the
forwarder's client and for a process that handles its event itself; the watch-list snapshot in-process,
first sight (every watched file hashed) against a warm start from the states the hook persists (only stats).
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
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.common import CollectorProcess, cpu_seconds, median, percentile, print_machine, progress, table

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
    "hook forwarder client": ("foothold.instrumentation.integrations.hook_forwarder",),
    "foothold instrumentation": ("foothold",),
}
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)")


class _Sink(BaseHTTPRequestHandler):
    """OTLP/HTTP receiver that takes every request, counts the tool calls in it (the hook sends OTLP/JSON) and
    answers an empty ExportTraceServiceResponse."""

    calls: Counter[str] = Counter()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        for resource_spans in body.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    if span["name"].startswith("execute_tool"):
                        ids = [a["value"].get("stringValue") for a in span["attributes"]]
                        keys = [a["key"] for a in span["attributes"]]
                        if "gen_ai.tool.call.id" in keys:
                            _Sink.calls[ids[keys.index("gen_ai.tool.call.id")]] += 1
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


def calls(project: Path) -> list[tuple[str, dict[str, Any], dict[str, Any], Callable[[], object]]]:
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


@dataclass
class Figures:
    """One configuration's samples: wall and CPU seconds per event (the hook process), by event name."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]
    first: tuple[float, float]  # the first event's wall and CPU (it starts the forwarder)
    forwarder_cpu: float  # CPU seconds the forwarder process(es) spent over the timed events
    call_ids: list[str]


def run_events(command: list[str], env: dict[str, str], project: Path, n: int, tag: str) -> Figures:
    """Wall seconds and CPU seconds (user + system of the hook process) per event. On a shared machine the
    wall time mostly measures the wait for a core; the CPU time is what the hook itself costs. The forwarder's
    CPU is read from /proc: it is not a child of this process."""
    figures = Figures({"PreToolUse": [], "PostToolUse": []}, {"PreToolUse": [], "PostToolUse": []}, (0, 0), 0.0, [])
    plan = calls(project)
    forwarders: list[int] = []
    for i in range(n + 1):
        tool, tool_input, response, effect = plan[i % len(plan)]
        use_id = f"toolu_{tag}_{i}"
        figures.call_ids.append(use_id)
        base = {
            "session_id": f"bench-{tag}",
            "transcript_path": "/dev/null",
            "cwd": str(project),
            "permission_mode": "default",
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_use_id": use_id,
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
            cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
            if i:
                figures.wall[event].append(elapsed)
                figures.cpu[event].append(cpu)
            elif event == "PreToolUse":
                figures.first = (elapsed, cpu)
                forwarders = _forwarder_pids(env)
                figures.forwarder_cpu = -sum(_cpu(pid) for pid in forwarders)
            if event == "PreToolUse":
                effect()
    figures.forwarder_cpu += sum(_cpu(pid) for pid in forwarders)
    return figures


def _forwarder_pids(env: dict[str, str]) -> list[int]:
    directory = Path(env["FOOTHOLD_HOOK_STATE_DIR"])
    return [int(lock.read_text() or 0) for lock in directory.glob("forwarder-*.sock.lock") if lock.read_text()]


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:  # it exited
        return 0.0


def drain(command: list[str], env: dict[str, str], project: Path, spool: Path) -> int:
    """Events with the collector up until the spool is empty (each resends a bounded number of bodies)."""
    from foothold.instrumentation.integrations.hook_forwarder import flush

    events = 0
    flush(str(spool.parent))  # the forwarders send after answering: what they could send is gone by now
    while any(spool.glob("*.json")) and events < 50:
        payload = {"session_id": "bench-drain", "cwd": str(project), "hook_event_name": "Stop"}
        subprocess.run(command, input=json.dumps(payload), capture_output=True, text=True, env=env, cwd=project)
        flush(str(spool.parent))
        events += 1
    return events


def import_groups(command: list[str], env: dict[str, str], project: Path) -> dict[str, defaultdict[str, float]]:
    by_event: dict[str, defaultdict[str, float]] = {}
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
        totals: defaultdict[str, float] = defaultdict(float)
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


def _wall_and_cpu(command: list[str]) -> tuple[float, float]:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, check=True)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_hook", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30, help="tool calls per configuration (two events each)")
    parser.add_argument(
        "--sink",
        action="store_true",
        help="export to an in-process OTLP/HTTP sink that answers at once instead of a Foothold collector "
        "(no collector on the machine; spans are then counted, not stored)",
    )
    args = parser.parse_args(argv)
    print_machine("Claude Code hook latency")
    from foothold.instrumentation.integrations.claude_code_settings import default_command

    hook = default_command()  # what `hook install` writes: python -S …/hook_forwarder.py hook claude-code
    foothold = shutil.which("foothold-audit", path=str(Path(sys.executable).parent)) or shutil.which("foothold-audit")
    console = (
        [foothold, "hook", "claude-code"] if foothold else [sys.executable, "-m", "foothold", "hook", "claude-code"]
    )
    collector = None
    if args.sink:
        sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{sink.server_port}"
    else:
        progress("starting a collector")
        collector = CollectorProcess().start()
        endpoint = collector.http_url
    try:
        with tempfile.TemporaryDirectory(prefix="foothold-bench-hook-") as tmp:
            _measure(args, hook, console, endpoint, collector, Path(tmp))
    finally:
        if collector is not None:
            collector.stop()
    return 0


def _measure(
    args: argparse.Namespace,
    hook: list[str],
    console: list[str],
    endpoint: str,
    collector: CollectorProcess | None,
    tmp: Path,
) -> None:
    from foothold.instrumentation.integrations.hook_forwarder import stop

    home, project = sandbox(tmp)
    state = tmp / "state"
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "FOOTHOLD_HOOK_STATE_DIR": str(state),
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "FOOTHOLD_FINGERPRINT_KEY": "bench-key",
    }
    configurations = [
        ("installed command (python -S hook_forwarder.py)", "main", hook, env),
        ("  the console script (foothold-audit hook …)", "console", console, env),
        ("  --deny-persistence", "deny", [*hook, "--deny-persistence"], env),
        ("  a process per event (FOOTHOLD_HOOK_FORWARDER=0)", "alone", hook, {**env, "FOOTHOLD_HOOK_FORWARDER": "0"}),
        ("  collector down", "down", hook, {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}),
    ]
    rows, first_rows, expected = [], [], []
    try:
        for label, tag, command, config_env in configurations:
            progress(label.strip())
            figures = run_events(command, config_env, project, args.calls, tag)
            expected += figures.call_ids
            events = sum(len(samples) for samples in figures.wall.values())
            for event, samples in figures.wall.items():
                cpus = figures.cpu[event]
                rows.append(
                    [
                        label,
                        event,
                        len(samples),
                        percentile(samples, 0.5) * 1000,
                        percentile(samples, 0.99) * 1000,
                        max(samples) * 1000,
                        percentile(cpus, 0.5) * 1000,
                        percentile(cpus, 0.99) * 1000,
                        figures.forwarder_cpu / events * 1000 if tag != "alone" else float("nan"),
                    ]
                )
            first_rows.append([label, figures.first[0] * 1000, figures.first[1] * 1000])
        resent = drain(hook, env, project, state / "spool")
        headers = ["command", "event", "n", "p50 ms", "p99 ms", "max ms", "cpu p50 ms", "cpu p99 ms", "fwd cpu ms/ev"]
        print(table(headers, rows))
        print("\nFirst event of each configuration (PreToolUse; it starts that configuration's forwarder)")
        print(table(["command", "wall ms", "cpu ms"], first_rows))
        print(f"\n{verify(collector, expected, resent)}")

        bare = [_wall_and_cpu([sys.executable, "-c", "pass"]) for _ in range(10)]
        interpreter = median([wall for wall, _ in bare]) * 1000
        interpreter_cpu = median([cpu for _, cpu in bare]) * 1000
        client = import_groups(hook, env, project)
        alone = import_groups(hook, {**env, "FOOTHOLD_HOOK_FORWARDER": "0"}, project)
        cold, warm = snapshot_ms(home, project, tmp / "bench-state", 20)
    finally:
        stop(str(state))
    print("\nBreakdown (ms): imports of one event's process, self times by package group")
    breakdown = [["bare interpreter (python -c pass), wall", interpreter, interpreter, interpreter, interpreter]]
    breakdown.append(["bare interpreter (python -c pass), CPU", *[interpreter_cpu] * 4])
    breakdown += [
        [
            f"import: {name}",
            client["PreToolUse"][name],
            client["PostToolUse"][name],
            alone["PreToolUse"][name],
            alone["PostToolUse"][name],
        ]
        for name in [*GROUPS, "stdlib, other"]
    ]
    nan = float("nan")
    breakdown.append(["watch-list snapshot, first sight (in-process)", nan, nan, cold, nan])
    breakdown.append(["watch-list snapshot, warm start (in-process)", nan, nan, warm, nan])
    print(table(["part", "client Pre", "client Post", "own process Pre", "own process Post"], breakdown))


def verify(collector: CollectorProcess | None, expected: list[str], resent: int) -> str:
    """Every call's span arrived, once (the collector stores what it received; nothing is deduplicated here)."""
    if collector is None:
        got = dict(_Sink.calls)
    else:
        collector.flush()
        got = {
            call_id: int(count)
            for call_id, count in collector.query(
                "SELECT SpanAttributes['gen_ai.tool.call.id'], count() FROM otel_traces"
                " WHERE SpanName LIKE 'execute_tool%' GROUP BY 1"
            )
        }
    missing = [c for c in expected if got.get(c, 0) == 0]
    doubled = [c for c in expected if got.get(c, 0) > 1]
    where = "the collector" if collector is not None else "the sink"
    if missing or doubled:
        raise SystemExit(f"spans lost at {where}: {missing[:5]} ({len(missing)}), sent twice: {doubled[:5]}")
    return (
        f"Spans verified at {where}: all {len(expected)} tool calls arrived once each "
        f"(the collector-down ones from the spool, once it was back; {resent} extra event(s) needed)."
    )


if __name__ == "__main__":
    sys.exit(main())
