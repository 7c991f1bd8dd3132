"""Retention: TTLs from config reach every table (embedded store, and the cluster's local tables), follow config
changes, show in `foothold-audit schema`, and expire rows; the embedded store's disk bound drops old partitions.

Expiry is ClickHouse's own TTL machinery in the real chDB engine: a row dated before the TTL is written, then
``OPTIMIZE … FINAL`` runs the merge that applies TTLs (no waiting for a background merge).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from foothold.cli import app
from foothold.collector.schema import retention
from foothold.collector.schema.retention import Retention
from foothold.collector.store import open_store
from tests.conftest import TEST_CLUSTER

DAY_POLICY = {"spans": 7, "metrics": 3, "tool_calls": 30, "artifacts": 30, "alerts": 365, "chain": 365}


@pytest.fixture
def db() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def ttl_of(client, database: str) -> dict[str, str]:
    rows = client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String}", parameters={"d": database}
    ).result_rows
    return {name: retention._current_ttl(create) for name, create in rows}


def test_every_table_but_the_migrations_gets_its_class_ttl(chdb_dsn, db):
    store = open_store(chdb_dsn, db, retention=Retention(DAY_POLICY))
    try:
        ttls = ttl_of(store.client(), db)
    finally:
        store.close()
    assert ttls["otel_traces"] == "toDateTime(Timestamp) + toIntervalDay(7)"
    assert ttls["otel_traces_trace_id_ts"] == "toDateTime(End) + toIntervalDay(7)"
    assert ttls["tool_calls"] == "toDateTime(Timestamp) + toIntervalDay(30)"
    assert ttls["artifacts"] == "toDateTime(Timestamp) + toIntervalDay(30)"
    assert ttls["alerts"] == "toDateTime(RaisedAt) + toIntervalDay(365)"
    assert ttls["alert_deliveries"] == "toDateTime(DeliveredAt) + toIntervalDay(365)"
    assert ttls["export_chain"] == "toDateTime(ExportedAt) + toIntervalDay(365)"
    assert ttls["collector_metrics"] == "toDateTime(Timestamp) + toIntervalDay(3)"
    assert ttls["foothold_schema_migrations"] == ""


def test_a_config_change_is_applied_on_the_next_start_and_nothing_when_unchanged(chdb_dsn, db):
    open_store(chdb_dsn, db, retention=Retention(DAY_POLICY)).close()
    store = open_store(chdb_dsn, db, migrate=False)
    client = store.client(in_database=False)
    run = lambda policy: retention.apply(  # noqa: E731 (a one-line local helper)
        client.command, lambda sql: client.query(sql).result_rows, policy, store.topology
    )
    try:
        assert run(Retention(DAY_POLICY)) == []  # what ClickHouse prints back compares equal: no ALTER
        changed = run(Retention(DAY_POLICY | {"spans": 14, "metrics": 0}))
        assert sorted(changed) == [
            f"ALTER TABLE {db}.collector_metrics REMOVE TTL",
            f"ALTER TABLE {db}.otel_logs MODIFY TTL toDateTime(TimestampTime) + toIntervalDay(14)",  # raw, as spans
            f"ALTER TABLE {db}.otel_traces MODIFY TTL toDateTime(Timestamp) + toIntervalDay(14)",
            f"ALTER TABLE {db}.otel_traces_trace_id_ts MODIFY TTL toDateTime(End) + toIntervalDay(14)",
        ]
        ttls = ttl_of(client, db)
        assert ttls["otel_traces"].endswith("toIntervalDay(14)") and ttls["collector_metrics"] == ""
    finally:
        store.close()


def test_a_reader_that_does_not_own_the_config_leaves_ttls_alone(chdb_dsn, db):
    open_store(chdb_dsn, db, retention=Retention(DAY_POLICY)).close()
    reader = open_store(chdb_dsn, db)  # e.g. the CLI's direct reader: no retention given
    try:
        assert ttl_of(reader.client(), db)["otel_traces"].endswith("toIntervalDay(7)")
    finally:
        reader.close()


def test_cluster_ttls_go_on_the_local_tables(chdb_dsn, db):
    store = open_store(chdb_dsn, db, TEST_CLUSTER, replicated=False, retention=Retention(DAY_POLICY))
    try:
        ttls = ttl_of(store.client(), db)
    finally:
        store.close()
    assert ttls["tool_calls_local"].endswith("toIntervalDay(30)") and ttls["tool_calls"] == ""  # Distributed
    statements = retention.render(Retention(DAY_POLICY), store.topology.__class__(db, TEST_CLUSTER))
    assert f"ALTER TABLE {db}.otel_traces_local ON CLUSTER '{TEST_CLUSTER}' MODIFY TTL" in "\n".join(statements)


def test_ttl_expires_old_rows_and_keeps_recent_ones(chdb_dsn, db):
    """Old rows go at the merge that applies TTLs; alerts, kept longer, outlive the spans of the same age."""
    store = open_store(chdb_dsn, db, retention=Retention(DAY_POLICY))
    client = store.client()
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(hours=1)
    try:
        for when, span in ((old, "old"), (recent, "recent")):
            client.insert(
                "otel_traces", [[when, "t" + span, span, {}]], ["Timestamp", "TraceId", "SpanId", "SpanAttributes"]
            )
            client.insert(
                "alerts",
                [[when, "r", "high", "t", span, span, when]],
                ["RaisedAt", "RuleId", "Severity", "Title", "FindingKey", "SessionId", "SeenAt"],
            )
        for table in ("otel_traces", "otel_traces_trace_id_ts", "alerts"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")
        assert [r[0] for r in client.query("SELECT SpanId FROM otel_traces").result_rows] == ["recent"]
        assert [r[0] for r in client.query("SELECT TraceId FROM otel_traces_trace_id_ts").result_rows] == ["trecent"]
        assert sorted(r[0] for r in client.query("SELECT FindingKey FROM alerts").result_rows) == ["old", "recent"]
    finally:
        store.close()


def test_the_disk_bound_drops_the_oldest_span_partitions_first(chdb_dsn, db):
    store = open_store(chdb_dsn, db, retention=Retention({}, max_store_bytes=1))
    client = store.client()
    now = datetime.now(UTC)
    try:
        for age in (3, 2, 1, 0):
            when = now - timedelta(days=age)
            client.insert(
                "otel_traces", [[when, f"t{age}", f"s{age}", {}]], ["Timestamp", "TraceId", "SpanId", "SpanAttributes"]
            )
            client.insert("alerts", [[when, "r", f"k{age}", when]], ["RaisedAt", "RuleId", "FindingKey", "SeenAt"])
        dropped = store.enforce_disk_bound()
        # Every table keeps its newest partition, so a 1-byte bound cannot be met: the bound stops there.
        assert [(d.table, d.partition) for d in dropped] == [
            (table, (now - timedelta(days=age)).strftime("%Y%m%d"))
            for age in (3, 2, 1)
            for table in ("otel_traces", "otel_traces_trace_id_ts")
        ]
        assert [r[0] for r in client.query("SELECT SpanId FROM otel_traces").result_rows] == ["s0"]
        assert client.query("SELECT count() FROM alerts").result_rows[0][0] == 4  # alerts are never dropped
    finally:
        store.close()


def test_no_bound_no_drop(chdb_dsn, db):
    store = open_store(chdb_dsn, db, retention=Retention(DAY_POLICY))
    try:
        assert store.enforce_disk_bound() == []
    finally:
        store.close()


def test_schema_command_prints_the_configured_ttls(tmp_path):
    config = tmp_path / "foothold.yaml"
    config.write_text("retention:\n  spans_days: 10\n  tool_calls_days: 30\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["schema", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "ALTER TABLE foothold.otel_traces MODIFY TTL toDateTime(Timestamp) + toIntervalDay(10);" in result.output
    assert "ALTER TABLE foothold.alerts " not in result.output  # 0 keeps forever: no TTL statement
    clustered = CliRunner().invoke(app, ["schema", "--cluster", "c1", "--config", str(config)])
    assert "ALTER TABLE foothold.tool_calls_local ON CLUSTER 'c1' MODIFY TTL" in clustered.output


def test_by_default_nothing_expires_not_even_a_span_stamped_1970(chdb_dsn, db):
    """Retention is opt-in: a TTL counts from the sender's timestamp, so with one a 1970 span would vanish."""
    from foothold.collector.config import RetentionConfig

    store = open_store(chdb_dsn, db, retention=RetentionConfig().policy())
    client = store.client()
    try:
        assert set(ttl_of(client, db).values()) == {""}
        client.insert(
            "otel_traces",
            [[datetime(1970, 1, 1, tzinfo=UTC), "t", "s", {}]],
            ["Timestamp", "TraceId", "SpanId", "SpanAttributes"],
        )
        client.command("OPTIMIZE TABLE otel_traces FINAL")
        assert client.query("SELECT count() FROM otel_traces").result_rows == [(1,)]
    finally:
        store.close()
