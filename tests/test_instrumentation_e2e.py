"""The agent-side library through the real OTLP exporter into a real collector and chDB.

Tool calls (sync, async, nested, failing), their artifact spans and parentage, a subprocess writing into a
watched location, and planted secrets: checked where a responder would read them, in ClickHouse.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from foothold import instrumentation as fh
from tests.conftest import rows, sdk_agent
from tests.test_instrumentation import _reset, home, instrument  # noqa: F401 (fixture)
from tests.test_redact import planted_secrets


@pytest.fixture
def wired(collector, home):  # noqa: F811
    harness = instrument(home, provider=sdk_agent(collector).provider, capture_content=True)
    yield collector, harness, home
    harness.close()
    _reset()


def test_calls_and_artifacts_arrive_with_attributes_and_parentage(wired):
    collector, harness, home = wired
    workdir = home / "project"
    workdir.mkdir()

    @fh.tool("async_lookup")
    async def lookup(key: str) -> str:
        return key.upper()

    with fh.session(conversation_id="e2e", agent_id="a-1", agent_name="coder", task_id="t-9"):
        with fh.tool_call("write_notes", arguments={"path": "notes.txt"}, cwd=str(workdir)):
            (workdir / "notes.txt").write_text("hello")
            with fh.tool_call("inner_read", arguments={"path": "notes.txt"}):
                (workdir / "notes.txt").read_text()
        assert asyncio.run(lookup("k")) == "K"
        with pytest.raises(ValueError), fh.tool_call("explode"):
            raise ValueError("boom")
        with fh.tool_call("bash", arguments={"command": "echo key >> ~/.ssh/authorized_keys"}, cwd=str(workdir)):
            (home / ".ssh").mkdir(exist_ok=True)
            subprocess.run(["sh", "-c", "echo ssh-ed25519 AAAA attacker >> \"$HOME/.ssh/authorized_keys\""], check=True)
    harness.instrumentation.force_flush()

    calls = rows(collector, "SELECT ToolName, Status, ErrorType, SessionId, AgentName, TaskId, SpanId, ParentSpanId, "
                            "PersistenceKind FROM {db}.tool_calls ORDER BY Timestamp")  # fmt: skip
    by_name = {c[0]: c for c in calls}
    assert [c[0] for c in calls] == ["write_notes", "inner_read", "async_lookup", "explode", "bash"]
    assert all(c[3:6] == ("e2e", "coder", "t-9") for c in calls)
    assert by_name["inner_read"][7] == by_name["write_notes"][6]  # nested call is a child span
    assert by_name["explode"][1:3] == ("Error", "ValueError")
    assert by_name["bash"][8] == "ssh_authorized_keys"  # declared intent, judged on ingest

    artifacts = rows(collector, "SELECT Path, Kind, Action, Source, ToolSpanId, SessionId, PersistenceKind, Technique "
                                "FROM {db}.artifacts WHERE Kind = 'file' ORDER BY Path")  # fmt: skip
    paths = {a[0]: a for a in artifacts}
    notes, keys = paths[str(workdir / "notes.txt")], paths[str(home / ".ssh/authorized_keys")]
    assert notes[4] == by_name["write_notes"][6] and notes[3] == "audit_hook" and notes[5] == "e2e"
    assert keys[4] == by_name["bash"][6] and keys[3] == "snapshot"  # made by a subprocess, seen by the snapshot
    assert keys[6:] == ("ssh_authorized_keys", "T1098.004")


def test_planted_secrets_never_reach_clickhouse_but_their_fingerprints_do(wired):
    collector, harness, home = wired
    secrets = {name: value for name, (_, value) in planted_secrets().items()}
    with fh.session(conversation_id="secrets"):
        for name, value in secrets.items():
            with fh.tool_call("call_api", arguments={"header": f"token {value}", "name": name}) as call:
                call.set_result(f"echoed {value}")
        with fh.credential(secrets["github_classic"], kind="github_token", task_id="t") as declared:
            with fh.tool_call("git_push"):
                pass
    harness.instrumentation.force_flush()

    stored = " ".join(
        str(r) for table in ("otel_traces", "tool_calls", "artifacts") for r in rows(collector, f"SELECT * FROM {{db}}.{table}")
    )
    leaked = [name for name, value in secrets.items() if value in stored]
    assert leaked == []
    assert stored.count("[REDACTED:") >= 2 * len(secrets)
    fingerprints = rows(collector, "SELECT CredentialFingerprint FROM {db}.tool_calls WHERE ToolName = 'git_push'")
    assert fingerprints == [(declared.fingerprint,)]
    assert f"fp={declared.fingerprint}" in stored  # the redacted occurrence correlates with the declaration
