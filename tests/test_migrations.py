"""A store created fresh equals one created by an older release and upgraded through every version.

The counterpart is ClickHouse itself (the chDB engine this process runs): both stores are built by running the
real statements, and compared as ClickHouse reports them (``system.tables`` with each object's SHOW CREATE,
``system.columns``, ``system.data_skipping_indices``), so a column's type, codec, default or position, an
index, an engine, ORDER BY, TTL, a setting or a view's query that differs fails here, in whatever words it
was written. "An older release" is the frozen migrations up to that version (collector/schema/migrations/),
which never import the live schema: they are what such a release ran. The cluster variant runs the same on
the two-shard Distributed topology of conftest.py (``store.replicated: false``: no Keeper in chDB).
"""

from __future__ import annotations

import ast
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from foothold.collector.schema import ddl, migrations
from foothold.collector.schema.ddl import Topology
from foothold.collector.schema.migrations import LATEST, MIGRATIONS, draft, schema_fingerprint
from foothold.collector.schema.retention import Retention
from foothold.collector.service import CollectorThread
from foothold.collector.store import Store, StoreError, open_store
from tests.conftest import TEST_CLUSTER, make_settings, rows

POLICY = Retention({"spans": 7, "metrics": 3, "tool_calls": 30, "artifacts": 30, "alerts": 365, "chain": 365})
MIGRATIONS_DIR = Path(migrations.__file__).parent
SINGLE = {"cluster": None}
CLUSTER = {"cluster": TEST_CLUSTER, "replicated": False}

Snapshot = dict[str, dict[str, Any]]


def _database() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def schema_of(store: Store) -> Snapshot:
    """Every object of the store's database as ClickHouse reports it, the database name factored out."""
    client = store.client(in_database=False)
    db = store.database

    def rows(sql: str) -> list[tuple]:
        return client.query(sql, parameters={"db": db}).result_rows

    def plain(value: Any) -> Any:
        return value.replace(f"{db}.", "DB.").replace(f"'{db}'", "'DB'") if isinstance(value, str) else value

    out: Snapshot = {}
    for name, engine, create, sorting, partition, primary, as_select in rows(
        "SELECT name, engine, create_table_query, sorting_key, partition_key, primary_key, as_select "
        "FROM system.tables WHERE database = {db:String}"
    ):
        out[name] = {
            "engine": engine,
            "create": plain(create),
            "keys": (sorting, partition, primary),
            "select": plain(as_select),
            "columns": [],
            "indices": [],
        }
    for table, *column in rows(
        "SELECT table, name, type, default_kind, default_expression, compression_codec FROM system.columns "
        "WHERE database = {db:String} ORDER BY table, position"
    ):
        out[table]["columns"].append(tuple(column))
    for table, *index in rows(
        "SELECT table, name, type_full, expr, granularity FROM system.data_skipping_indices "
        "WHERE database = {db:String} ORDER BY table, name"
    ):
        out[table]["indices"].append(tuple(index))
    # DISTINCT: on the test cluster a Distributed read sees each row once per shard (conftest.py)
    versions = rows(f"SELECT DISTINCT Version FROM {db}.{migrations.LEDGER_TABLE} FINAL ORDER BY Version")
    out["(ledger versions)"] = {"versions": [v for (v,) in versions]}
    return out


def assert_same_schema(upgraded: Snapshot, fresh: Snapshot, how: str) -> None:
    assert sorted(upgraded) == sorted(fresh), f"{how}: the objects differ"
    for name in fresh:
        for key in fresh[name]:
            assert upgraded[name][key] == fresh[name][key], f"{how}: {name} differs in {key}"


def create_at_version(dsn: str, database: str, version: int, place: dict[str, Any]) -> None:
    """What a release whose newest migration was ``version`` left: its statements in order, its ledger."""
    store = open_store(dsn, database, migrate=False, **place)
    try:
        client = store.client(in_database=False)
        for statement in migrations.bootstrap_statements(store.topology):
            client.command(statement)
        for migration in MIGRATIONS[:version]:
            for statement in migration.statements(store.topology):
                client.command(statement)
        client.command(
            f"INSERT INTO {database}.{migrations.LEDGER_TABLE} (Version, Description) "
            f"SELECT number + 1, 'older release' FROM numbers({version})"
        )
    finally:
        store.close()


@pytest.fixture(scope="module")
def fresh(chdb_dsn: str) -> Iterator[dict[str, Store]]:
    """A store created fresh at the latest version, on one node and on the cluster."""
    stores = {
        "single": open_store(chdb_dsn, _database(), retention=POLICY, **SINGLE),
        "cluster": open_store(chdb_dsn, _database(), retention=POLICY, **CLUSTER),
    }
    yield stores
    for store in stores.values():
        store.close()


def upgraded_from(dsn: str, version: int, place: dict[str, Any]) -> Store:
    database = _database()
    create_at_version(dsn, database, version, place)
    return open_store(dsn, database, retention=POLICY, **place)


@pytest.mark.parametrize("start", range(1, LATEST), ids=lambda v: f"from-v{v}")
def test_a_store_upgraded_from_any_older_version_equals_a_fresh_one(chdb_dsn, fresh, start):
    store = upgraded_from(chdb_dsn, start, SINGLE)
    try:
        assert store.migrate() == []  # already current: the open applied everything
        assert_same_schema(schema_of(store), schema_of(fresh["single"]), f"upgraded from v{start}")
    finally:
        store.close()


def test_a_cluster_store_upgraded_from_version_1_equals_a_fresh_one(chdb_dsn, fresh):
    """Local tables, the Distributed tables over them and the views on the two-shard topology."""
    store = upgraded_from(chdb_dsn, 1, CLUSTER)
    try:
        snapshot = schema_of(store)
        assert snapshot["tool_calls"]["engine"] == "Distributed" and "tool_calls_local" in snapshot
        assert_same_schema(snapshot, schema_of(fresh["cluster"]), "cluster upgraded from v1")
    finally:
        store.close()


def test_upgraded_and_fresh_views_derive_the_same_rows(chdb_dsn, fresh):
    """Same DDL should mean same behaviour: one tool-call span into each lands as the same tool_calls row."""
    store = upgraded_from(chdb_dsn, 1, SINGLE)
    span = (
        "INSERT INTO otel_traces (Timestamp, TraceId, SpanId, SpanName, ServiceName, SpanAttributes, Duration) "
        "VALUES ('2026-12-01 10:00:00', 'ab', 'cd', 'execute_tool bash', 'agent', "
        "map('gen_ai.operation.name', 'execute_tool', 'gen_ai.tool.name', 'bash', 'gen_ai.agent.id', 'bot-7', "
        "'gen_ai.conversation.id', 's1', 'foothold.tool.decision', 'accept'), 5)"
    )
    try:
        rows = []
        for target in (store, fresh["single"]):
            client = target.client()
            client.command(span)
            rows.append(client.query("SELECT * FROM tool_calls WHERE SpanId = 'cd'").result_rows)
        assert rows[0] == rows[1] and len(rows[0]) == 1
        assert "bot-7" in rows[0][0] and "accept" in rows[0][0]  # v4's agent fallback and v5's decision
    finally:
        store.close()


def test_the_comparison_sees_a_column_an_upgrade_missed(chdb_dsn, fresh):
    """The check above can fail: a store one column off from the fresh schema is reported, naming the table."""
    store = upgraded_from(chdb_dsn, LATEST - 1, SINGLE)
    try:
        store.client().command("ALTER TABLE tool_calls ADD COLUMN Extra String AFTER Sender")
        with pytest.raises(AssertionError, match="tool_calls differs in create"):
            assert_same_schema(schema_of(store), schema_of(fresh["single"]), "drifted")
    finally:
        store.close()


def test_migrating_again_is_a_no_op_and_a_rerun_after_a_crash_converges(chdb_dsn, fresh):
    store = upgraded_from(chdb_dsn, 1, SINGLE)
    try:
        before = schema_of(store)
        assert store.migrate() == [] and schema_of(store) == before
        # A crash after a migration's statements but before its ledger row: each runs again (twice here).
        client = store.client(in_database=False)
        for migration in MIGRATIONS:
            for statement in migration.statements(store.topology) * 2:
                client.command(statement)
        assert_same_schema(schema_of(store), schema_of(fresh["single"]), "every migration re-run")
    finally:
        store.close()


def test_a_fresh_store_records_every_version(fresh):
    for store in fresh.values():
        assert schema_of(store)["(ledger versions)"]["versions"] == list(range(1, LATEST + 1))


def test_a_store_from_a_newer_release_is_refused_with_the_fix(chdb_dsn):
    database = _database()
    create_at_version(chdb_dsn, database, LATEST, SINGLE)
    store = open_store(chdb_dsn, database, migrate=False)
    store.client().command(f"INSERT INTO {migrations.LEDGER_TABLE} (Version, Description) VALUES ({LATEST + 1}, 'x')")
    store.close()
    with pytest.raises(StoreError) as refused:
        open_store(chdb_dsn, database)
    message = str(refused.value)
    assert f"schema version {LATEST + 1}" in message and f"up to {LATEST}" in message
    assert "pip install -U foothold-audit" in message


def test_a_collector_on_a_newer_store_keeps_serving_says_the_fix_and_loses_nothing(tmp_path, chdb_dsn):
    """Through the real collector: spans are accepted and spooled while the store is refused; once the store is
    one this release knows (here: the newer version's ledger row removed) they are all written."""
    database = _database()
    create_at_version(chdb_dsn, database, LATEST, SINGLE)
    ledger = f"{database}.{migrations.LEDGER_TABLE}"
    keeper = open_store(chdb_dsn, database, migrate=False)
    keeper.client().command(f"INSERT INTO {ledger} (Version, Description) VALUES ({LATEST + 1}, 'from the future')")
    settings = make_settings(tmp_path, chdb_dsn, database, batch={"retry_max_seconds": 0.2})
    try:
        with CollectorThread(settings) as collector:
            assert collector.store is None
            assert f"schema version {LATEST + 1}" in collector.connection.reason
            assert "pip install -U foothold-audit" in collector.connection.reason
            provider = TracerProvider()
            exporter = OTLPSpanExporter(endpoint=collector.endpoint_url("otlp_grpc"), insecure=True)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            provider.get_tracer("t").start_span("kept while refused").end()
            provider.shutdown()
            keeper.client().command(f"DELETE FROM {ledger} WHERE Version = {LATEST + 1}")
            assert rows(collector, "SELECT SpanName FROM {db}.otel_traces") == [("kept while refused",)]
    finally:
        keeper.close()


def test_ddl_changes_come_with_a_migration():
    """The guard: ddl.py renders what the newest migration says it brings a store to."""
    current = schema_fingerprint()
    newest = MIGRATIONS[-1]
    assert newest.fingerprint == current, (
        f"collector/schema/ddl.py changed (its schema fingerprint is now {current}), but the newest migration, "
        f"v{newest.version:04d}, brings a store to {newest.fingerprint}. Stores out there would not get the change. "
        f"Add v{newest.version + 1:04d}: python -m foothold.collector.schema.migrations.draft 'what changed' --write "
        "drafts it (new tables and views, changed view queries; add AlterTable steps for changed columns, see "
        "collector/schema/migrations/__init__.py), then run tests/test_migrations.py. Never edit a released one."
    )


def test_the_draft_of_the_next_version_is_empty_while_ddl_matches_the_versions():
    steps, existing = draft.pending_steps()
    assert steps == [] and "tool_calls" in existing


def test_a_drafted_migration_brings_an_older_store_to_the_changed_schema(chdb_dsn, monkeypatch):
    """The workflow a schema change follows: edit ddl.py (here a view's SELECT and a new table), draft the next
    version with the draft tool, and a store upgraded by it equals one created fresh from the edited ddl.py."""
    view = dataclasses.replace(
        ddl.ARTIFACTS_VIEW, select=ddl.ARTIFACTS_VIEW.select.replace(" AS Size,", " + 1 AS Size,")
    )
    assert view.select != ddl.ARTIFACTS_VIEW.select
    probe = dataclasses.replace(ddl.COLLECTOR_METRICS_TABLE, name="draft_probe")
    monkeypatch.setattr(ddl, "SCHEMA", (*(view if o is ddl.ARTIFACTS_VIEW else o for o in ddl.SCHEMA), probe))
    text = draft.module_text("artifact sizes plus one and a probe table, a description long enough to be wrapped")
    assert max(len(line) for line in text.splitlines()) <= 120  # the house lint passes on the new module
    namespace: dict[str, Any] = {}
    exec(compile(text, "v_next.py", "exec"), namespace)
    drafted = namespace["MIGRATION"]
    assert [type(step).__name__ for step in drafted.steps] == ["ModifyQuery", "CreateTable"]
    assert drafted.version == LATEST + 1 and drafted.fingerprint == schema_fingerprint()

    upgraded = upgraded_from(chdb_dsn, LATEST, SINGLE)  # an older release's store, opened before the change
    upgraded.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, drafted))
    monkeypatch.setattr(migrations, "LATEST", drafted.version)
    fresh = open_store(chdb_dsn, _database(), retention=POLICY)
    upgraded = open_store(chdb_dsn, upgraded.database, retention=POLICY)
    try:
        assert_same_schema(schema_of(upgraded), schema_of(fresh), "upgraded by the drafted version")
    finally:
        upgraded.close()
        fresh.close()


def test_frozen_migrations_never_import_the_live_schema():
    """A migration that read ddl.py, sql.py or semconv would change meaning whenever they do."""
    allowed = {"__future__", "dataclasses", "typing", "foothold.collector.schema.migrations.steps"}
    files = [MIGRATIONS_DIR / "steps.py", *sorted(MIGRATIONS_DIR.glob("v[0-9][0-9][0-9][0-9]_*.py"))]
    assert len(files) == LATEST + 1
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.module in allowed, f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert {alias.name for alias in node.names} <= allowed, f"{path.name} imports {node.names}"


def test_versions_are_numbered_without_gaps_and_described():
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))
    assert all(m.description and m.steps for m in MIGRATIONS)


def test_cluster_upgrades_run_on_every_node_and_column_changes_reach_the_distributed_table():
    statements = migrations.upgrade_statements(4, Topology(database="audit", cluster="prod"))
    assert statements and all(" ON CLUSTER 'prod'" in s for s in statements)
    adds = [s for s in statements if "ADD COLUMN IF NOT EXISTS Decision" in s]
    assert [s.split(" ON CLUSTER")[0] for s in adds] == [
        "ALTER TABLE audit.tool_calls_local",
        "ALTER TABLE audit.tool_calls",
    ]
    settings = [s for s in statements if "MODIFY SETTING" in s]
    assert settings == [
        "ALTER TABLE audit.otel_logs_local ON CLUSTER 'prod' MODIFY SETTING non_replicated_deduplication_window = 1000"
    ]
    assert migrations.upgrade_statements(LATEST, Topology()) == []


def test_the_schema_command_prints_an_upgrade_for_review():
    from typer.testing import CliRunner

    from foothold.cli import app

    result = CliRunner().invoke(app, ["schema", "--upgrade-from", str(LATEST - 1), "--cluster", "c1"])
    assert result.exit_code == 0, result.output
    assert "ALTER TABLE foothold.tool_calls_local ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS" in result.output
    assert "CREATE TABLE IF NOT EXISTS foothold.otel_traces_local" not in result.output  # only what v5 adds
    latest = CliRunner().invoke(app, ["schema", "--upgrade-from", str(LATEST)])
    assert latest.exit_code == 0 and "nothing to run" in latest.output
    unknown = CliRunner().invoke(app, ["schema", "--upgrade-from", str(LATEST + 1)])
    assert unknown.exit_code != 0 and f"from 1 to {LATEST}" in unknown.output
