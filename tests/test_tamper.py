"""Tamper evidence against an attacker who can write the store but holds neither the chain key nor the mirror.

The attacks are made the way such an attacker would: SQL against the same chDB store the collector wrote
(ALTER UPDATE/DELETE, INSERT), recomputing digests with the method the chain used before it was keyed
(plain SHA-256). Sessions reach the store the real way: OTel SDK -> OTLP/gRPC -> collector -> chDB, with
the materialized views deriving tool_calls and artifacts and the alert rules raising alerts. Each of these
attacks passed `verify` before this change (unkeyed links, mirror off by default, only mirror -> table
compared, audit tables not covered).
"""

from __future__ import annotations

import hashlib
import os
import stat

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from foothold.cli import app
from foothold.collector.chain import (
    ALERTS_CHAIN_SUFFIX,
    SELECT_DIGEST_COLUMNS,
    ChainKeyError,
    batch_digest,
    chain_digest,
    load_chain_key,
    row_digest,
)
from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, sdk_agent
from tests.scenarios import injected_devops_session


def _unkeyed(chain, seq, at, rows, lo, hi, batch, prev) -> str:
    """The link digest as it was computed before the chain was keyed: anyone could recompute it."""
    return hashlib.sha256(f"{chain}\n{seq}\n{at}\n{rows}\n{lo}\n{hi}\n{batch}\n{prev}\n".encode()).hexdigest()


def _links(client, db: str, chain: str) -> list[tuple]:
    return client.query(
        "SELECT Sequence, toUnixTimestamp64Milli(ExportedAt), Rows, toUnixTimestamp64Nano(MinTimestamp), "
        f"toUnixTimestamp64Nano(MaxTimestamp), TraceIds, SpanIds, RowDigests FROM {db}.export_chain "
        "WHERE Chain = {chain:String} ORDER BY Sequence",
        parameters={"chain": chain},
    ).result_rows


def _sync(client, statement: str) -> None:
    client.command(statement, settings={"mutations_sync": 2})


def _rechain(client, db: str, chain: str, digest=_unkeyed) -> None:
    """Recompute every row digest, batch digest and link of ``chain`` from the stored rows: a consistent rewrite."""
    prev = "0" * 64
    for seq, at, rows, lo, hi, traces, spans, _ in _links(client, db, chain):
        stored = {
            (r[1], r[2]): row_digest(r)
            for r in client.query(f"SELECT {SELECT_DIGEST_COLUMNS} FROM {db}.otel_traces").result_rows
        }
        digests = [stored[(t, s)] for t, s in zip(traces, spans, strict=True)]
        batch = batch_digest(traces, spans, digests)
        link = digest(chain, seq, at, rows, lo, hi, batch, prev)
        _sync(
            client,
            f"ALTER TABLE {db}.export_chain UPDATE RowDigests = {digests!r}, BatchDigest = '{batch}', "
            f"PrevDigest = '{prev}', ChainDigest = '{link}' WHERE Chain = '{chain}' AND Sequence = {seq}",
        )
        prev = link


@pytest.fixture
def audited(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, chain={"name": "c1"}, metrics={"enabled": False})
    with CollectorThread(settings) as collector:
        agent = sdk_agent(collector, service="agents")
        injected_devops_session(agent.tracer)
        agent.close()
        assert collector.evaluate_alerts().raised
        report = collector.verify_chain()
        assert report.ok, report.findings
        yield collector


def test_key_and_mirror_are_on_by_default_outside_the_store(audited):
    data_dir = audited.settings.data_dir
    key_file, mirror = data_dir / "chain.key", data_dir / "chain-mirror.jsonl"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(mirror.stat().st_mode) == 0o600
    chains = {orjson.loads(line)["chain"] for line in mirror.read_bytes().splitlines()}
    assert chains == {"c1", "c1" + ALERTS_CHAIN_SUFFIX}
    key = key_file.read_text().strip()
    client, db = audited.store.client(), audited.store.database
    assert client.query(
        f"SELECT count() FROM {db}.export_chain WHERE has(RowDigests, {{k:String}}) OR ChainDigest = {{k:String}}",
        parameters={"k": key},
    ).result_rows == [(0,)]
    report = audited.verify_chain()
    assert report.mirror == str(mirror) and set(report.chains) == {"c1", "c1#alerts"}


@pytest.mark.parametrize("mirror", [True, False])
def test_a_store_rewritten_consistently_without_the_key_is_caught(tmp_path, chdb_dsn, database, mirror):
    settings = make_settings(
        tmp_path, chdb_dsn, database, chain={"name": "c1", "mirror": mirror}, metrics={"enabled": False}
    )
    with CollectorThread(settings) as collector:
        agent = sdk_agent(collector, service="agents")
        injected_devops_session(agent.tracer)
        agent.close()
        assert collector.pipeline.flush(30) and collector.verify_chain().ok
        client, db = collector.store.client(), collector.store.database
        # hide the SSH key: the command, in the span and in the derived tool_calls row, and the chain recomputed
        benign = orjson.dumps({"command": "ls ~/.ssh"}).decode()
        _sync(
            client,
            f"ALTER TABLE {db}.otel_traces UPDATE SpanAttributes = mapUpdate(SpanAttributes, "
            f"map('gen_ai.tool.call.arguments', '{benign}')) WHERE SpanAttributes['gen_ai.tool.call.arguments'] "
            "LIKE '%authorized_keys%'",
        )
        _sync(
            client,
            f"ALTER TABLE {db}.tool_calls UPDATE Arguments = '{benign}' WHERE Arguments LIKE '%authorized_keys%'",
        )
        _rechain(client, db, "c1")
        report = collector.verify_chain()
    kinds = {f.kind for f in report.findings}
    assert "link_altered" in kinds, report.findings
    assert ("mirror_mismatch" in kinds) is mirror
    assert not {"altered", "deleted"} & kinds  # the rows match the rewritten digests: only the key tells


def test_deleted_and_altered_audit_rows_are_caught(audited):
    client, db = audited.store.client(), audited.store.database
    _sync(client, f"ALTER TABLE {db}.tool_calls DELETE WHERE Arguments LIKE '%aws/credentials%'")
    _sync(client, f"ALTER TABLE {db}.artifacts DELETE WHERE Path LIKE '%authorized_keys'")
    _sync(client, f"ALTER TABLE {db}.tool_calls UPDATE HumanCheckpoint = true WHERE Arguments LIKE '%paste.example%'")
    (rule, key), *_ = client.query(f"SELECT RuleId, FindingKey FROM {db}.alerts ORDER BY RuleId").result_rows
    _sync(client, f"ALTER TABLE {db}.alerts DELETE WHERE RuleId = '{rule}' AND FindingKey = '{key}'")
    _sync(client, f"ALTER TABLE {db}.alerts UPDATE Severity = 'info' WHERE RuleId != '{rule}'")
    client.command(f"INSERT INTO {db}.alerts (RaisedAt, RuleId, FindingKey) VALUES (now64(3), 'forged', 'k')")
    client.command(
        f"INSERT INTO {db}.tool_calls (Timestamp, TraceId, SpanId, ToolName) VALUES (now64(9), 't', 's', 'x')"
    )
    report = audited.verify_chain()
    kinds = {f.kind for f in report.findings}
    assert {
        "tool_calls_deleted",
        "artifacts_deleted",
        "tool_calls_altered",
        "tool_calls_inserted",
        "alert_deleted",
        "alert_altered",
        "alert_inserted",
    } <= kinds, kinds
    assert not {"deleted", "altered", "inserted"} & kinds  # the spans themselves are intact


def test_forged_rows_with_an_appended_link_are_caught_even_with_the_key(audited):
    """Without the key the forged link's HMAC fails; with a stolen key, the mirror still has no such link."""
    client, db = audited.store.client(), audited.store.database
    client.command(
        f"INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, SpanName) VALUES "
        "(fromUnixTimestamp64Nano(1790000000000000000), 'f0', 'f1', 'forged')"
    )
    (forged,) = client.query(f"SELECT {SELECT_DIGEST_COLUMNS} FROM {db}.otel_traces WHERE SpanId = 'f1'").result_rows
    digest = row_digest(forged)
    stolen = load_chain_key(audited.settings.chain_key_path)
    findings = {}
    for label, sign in (("unkeyed", _unkeyed), ("stolen key", lambda *a: chain_digest(stolen, *a))):
        seq, prev = client.query(
            f"SELECT Sequence, ChainDigest FROM {db}.export_chain WHERE Chain = 'c1' ORDER BY Sequence DESC LIMIT 1"
        ).result_rows[0]
        seq += 1
        batch = batch_digest(["f0"], ["f1"], [digest])
        link = sign("c1", seq, 1790000000000, 1, 1790000000000000000, 1790000000000000000, batch, prev)
        client.command(
            f"INSERT INTO {db}.export_chain VALUES ('c1', {seq}, fromUnixTimestamp64Milli(1790000000000), 1, "
            "fromUnixTimestamp64Nano(1790000000000000000), fromUnixTimestamp64Nano(1790000000000000000), "
            f"['f0'], ['f1'], ['{digest}'], '{batch}', '{prev}', '{link}')"
        )
        findings[label] = {(f.kind, f.sequence) for f in audited.verify_chain().findings}
        _sync(client, f"ALTER TABLE {db}.export_chain DELETE WHERE Sequence = {seq} AND Chain = 'c1'")
    unkeyed_seq = max(s for _, s in findings["unkeyed"] if s is not None)
    assert ("link_altered", unkeyed_seq) in findings["unkeyed"] and ("unmirrored_link", unkeyed_seq) in findings[
        "unkeyed"
    ]
    assert not any(kind == "link_altered" for kind, _ in findings["stolen key"])
    assert ("unmirrored_link", unkeyed_seq) in findings["stolen key"]


def test_dropping_the_newest_links_and_rows_is_caught_by_the_mirror(audited):
    client, db = audited.store.client(), audited.store.database
    (spans,) = client.query(
        f"SELECT SpanIds FROM {db}.export_chain WHERE Chain = 'c1' ORDER BY Sequence DESC LIMIT 1"
    ).result_rows[0]
    _sync(client, f"ALTER TABLE {db}.otel_traces DELETE WHERE has({list(spans)!r}, SpanId)")
    _sync(client, f"ALTER TABLE {db}.export_chain DELETE WHERE Chain = 'c1' AND Sequence = {audited.chain.sequence}")
    kinds = {f.kind for f in audited.verify_chain().findings}
    assert "mirror_missing" in kinds


def test_the_cli_verifies_with_the_key_and_says_what_it_compared(audited, tmp_path):
    settings = audited.settings
    config = tmp_path / "foothold.yaml"
    values = {
        "data_dir": str(settings.data_dir),
        "store": {"dsn": settings.store_dsn, "database": database_of(audited)},
    }
    values["chain"] = {"name": "c1"}
    config.write_text(yaml.safe_dump(values))
    result = CliRunner().invoke(app, ["verify", "-c", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["mirror"].endswith("chain-mirror.jsonl")


def database_of(collector) -> str:
    return collector.store.database


def test_a_chain_key_readable_by_others_or_missing_is_refused_with_the_fix(tmp_path):
    key_file = tmp_path / "chain.key"
    with pytest.raises(ChainKeyError, match="collector creates it"):
        load_chain_key(key_file)
    key = load_chain_key(key_file, create=True)
    assert len(key) == 32 and load_chain_key(key_file, create=True) == key  # created once, then reused
    os.chmod(key_file, 0o644)
    with pytest.raises(ChainKeyError, match="chmod 600"):
        load_chain_key(key_file)
    link = tmp_path / "link.key"
    link.symlink_to(key_file)
    with pytest.raises(ChainKeyError, match="symlink"):
        load_chain_key(link)


def test_links_a_crash_left_out_of_the_mirror_are_appended_at_the_next_start(tmp_path, chdb_dsn, database):
    """A crash between the link's table write and its mirror append must not read as tampering later."""
    settings = make_settings(tmp_path, chdb_dsn, database, chain={"name": "c1"}, metrics={"enabled": False})
    mirror = settings.data_dir / "chain-mirror.jsonl"
    with CollectorThread(settings) as collector:
        agent = sdk_agent(collector)
        with agent.tracer.start_as_current_span("one"):
            pass
        agent.close()
        assert collector.pipeline.flush(30)
    lines = mirror.read_bytes().splitlines()
    mirror.write_bytes(b"".join(line + b"\n" for line in lines[:-1]))  # the append the crash prevented
    with CollectorThread(settings) as collector:
        assert mirror.read_bytes().splitlines() == lines
        assert collector.verify_chain().ok
