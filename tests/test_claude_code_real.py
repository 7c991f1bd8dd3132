"""The Claude Code hook against the REAL Claude Code binary (npm ``@anthropic-ai/claude-code``, pinned in
``.ci/claude-code/package-lock.json``, installed by ``npm ci`` from this repository: ``make claude-code`` or the
fixture below), driven offline by a scripted stand-in for the Messages API.

Why the counterpart is faithful: everything Claude Code does here is its own code: it plans nothing (the stand-in
scripts the model's tool_use blocks, one per turn), but it runs its real tools (Bash in a real shell, Write, its
CronCreate scheduler), applies its real permission rules and sensitive-file guard, starts the hooks
``foothold-audit hook install`` wrote into the project's settings as new processes with its real payloads and its
real environment (which strips every ``OTEL_*`` variable), keeps its real transcript, and exports its native
telemetry with its own OTLP exporter. The stand-in only has to be a correct Messages API: it answers the streaming
requests the binary sends with well-formed SSE events (the test checks that the binary streamed and that every
request went to it). It runs, with the binary, in a loopback-only network namespace (``unshare -rn``), so nothing
leaves the machine; the collector is reached through a Unix-socket pipe (see ``tests/claude_code_harness.py``).

If npm cannot install the binary the real-binary test skips with npm's reason, and
``test_recorded_payloads_of_the_real_binary_replay_to_the_same_timeline`` replays the hook payloads recorded from
this binary (``tests/data/claude_code_2.1.332_session.jsonl``) through the same hook to the same assertions.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from foothold.instrumentation.integrations import hook_forwarder
from tests import claude_code_harness as harness
from tests.conftest import rows

pytestmark = pytest.mark.usefixtures("stop_hook_forwarders")
ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / ".ci" / "claude-code"
BINARY = PACKAGE_DIR / "node_modules" / ".bin" / "claude"
VERSION = json.loads((PACKAGE_DIR / "package.json").read_text())["dependencies"]["@anthropic-ai/claude-code"]
RECORDED = ROOT / "tests" / "data" / f"claude_code_{VERSION}_session.jsonl"
DENY_RULE = "Bash(rm:*)"
BASHRC_LINE = "export PATH=/tmp/evil:$PATH"


def scenario(home: Path) -> list[tuple[str, dict]]:
    """The model's turns. A script the classifier cannot see into writes ~/.bashrc through Bash (the snapshot
    must catch it, under the session); a direct Write of ~/.bash_profile is denied by Foothold; an ``rm`` is denied
    by Claude Code's own permission rule; a durable CronCreate (a recurring prompt saved in the project) is denied
    by Foothold too. (A Write over an existing file Claude Code refuses before any hook runs: it was not Read.)"""
    return [
        ("Write", {"file_path": "setup.sh", "content": f"printf '%s\\n' '{BASHRC_LINE}' >> \"$HOME/.bashrc\"\n"}),
        ("Bash", {"command": "sh setup.sh && echo hi > ~/made-by-bash.txt", "description": "run the setup"}),
        ("Write", {"file_path": str(home / ".bash_profile"), "content": f"{BASHRC_LINE}\n"}),
        ("Bash", {"command": f"rm -rf {home}/important", "description": "clean up"}),
        ("CronCreate", {"cron": "*/5 * * * *", "prompt": "check the deploy", "durable": True}),
    ]


@pytest.fixture(scope="session")
def claude_binary() -> Path:
    """The pinned binary, installed by ``npm ci`` from the checked-in lock file when it is not there yet."""
    if not BINARY.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot install @anthropic-ai/claude-code (the replay test runs instead)")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0 or not BINARY.exists():
            reason = (done.stderr or done.stdout).strip().splitlines()[-3:]
            pytest.skip(f"npm could not install @anthropic-ai/claude-code@{VERSION}: {' '.join(reason)}")
    version = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, timeout=60)
    if version.returncode != 0 or VERSION not in version.stdout:
        pytest.skip(f"the installed claude binary does not run here: {version.stdout} {version.stderr}")
    return BINARY


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _project(tmp_path: Path) -> tuple[Path, Path]:
    home, project = tmp_path / "home", tmp_path / "home" / "project"
    (project / ".claude").mkdir(parents=True)
    (home / "important").mkdir()
    return home, project


def _install(home: Path, project: Path, endpoint: str, extra: list[str] = ()) -> Path:
    key_file = home / "fingerprint.key"
    key_file.write_text("deployment-key\n")
    settings = project / ".claude" / "settings.json"
    settings.write_text(json.dumps({"permissions": {"deny": [DENY_RULE]}}))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "foothold",
            "hook",
            "install",
            "--claude-code",
            "--settings",
            str(settings),
            "--endpoint",
            endpoint,
            "--deny-persistence",
            "--fingerprint-key-file",
            str(key_file),
            *extra,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr  # an absolute, runnable executable and a key: nothing to warn
    return settings


def _record_payloads(settings: Path, record: Path) -> None:
    """A second hook beside Foothold's on every event, keeping each payload Claude Code sends (install keeps
    other hooks): the replay test's data comes from here."""
    data = json.loads(settings.read_text())
    recorder = f"{sys.executable} -c \"import sys; open({str(record)!r}, 'a').write(sys.stdin.read().strip() + '\\n')\""
    for groups in data["hooks"].values():
        groups.append(
            {
                **({"matcher": "*"} if "matcher" in groups[0] else {}),
                "hooks": [{"type": "command", "command": recorder}],
            }
        )
    settings.write_text(json.dumps(data, indent=2))


def _logs_endpoint(collector) -> bool:
    """Whether this collector takes OTLP logs (Claude Code's native telemetry) at all."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        collector.endpoint_url("otlp_http") + "/v1/logs",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status < 400
    except urllib.error.HTTPError as exc:
        return exc.code not in (404, 405)


def test_the_real_claude_code_session_lands_once_under_its_session(claude_binary, collector, tmp_path: Path):
    home, project = _project(tmp_path)
    endpoint = collector.endpoint_url("otlp_http")
    collector_port = int(endpoint.rsplit(":", 1)[1])
    assert collector_port != 4318  # the default would pass even if the hook ignored its configuration
    settings = _install(home, project, endpoint)
    record = tmp_path / "payloads.jsonl"
    _record_payloads(settings, record)
    script, requests = tmp_path / "script.json", tmp_path / "requests.jsonl"
    script.write_text(json.dumps(scenario(home)))

    prefix, note = harness.unshare_prefix()
    bridges, forward = [], []
    if prefix:
        socket_path = str(tmp_path / "collector.sock")
        bridges.append(harness.unix_to_tcp(socket_path, collector_port))
        forward = ["--forward", f"{collector_port}={socket_path}", "--isolated"]
    api_port = _free_port()
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "ANTHROPIC_API_KEY": "sk-ant-dummy-offline",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        # native telemetry on, to the same collector: it must not add a second row per call
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_LOG_TOOL_DETAILS": "1",
        "OTEL_LOGS_EXPORT_INTERVAL": "500",
        "FOOTHOLD_HOOK_TIMEOUT": "10",  # the machine is shared: delivery may be slow, it must not be given up
    }
    command = [
        *prefix,
        sys.executable,
        "-m",
        "tests.claude_code_harness",
        "--api-port",
        str(api_port),
        "--script",
        str(script),
        "--requests-log",
        str(requests),
        *forward,
        "--",
        str(claude_binary),
        "-p",
        "Set up the project.",
        "--allowedTools",
        "Bash Write Edit Read CronCreate",
        "--output-format",
        "json",
    ]
    try:
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    finally:
        for bridge in bridges:
            bridge.close()
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(done.stdout)
    session = result["session_id"]
    if note:
        print(note)

    sent = [json.loads(line) for line in requests.read_text().splitlines()]
    assert all(r["stream"] for r in sent if "count_tokens" not in r["path"])  # the binary streamed: SSE answered
    assert sum(1 for r in sent if r["body"].get("tools")) >= len(scenario(home)) + 1  # every turn came here

    state = str(home / ".local" / "state" / "foothold" / "claude-code")
    assert hook_forwarder.flush(state) == 1  # the forwarder sends after answering: done before we look
    check_session(collector, session, home, project)
    assert (home / ".bashrc").read_text() == BASHRC_LINE + "\n"  # Bash's write happened
    assert (home / "important").is_dir()  # Claude Code's deny held

    recorded = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    assert {p["hook_event_name"] for p in recorded} >= {"SessionStart", "PreToolUse", "PostToolUse", "Stop"}
    # The first hook process left the per-user forwarder behind, in Claude Code's environment and namespace; it
    # answered the later events (the same spans: check_session above).
    assert hook_forwarder.stop(state) == 1
    if _logs_endpoint(collector):  # helper "logs" lands OTLP logs; one call must stay one row with both sources
        assert rows(
            collector, "SELECT count() FROM {db}.tool_calls FINAL WHERE SessionId = {{s:String}}", s=session
        ) == [(len(scenario(home)),)]
    if os.environ.get("FOOTHOLD_RECORD_CLAUDE_CODE"):  # refresh tests/data from the binary in hand
        _save_recording(recorded, home, project, RECORDED)


def check_session(collector, session: str, home: Path, project: Path) -> None:
    """What an incident responder must see: each call once, in order, under the real session; the denied
    calls denied, and by whom; the artifacts under their call and session; nothing dropped."""
    from foothold.investigation.access import open_reader
    from foothold.investigation.timeline import session_timeline

    assert collector.pipeline.flush(30), "pipeline did not flush in time"  # all received is stored, as rows() does
    if collector.logs_pipeline is not None:
        assert collector.logs_pipeline.flush(30), "logs pipeline did not flush in time"
    with open_reader(collector.settings) as reader:
        timeline = session_timeline(reader, session)
    calls = {c.call_id: c for c in timeline.calls}
    assert [c.call_id for c in timeline.calls] == [f"toolu_{n:02d}" for n in range(5)], timeline.calls
    assert [c.tool for c in timeline.calls] == ["Write", "Bash", "Write", "Bash", "CronCreate"]
    assert [(c.status, c.error_type) for c in timeline.calls] == [
        ("Unset", ""),
        ("Unset", ""),
        ("Error", "foothold_denied"),
        ("Error", "claude_code_denied"),
        ("Error", "foothold_denied"),
    ]
    assert calls["toolu_02"].persistence_kind == "shell_rc"
    assert calls["toolu_04"].persistence_kind == "agent_config"  # a durable CronCreate
    bashrc = [a for a in calls["toolu_01"].artifacts if a.path == str(home / ".bashrc")]
    assert [(a.action, a.source, a.persistence_kind) for a in bashrc] == [("create", "snapshot", "shell_rc")]
    assert not (project / ".claude" / "scheduled_tasks.json").exists() and not (home / ".bash_profile").exists()
    assert str(project / "setup.sh") in [a.path for a in calls["toolu_00"].artifacts]
    assert not any(calls[n].artifacts for n in ("toolu_02", "toolu_03", "toolu_04"))  # refused: nothing written

    orphans = rows(
        collector,
        "SELECT Path, SessionId FROM {db}.artifacts FINAL WHERE SessionId != {{s:String}}",
        s=session,
    )
    assert orphans == []  # no phantom session keyed by trace id
    housekeeping = rows(
        collector,
        "SELECT Path FROM {db}.artifacts FINAL WHERE position(Path, {{p:String}}) = 1",
        p=str(home / ".claude"),
    )
    assert housekeeping == []  # Claude Code's own bookkeeping is not a finding
    denied = rows(
        collector,
        "SELECT SpanAttributes['claude_code.decision_source'], StatusMessage FROM {db}.otel_traces "
        "WHERE SpanAttributes['gen_ai.tool.call.id'] = 'toolu_03'",
    )
    assert denied and denied[0][0] == "claude_code" and "denied" in denied[0][1]


def _save_recording(recorded: list[dict], home: Path, project: Path, target: Path) -> None:
    text = "\n".join(json.dumps(p) for p in recorded)
    text = text.replace(str(project), "{PROJECT}").replace(str(home), "{HOME}")
    target.write_text(text + "\n")


def test_recorded_payloads_of_the_real_binary_replay_to_the_same_timeline(collector, tmp_path: Path):
    """The payloads Claude Code 2.1.332 sent its hooks in the scenario above (recorded by the test, paths
    templated), fed in the same order to the command ``hook install`` wrote, one process per event, with the
    tools' effects replayed between Pre and Post. Faithful because the bytes are the binary's own; what it
    cannot show is a change in a newer binary, which the real-binary test catches when npm can install it."""
    home, project = _project(tmp_path)
    settings = _install(home, project, collector.endpoint_url("otlp_http"))
    hooks = json.loads(settings.read_text())["hooks"]
    lines = RECORDED.read_text().replace("{PROJECT}", str(project)).replace("{HOME}", str(home)).splitlines()
    payloads = [json.loads(line) for line in lines if line.strip()]
    transcript = Path(payloads[0]["transcript_path"])
    transcript.parent.mkdir(parents=True, exist_ok=True)
    effects = {
        "toolu_00": lambda: (project / "setup.sh").write_text(f"printf '%s\\n' '{BASHRC_LINE}' >> \"$HOME/.bashrc\"\n"),
        "toolu_01": lambda: (home / ".bashrc").write_text(BASHRC_LINE + "\n"),
    }
    refusal = f"Permission to use Bash with command rm -rf {home}/important has been denied."
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "FOOTHOLD_HOOK_TIMEOUT": "10",
    }
    for payload in payloads:
        event = payload["hook_event_name"]
        (entry,) = [h for g in hooks[event] for h in g["hooks"] if "hook claude-code" in h["command"]]
        if event == "Stop":  # Claude Code wrote the refusal into its transcript before the turn ended
            result = {"type": "tool_result", "tool_use_id": "toolu_03", "is_error": True, "content": refusal}
            transcript.write_text(json.dumps({"type": "user", "message": {"role": "user", "content": [result]}}) + "\n")
        done = subprocess.run(
            ["sh", "-c", entry["command"]],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        if event == "PreToolUse" and payload["tool_use_id"] in effects:
            effects[payload["tool_use_id"]]()
    hook_forwarder.flush(str(home / ".local" / "state" / "foothold" / "claude-code"))  # it sends after answering
    check_session(collector, payloads[0]["session_id"], home, project)
