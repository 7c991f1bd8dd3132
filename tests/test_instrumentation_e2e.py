"""The agent-side library through the real OTLP exporter into a real collector and chDB.

Tool calls (sync, async, nested, failing), their artifact spans and parentage, a subprocess writing into a
watched location, and planted secrets: checked where a responder would read them, in ClickHouse.
"""

from __future__ import annotations

import asyncio
import subprocess

import orjson
import pytest

from foothold import instrumentation as fh
from foothold import semconv
from foothold.redact import fingerprint
from tests.conftest import rows, sdk_agent
from tests.test_instrumentation import KEY, _reset, home, instrument  # noqa: F401 (fixture)
from tests.test_redact import every_planted, planted_secrets


@pytest.fixture
def wired(collector, home):
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
            subprocess.run(["sh", "-c", 'echo ssh-ed25519 AAAA attacker >> "$HOME/.ssh/authorized_keys"'], check=True)
    harness.instrumentation.force_flush()

    calls = rows(
        collector,
        "SELECT ToolName, Status, ErrorType, SessionId, AgentName, TaskId, SpanId, ParentSpanId, "
        "PersistenceKind FROM {db}.tool_calls ORDER BY Timestamp",
    )
    by_name = {c[0]: c for c in calls}
    assert [c[0] for c in calls] == ["write_notes", "inner_read", "async_lookup", "explode", "bash"]
    assert all(c[3:6] == ("e2e", "coder", "t-9") for c in calls)
    assert by_name["inner_read"][7] == by_name["write_notes"][6]  # nested call is a child span
    assert by_name["explode"][1:3] == ("Error", "ValueError")
    assert by_name["bash"][8] == "ssh_authorized_keys"  # declared intent, judged on ingest

    artifacts = rows(
        collector,
        "SELECT Path, Kind, Action, Source, ToolSpanId, SessionId, PersistenceKind, Technique "
        "FROM {db}.artifacts WHERE Kind = 'file' ORDER BY Path",
    )
    paths = {a[0]: a for a in artifacts}
    notes, keys = paths[str(workdir / "notes.txt")], paths[str(home / ".ssh/authorized_keys")]
    assert notes[4] == by_name["write_notes"][6] and notes[3] == "audit_hook" and notes[5] == "e2e"
    assert keys[4] == by_name["bash"][6] and keys[3] == "snapshot"  # made by a subprocess, seen by the snapshot
    assert keys[6:] == ("ssh_authorized_keys", "T1098.004")


def stored_text(collector) -> str:
    """Every string held in every table of the test's database, raw (not repr'd, so newlines stay
    newlines), including map keys and values and array elements, NUL-separated. Views hold no data of
    their own; ALIAS columns are not stored."""
    columns = rows(
        collector,
        "SELECT c.table, groupArray(c.name) FROM system.columns AS c "
        "JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = '{db}' AND t.engine NOT LIKE '%View' AND c.default_kind != 'ALIAS' "
        "AND match(c.type, 'String|Map|Array|Tuple|JSON|Object') GROUP BY c.table",
    )
    assert columns, "no tables found"
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, bytes):
            found.append(value.decode("utf-8", "replace"))
        elif isinstance(value, dict):
            for item in value.items():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for table, names in columns:
        walk(rows(collector, f"SELECT {', '.join(f'`{n}`' for n in names)} FROM {{db}}.`{table}`"))
    return "\0".join(found)


def leaked(collector, secrets: dict[str, str]) -> list[str]:
    """Names of the secrets found in the store, whole or as any one line of a multi-line secret."""
    stored = stored_text(collector)
    return [
        name
        for name, secret in secrets.items()
        if any(
            part in stored for part in (secret, *(line for line in secret.splitlines() if not line.startswith("-----")))
        )
    ]


def test_leak_check_finds_raw_multiline_secrets_in_any_table(collector):
    pems = {name: planted_secrets()[name][1] for name in ("pem", "gcp_service_account")}
    table = f"{collector.store.database}.leak_probe"
    client = collector.store.client()
    client.command(f"CREATE TABLE {table} (m Map(String, String), a Array(String)) ENGINE = Memory")
    client.insert(
        table, [[{"k": pems["pem"]}, [orjson.dumps(pems["gcp_service_account"]).decode()]]], column_names=["m", "a"]
    )
    assert leaked(collector, pems) == ["pem", "gcp_service_account"]  # raw, and JSON-escaped line by line
    assert not any(
        value in str(rows(collector, f"SELECT * FROM {table}")) for value in pems.values()
    )  # what str() missed


def test_planted_secrets_never_reach_clickhouse_but_their_fingerprints_do(wired):
    collector, harness, home = wired
    planted = every_planted()
    with fh.session(conversation_id="secrets"):
        for name, (_, _, text) in planted.items():
            with fh.tool_call(name, arguments={"header": text, "name": name}) as call:
                call.set_result(f"echoed {text}")
        with fh.credential(planted["github_classic"][1], kind="github_token", task_id="t") as declared:
            with fh.tool_call("git_push"):
                pass
    harness.instrumentation.force_flush()

    assert leaked(collector, {name: secret for name, (_, secret, _) in planted.items()}) == []
    content = rows(
        collector,
        f"SELECT SpanAttributes['{semconv.GEN_AI_TOOL_NAME}'], SpanAttributes['{semconv.GEN_AI_TOOL_CALL_ARGUMENTS}'], "
        f"SpanAttributes['{semconv.GEN_AI_TOOL_CALL_RESULT}'] FROM {{db}}.otel_traces",
    )
    by_tool = {tool: (arguments, result) for tool, arguments, result in content}
    for name, (kind, secret, _) in planted.items():
        redacted = f"[REDACTED:{kind}:fp={fingerprint(secret, KEY)}]"
        assert all(redacted in text for text in by_tool[name]), name  # in the arguments and in the result
    fingerprints = rows(collector, "SELECT CredentialFingerprint FROM {db}.tool_calls WHERE ToolName = 'git_push'")
    assert fingerprints == [(declared.fingerprint,)]
    assert (
        f"fp={declared.fingerprint}" in by_tool["github_classic"][0]
    )  # the redacted occurrence correlates with the declaration
