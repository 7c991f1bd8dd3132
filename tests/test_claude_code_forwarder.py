"""The Claude Code hook's per-user forwarder (instrumentation/integrations/hook_forwarder.py), where Claude Code
runs the hook: each event is the command ``hook install`` wrote, started as a new process with a minimal
environment and the documented JSON on stdin (as in tests/test_claude_code_hook_config.py; the payload shapes are
the real binary's, see tests/data/claude_code_2.1.332_session.jsonl; tests/test_claude_code_real.py runs the same
command under the real binary). What is checked is what the forwarder must not change: the same spans as a process
per event, nothing lost or sent twice across a collector outage, an event it cannot answer still recorded, and no
other configuration or user served by it."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from foothold.collector.service import Collector
from foothold.instrumentation.integrations import hook_forwarder
from tests.claude_code_harness import Bridge
from tests.conftest import rows
from tests.test_claude_code_hook_config import install, state_dir

pytestmark = pytest.mark.usefixtures("stop_hook_forwarders")
HOOK_MODULE = "foothold.instrumentation.integrations.claude_code"


def run(command: str, home: Path, session: str, payload: dict[str, Any], **env: str) -> set[str]:
    """One hook event as Claude Code starts it; returns the modules the process imported (``-X importtime``)."""
    body = {"session_id": session, "transcript_path": str(home / "t.jsonl"), "cwd": str(home / "project"), **payload}
    done = subprocess.run(
        ["sh", "-c", command],
        input=json.dumps(body),
        capture_output=True,
        text=True,
        env={
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "FOOTHOLD_FINGERPRINT_KEY": "k",
            "FOOTHOLD_HOOK_TIMEOUT": "10",  # the machine is shared: a slow delivery must not be given up
            "PYTHONPROFILEIMPORTTIME": "1",
            **env,
        },
        timeout=60,
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 0 and done.stdout == "", done.stderr[-2000:]
    hook_forwarder.flush(str(state_dir(home)))  # the forwarder sends after answering: done before we look
    assert all(line.startswith("import time:") for line in lines), done.stderr[-2000:]  # nothing else on stderr
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def session(command: str, home: Path, session_id: str, **env: str) -> list[set[str]]:
    """A short session: a start, a Bash call that appends to ~/.bashrc, a Write; returns each event's imports."""
    project = home / "project"
    project.mkdir(parents=True, exist_ok=True)
    (home / ".bashrc").write_text("export A=1\n")
    append = {"command": "echo 'export PATH=/tmp/x:$PATH' >> ~/.bashrc"}
    write = {"file_path": str(project / "notes.md"), "content": "# notes\n"}

    def appended() -> None:
        with (home / ".bashrc").open("a") as bashrc:
            bashrc.write("export PATH=/tmp/x:$PATH\n")

    def written() -> None:
        (project / "notes.md").write_text("# notes\n")

    loaded = [run(command, home, session_id, {"hook_event_name": "SessionStart", "source": "startup"}, **env)]
    calls: list[tuple[str, str, dict[str, Any], Callable[[], None]]] = [
        ("toolu_a", "Bash", append, appended),
        ("toolu_b", "Write", write, written),
    ]
    for use_id, tool, tool_input, effect in calls:
        call = {"tool_name": tool, "tool_input": tool_input, "tool_use_id": use_id}
        loaded.append(run(command, home, session_id, {"hook_event_name": "PreToolUse", **call}, **env))
        effect()
        post = {"hook_event_name": "PostToolUse", **call, "tool_response": {"stdout": ""}}
        loaded.append(run(command, home, session_id, post, **env))
    return loaded


def spans(collector: Collector, session_id: str, home: Path) -> list[tuple[Any, ...]]:
    """The session's spans as comparable values: ids, times and the home directory taken out."""
    found = rows(
        collector,
        "SELECT SpanName, StatusCode, SpanAttributes FROM {db}.otel_traces"
        " WHERE SpanAttributes['gen_ai.conversation.id'] = {{s:String}}",
        s=session_id,
    )
    volatile = {"gen_ai.conversation.id"}
    return sorted(
        (name, status, sorted((k, v.replace(str(home), "~")) for k, v in attributes.items() if k not in volatile))
        for name, status, attributes in found
    )


def held_locks(home: Path) -> list[Path]:
    return sorted(state_dir(home).glob("forwarder-*.sock.lock"))


def test_later_events_are_answered_by_the_forwarder_with_the_same_spans(collector: Collector, tmp_path: Path) -> None:
    """The first event handles itself and leaves a forwarder; every later event's process imports none of the
    hook's modules, and the session's spans equal those of the same session with a process per event."""
    endpoint = collector.endpoint_url("otlp_http")
    forwarded, alone = tmp_path / "forwarded", tmp_path / "alone"
    forwarded.mkdir()
    alone.mkdir()
    loaded = session(install(forwarded, "--endpoint", endpoint), forwarded, "s-forwarded")
    assert HOOK_MODULE in loaded[0]
    assert [HOOK_MODULE in modules for modules in loaded[1:]] == [False] * 4
    assert len(held_locks(forwarded)) == 1
    socket_file = state_dir(forwarded) / held_locks(forwarded)[0].name.removesuffix(".lock")
    assert stat.S_ISSOCK(socket_file.lstat().st_mode) and stat.S_IMODE(socket_file.lstat().st_mode) == 0o600

    command = install(alone, "--endpoint", endpoint)
    loaded = session(command, alone, "s-alone", FOOTHOLD_HOOK_FORWARDER="0")
    assert all(HOOK_MODULE in modules for modules in loaded) and not held_locks(alone)

    expected = spans(collector, "s-alone", alone)
    assert [name for name, _, _ in expected] == sorted(
        ["claude_code SessionStart", "execute_tool Bash", "execute_tool Write", "artifact file", "artifact file"]
    )
    assert spans(collector, "s-forwarded", forwarded) == expected


def test_a_collector_outage_loses_nothing_and_sends_nothing_twice(collector: Collector, tmp_path: Path) -> None:
    """The collector is down for a while (nothing listens on its port) and comes back on the same address: the
    forwarder spooled what it could not send and the first event after delivers all of it, each span once."""
    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = install(home, "--endpoint", f"http://127.0.0.1:{port}")
    session(command, home, "s-outage")  # 3 of its 5 events send spans (a PreToolUse keeps state only)
    assert len(list((state_dir(home) / "spool").glob("*.json"))) == 3

    target = int(collector.endpoint_url("otlp_http").rsplit(":", 1)[1])
    relay = Bridge(socket.create_server(("127.0.0.1", port)), lambda: socket.create_connection(("127.0.0.1", target)))
    try:
        run(command, home, "s-outage", {"hook_event_name": "Stop", "stop_hook_active": False})
    finally:
        relay.close()
    assert not list((state_dir(home) / "spool").iterdir())
    sent = rows(
        collector,
        "SELECT SpanName, count() FROM {db}.otel_traces WHERE SpanAttributes['gen_ai.conversation.id'] = 's-outage'"
        " GROUP BY SpanName ORDER BY SpanName",
    )
    assert sent == [
        ("artifact file", 2),
        ("claude_code SessionStart", 1),
        ("claude_code Stop", 1),
        ("execute_tool Bash", 1),
        ("execute_tool Write", 1),
    ]


def test_an_event_no_forwarder_answers_is_handled_in_its_own_process(collector: Collector, tmp_path: Path) -> None:
    """The forwarder is killed (or its socket left behind by one that died): the next event is recorded all the
    same, in its own process, which starts a new forwarder."""
    home = tmp_path / "home"
    home.mkdir()
    command = install(home, "--endpoint", collector.endpoint_url("otlp_http"))
    run(command, home, "s-killed", {"hook_event_name": "SessionStart", "source": "startup"})
    (lock,) = held_locks(home)
    first = int(lock.read_text())
    os.kill(first, signal.SIGKILL)  # no cleanup: the socket file stays, nothing listens on it
    assert (state_dir(home) / lock.name.removesuffix(".lock")).exists()

    loaded = run(command, home, "s-killed", {"hook_event_name": "UserPromptSubmit", "prompt": "hi"})
    assert HOOK_MODULE in loaded
    assert int(lock.read_text()) != first  # a new forwarder holds the lock
    assert HOOK_MODULE not in run(command, home, "s-killed", {"hook_event_name": "Stop"})
    names = rows(
        collector,
        "SELECT SpanName FROM {db}.otel_traces WHERE SpanAttributes['gen_ai.conversation.id'] = 's-killed'"
        " ORDER BY SpanName",
    )
    assert names == [("claude_code SessionStart",), ("claude_code Stop",), ("claude_code UserPromptSubmit",)]


def test_the_forwarder_serves_only_its_own_configuration(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request with another configuration's key (another endpoint, other flags, other code) gets no answer, so
    its client handles it itself; changing the configuration starts another forwarder."""
    home = tmp_path / "home"
    home.mkdir()
    endpoint = collector.endpoint_url("otlp_http")
    run(install(home, "--endpoint", endpoint), home, "s-cfg", {"hook_event_name": "SessionStart"})
    (lock,) = held_locks(home)
    monkeypatch.chdir(state_dir(home))  # a Unix socket's path is limited to ~107 bytes: this one is relative
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(lock.name.removesuffix(".lock"))
        client.sendall(b"5\nother0\n" + b'{"hook_event_name": "Stop", "session_id": "s-cfg"}')
        client.shutdown(socket.SHUT_WR)
        assert client.recv(100) == b""  # refused without an answer
    assert hook_forwarder._parse_reply(b"") is None  # which its client reads as "handle it yourself"

    loaded = run(
        install(home, "--endpoint", endpoint, "--no-capture-content"), home, "s-cfg", {"hook_event_name": "Stop"}
    )
    assert HOOK_MODULE in loaded and len(held_locks(home)) == 2
    assert rows(
        collector,
        "SELECT SpanName FROM {db}.otel_traces WHERE SpanAttributes['gen_ai.conversation.id'] = 's-cfg'"
        " ORDER BY SpanName",
    ) == [("claude_code SessionStart",), ("claude_code Stop",)]


def test_a_new_key_file_or_install_means_another_forwarder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forwarder read the fingerprint key and loaded the code when it started: a rewritten key file (or an
    upgraded install, which rewrites the code files) names another socket, so the old forwarder is not asked."""
    key_file = tmp_path / "key"
    key_file.write_text("one\n")
    monkeypatch.setenv("FOOTHOLD_FINGERPRINT_KEY_FILE", str(key_file))
    before = hook_forwarder.key(["--endpoint", "http://127.0.0.1:4318"])
    assert hook_forwarder.key(["--endpoint", "http://127.0.0.1:4318"]) == before  # stable while nothing changes
    key_file.write_text("two, longer\n")
    after = hook_forwarder.key(["--endpoint", "http://127.0.0.1:4318"])
    assert hook_forwarder.socket_name(after) != hook_forwarder.socket_name(before)
    assert str(Path(hook_forwarder.__file__).parent / "claude_code.py") in after.decode()  # the code's stat too


@pytest.fixture(scope="module")
def wheel_venv(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed as users get it (foothold/ in site-packages, instrumentation/ nested in it),
    not this checkout's editable mapping. The dependencies are this test venv's, added by a .pth line: a path a
    .pth adds has its own .pth files (the editable finder among them) left unprocessed, so `foothold` can only come
    from the wheel."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    here = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "opentelemetry").is_dir())
    (site_packages / "test-deps.pth").write_text(f"{here}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(site_packages),
            str(built_wheel),
        ],
        check=True,
        timeout=300,
    )
    return python


def test_a_wheel_install_finds_its_forwarder(collector: Collector, tmp_path: Path, wheel_venv: Path) -> None:
    """The forwarder's key names the hook's code files from the client script's own place; a wheel lays them out
    unlike the editable install (instrumentation/ inside foothold/). Installed from the wheel, the command runs the
    wheel's client, later events are served by the forwarder and the spans arrive."""
    located = subprocess.run(  # not from the checkout's directory: its foothold/ would be found first
        [str(wheel_venv), "-c", "import foothold.instrumentation as i; print(i.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert "site-packages/foothold/instrumentation/" in located, located
    home = tmp_path / "home"
    home.mkdir()
    # not from the checkout's directory: its foothold/ would be found first
    command = install(home, "--endpoint", collector.endpoint_url("otlp_http"), python=str(wheel_venv), cwd=tmp_path)
    assert "site-packages/foothold/instrumentation/integrations/hook_forwarder.py" in command, command
    loaded = session(command, home, "s-wheel")
    assert HOOK_MODULE in loaded[0]
    assert [HOOK_MODULE in modules for modules in loaded[1:]] == [False] * 4  # the forwarder answered them
    names = rows(
        collector,
        "SELECT SpanName FROM {db}.otel_traces WHERE SpanAttributes['gen_ai.conversation.id'] = 's-wheel'"
        " ORDER BY SpanName",
    )
    assert [name for (name,) in names] == sorted(
        ["claude_code SessionStart", "execute_tool Bash", "execute_tool Write", "artifact file", "artifact file"]
    )
