"""Claude Code hooks through the real command: payloads shaped per the documented hook contract are fed on
stdin to separate ``hook claude-code`` processes (as Claude Code runs them), and the spans are read back from
chDB. HOME is a temp dir: the authorized_keys the session appends to is never the real one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import rows

HOOK = [sys.executable, "-m", "foothold", "hook"]
SESSION = "cc-session-1"


@pytest.fixture
def sandbox(tmp_path: Path, collector) -> dict:
    home, project = tmp_path / "home", tmp_path / "home" / "project"
    project.mkdir(parents=True)
    (home / ".ssh").mkdir()
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "FOOTHOLD_HOOK_STATE_DIR": str(tmp_path / "state"),
        "FOOTHOLD_FINGERPRINT_KEY": "test-fingerprint-key",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint_url("otlp_http"),
        "FOOTHOLD_HOOK_TIMEOUT": "5",
    }
    return {"home": home, "project": project, "env": env, "state": tmp_path / "state", "collector": collector}


def hook(sandbox: dict, payload: dict, *args: str, event_only: bool = False) -> subprocess.CompletedProcess:
    body = {"session_id": SESSION, "transcript_path": str(sandbox["home"] / "t.jsonl"), "cwd": str(sandbox["project"]),
            "permission_mode": "default", **payload}
    done = subprocess.run([*HOOK, "claude-code", *args], input=json.dumps(body), capture_output=True, text=True,
                          env=sandbox["env"], cwd=sandbox["project"], timeout=60)
    return done


def tool_call(sandbox: dict, use_id: str, name: str, tool_input: dict, act, response: dict | None = None,
              failed: bool = False) -> None:
    """Pre, the tool's effect (what Claude Code would do), then Post: three separate processes' worth."""
    pre = hook(sandbox, {"hook_event_name": "PreToolUse", "tool_name": name, "tool_input": tool_input, "tool_use_id": use_id})
    assert (pre.returncode, pre.stdout) == (0, "")
    act()
    event = "PostToolUseFailure" if failed else "PostToolUse"
    extra = {"error": "Command failed with exit code 1"} if failed else {"tool_response": response or {}}
    post = hook(sandbox, {"hook_event_name": event, "tool_name": name, "tool_input": tool_input, "tool_use_id": use_id,
                          **extra})
    assert (post.returncode, post.stdout) == (0, "")


def sh(command: str, sandbox: dict, check: bool = True) -> None:
    subprocess.run(["sh", "-c", command], env=sandbox["env"], cwd=sandbox["project"], check=check)


def test_a_session_becomes_spans_with_paired_calls_artifacts_and_verdicts(sandbox):
    home, project, collector = sandbox["home"], sandbox["project"], sandbox["collector"]
    keys, notes = home / ".ssh" / "authorized_keys", project / "notes.md"
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    for event in ({"hook_event_name": "SessionStart", "source": "startup"},
                  {"hook_event_name": "UserPromptSubmit", "prompt": f"deploy with {token}"}):
        assert hook(sandbox, event).returncode == 0

    append = "echo 'ssh-ed25519 AAAAC3Nza attacker' >> ~/.ssh/authorized_keys"
    tool_call(sandbox, "toolu_bash", "Bash", {"command": append, "description": "add key"},
              lambda: sh(append, sandbox), {"stdout": "", "stderr": "", "interrupted": False})
    tool_call(sandbox, "toolu_write", "Write", {"file_path": str(notes), "content": "# notes\n"},
              lambda: notes.write_text("# notes\n"), {"type": "create", "filePath": str(notes)})
    tool_call(sandbox, "toolu_edit", "Edit", {"file_path": "notes.md", "old_string": "notes", "new_string": "plan"},
              lambda: notes.write_text("# plan\n"), {"filePath": str(notes)})
    tool_call(sandbox, "toolu_read", "Read", {"file_path": str(notes)}, lambda: notes.read_text(), {"type": "text"})
    tool_call(sandbox, "toolu_fail", "Bash", {"command": "false"}, lambda: sh("false", sandbox, check=False), failed=True)
    for event in ({"hook_event_name": "Notification", "message": "Claude needs your permission"},
                  {"hook_event_name": "Stop", "stop_hook_active": False},
                  {"hook_event_name": "SessionEnd", "reason": "exit"}):
        assert hook(sandbox, event).returncode == 0
    assert not (sandbox["state"] / "hook.log").exists() or "error" not in (sandbox["state"] / "hook.log").read_text()

    calls = rows(collector, "SELECT ToolCallId, ToolName, SessionId, Status, ErrorType, Cwd, PersistenceKind, Technique, "
                            "DurationNs, SpanId, TraceId, Arguments FROM {db}.tool_calls ORDER BY Timestamp")  # fmt: skip
    by_id = {c[0]: c for c in calls}
    assert [c[0] for c in calls] == ["toolu_bash", "toolu_write", "toolu_edit", "toolu_read", "toolu_fail"]  # one span per call
    assert {c[2] for c in calls} == {SESSION} and {c[5] for c in calls} == {str(project)}
    assert len({c[10] for c in calls}) == 1  # one trace per session
    assert by_id["toolu_bash"][6:8] == ("ssh_authorized_keys", "T1098.004")
    assert by_id["toolu_fail"][3:5] == ("Error", "tool_error")
    assert all(c[3] != "Error" for c in calls if c[0] != "toolu_fail")
    assert all(c[8] > 0 for c in calls)  # from the Pre's start to the Post

    artifacts = rows(collector, "SELECT ToolSpanId, Path, Action, Source, PersistenceKind FROM {db}.artifacts ORDER BY Timestamp")
    assert (by_id["toolu_bash"][9], str(keys), "create", "snapshot", "ssh_authorized_keys") in artifacts
    assert (by_id["toolu_write"][9], str(notes), "create", "hook", "") in artifacts
    assert (by_id["toolu_edit"][9], str(notes), "modify", "hook", "") in artifacts
    assert not [a for a in artifacts if a[0] == by_id["toolu_read"][9]]

    spans = rows(collector, "SELECT SpanName, SpanId, SpanAttributes FROM {db}.otel_traces")
    attributes = {r[1]: dict(r[2]) for r in spans}
    bash = attributes[by_id["toolu_bash"][9]]  # the hook's own verdict, before the collector's
    assert bash["foothold.persistence.kind"] == "ssh_authorized_keys" and bash["gen_ai.tool.call.id"] == "toolu_bash"
    assert {"claude_code SessionStart", "claude_code UserPromptSubmit", "claude_code Notification", "claude_code Stop",
            "claude_code SessionEnd"} <= {r[0] for r in spans}
    stored = str(rows(collector, "SELECT * FROM {db}.otel_traces"))
    assert token not in stored and "[REDACTED:" in stored
    assert not any(sandbox["state"].glob("*/*.json"))  # Post consumed the state, SessionEnd removed the session dir


def test_deny_persistence_answers_with_the_documented_json(sandbox):
    append = {"command": "echo key >> ~/.ssh/authorized_keys"}
    pre = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": append, "tool_use_id": "toolu_deny"}
    denied = hook(sandbox, pre, "--deny-persistence")
    assert denied.returncode == 0
    decision = json.loads(denied.stdout)["hookSpecificOutput"]
    assert decision["hookEventName"] == "PreToolUse" and decision["permissionDecision"] == "deny"
    assert "ssh_authorized_keys" in decision["permissionDecisionReason"]

    benign = {**pre, "tool_input": {"command": "ls -la"}, "tool_use_id": "toolu_ok"}
    assert hook(sandbox, benign, "--deny-persistence").stdout == ""
    sandbox["env"]["FOOTHOLD_DENY_PERSISTENCE"] = "1"
    by_env = hook(sandbox, {**pre, "tool_use_id": "toolu_env"}, "--deny-exit-code")
    assert by_env.returncode == 2 and "ssh_authorized_keys" in by_env.stderr and by_env.stdout == ""

    calls = rows(sandbox["collector"], "SELECT ToolCallId, Status, ErrorType, PersistenceKind FROM {db}.tool_calls "
                                       "ORDER BY ToolCallId")  # fmt: skip
    assert calls == [("toolu_deny", "Error", "foothold_denied", "ssh_authorized_keys"),
                     ("toolu_env", "Error", "foothold_denied", "ssh_authorized_keys")]


def test_bad_input_and_a_dead_collector_never_fail_the_agent(sandbox):
    sandbox["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there
    sandbox["env"]["FOOTHOLD_HOOK_TIMEOUT"] = "0.2"
    for text in ("not json", "[]", json.dumps({"hook_event_name": "PostToolUse", "session_id": "s", "tool_name": "Bash"})):
        done = subprocess.run([*HOOK, "claude-code"], input=text, capture_output=True, text=True, env=sandbox["env"],
                              timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    log = (sandbox["state"] / "hook.log").read_text()
    assert "not json" not in log and "foothold hook error" in log


def test_install_merges_with_existing_hooks_idempotently(tmp_path: Path):
    settings = tmp_path / "settings.json"
    theirs = {"type": "command", "command": "my-linter"}
    settings.write_text(json.dumps({"model": "x", "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [theirs]}]}}))
    env = {**os.environ, "HOME": str(tmp_path)}
    for args in ([], ["--deny-persistence"]):
        done = subprocess.run([*HOOK, "install", "--claude-code", "--settings", str(settings), *args],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
    data = json.loads(settings.read_text())
    assert data["model"] == "x"
    pre = data["hooks"]["PreToolUse"]
    assert pre[0] == {"matcher": "Bash", "hooks": [theirs]}
    ours = [h["command"] for g in pre for h in g["hooks"] if "claude-code" in h["command"]]
    assert ours == ["foothold hook claude-code --deny-persistence"]  # replaced, not added twice
    for event in ("SessionStart", "UserPromptSubmit", "PostToolUse", "Notification", "Stop", "SessionEnd"):
        assert [h["command"] for g in data["hooks"][event] for h in g["hooks"]] == ["foothold hook claude-code --deny-persistence"]
