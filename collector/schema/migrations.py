"""Versioned, idempotent schema migrations.

Each migration is a list of schema objects rendered for the store's topology. Applied versions are
recorded in ``foothold_schema_migrations``; every statement is ``IF NOT EXISTS``, so re-running after a
crash half-way through a migration is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from foothold.collector.schema import ddl
from foothold.collector.schema import retention as retention_ttl
from foothold.collector.schema.ddl import Table, Topology, View
from foothold.collector.schema.retention import Retention


@dataclass(frozen=True)
class TableSetting:
    """``ALTER TABLE … MODIFY SETTING`` on an existing table (its local table on a cluster)."""

    table: str
    setting: str

    def render(self, topo: Topology) -> list[str]:
        return [f"ALTER TABLE {topo.database}.{topo.local(self.table)}{topo.on_cluster} MODIFY SETTING {self.setting}"]


@dataclass(frozen=True)
class AddColumns:
    """``ALTER TABLE … ADD COLUMN IF NOT EXISTS`` (the local table, and on a cluster the Distributed one too)."""

    table: str
    columns: tuple[str, ...]  # "Name Type" definitions

    def render(self, topo: Topology) -> list[str]:
        adds = ", ".join(f"ADD COLUMN IF NOT EXISTS {column}" for column in self.columns)
        names = [topo.local(self.table)] + ([self.table] if topo.cluster else [])
        return [f"ALTER TABLE {topo.database}.{name}{topo.on_cluster} {adds}" for name in names]


@dataclass(frozen=True)
class ViewQuery:
    """``ALTER TABLE … MODIFY QUERY``: an existing materialized view takes its current SELECT from ddl.py
    (rows already written keep the old derivation; re-running is a no-op)."""

    view: View

    def render(self, topo: Topology) -> list[str]:
        select = self.view.select.format(source=f"{topo.database}.{topo.local(self.view.source)}")
        return [f"ALTER TABLE {topo.database}.{self.view.name}{topo.on_cluster} MODIFY QUERY{select}"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    objects: tuple[Table | View | TableSetting | AddColumns | ViewQuery, ...]

    def statements(self, topo: Topology) -> list[str]:
        out: list[str] = []
        for obj in self.objects:
            if isinstance(obj, TableSetting | AddColumns | ViewQuery):
                out += obj.render(topo)
            else:
                out += ddl.render_table(obj, topo) if isinstance(obj, Table) else ddl.render_view(obj, topo)
        return out


# Idempotent exports (collector/spool.py): a batch re-inserted after a crash carries the same
# insert_deduplication_token and is dropped. Plain MergeTree tables only deduplicate with a window;
# the views' targets need it too (with deduplicate_blocks_in_dependent_materialized_views=1 on the
# insert), or tool_calls/artifacts would get the replayed rows twice. Replicated tables deduplicate by
# default (replicated_deduplication_window); the setting is harmless there. A table setting, not a
# column: otel_traces stays column-for-column the OpenTelemetry Collector exporter's table.
DEDUPLICATION_WINDOW = 1000  # inserts remembered per table; a replay re-inserts at most the last one
_DEDUPLICATED = (ddl.TRACES, ddl.TRACE_ID_TS, ddl.TOOL_CALLS, ddl.ARTIFACTS)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "OpenTelemetry traces table, trace-id lookup, tool_calls, artifacts and alerts tables",
        (
            ddl.TRACES_TABLE,
            ddl.TRACE_ID_TS_TABLE,
            ddl.TRACE_ID_TS_VIEW,
            ddl.TOOL_CALLS_TABLE,
            ddl.TOOL_CALLS_VIEW,
            ddl.ARTIFACTS_TABLE,
            ddl.ARTIFACTS_VIEW,
            ddl.ALERTS_TABLE,
            ddl.ALERT_DELIVERIES_TABLE,
        ),
    ),
    Migration(
        2,
        "export_chain (tamper-evident hash chain over exported batches) and collector_metrics (self-telemetry)",
        (ddl.EXPORT_CHAIN_TABLE, ddl.COLLECTOR_METRICS_TABLE),
    ),
    Migration(
        3,
        "insert deduplication window on otel_traces and the tables its views fill (idempotent spool replay)",
        tuple(
            TableSetting(name, f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}")
            for name in _DEDUPLICATED
        ),
    ),
    Migration(
        4,
        "AgentName falls back to gen_ai.agent.id when an agent sets no name (tool_calls and artifacts views)",
        (ViewQuery(ddl.TOOL_CALLS_VIEW), ViewQuery(ddl.ARTIFACTS_VIEW)),
    ),
    Migration(
        5,
        "otel_logs (agents' native telemetry, the contrib exporter's logs table); tool_calls from native tool "
        "events, with the decision, who decided and the reporting telemetry",
        (
            ddl.LOGS_TABLE,
            TableSetting(ddl.LOGS, f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"),
            AddColumns(
                ddl.TOOL_CALLS,
                (
                    "Decision LowCardinality(String) CODEC(ZSTD(1))",
                    "DecisionSource LowCardinality(String) CODEC(ZSTD(1))",
                    "Source LowCardinality(String) CODEC(ZSTD(1))",
                ),
            ),
            ViewQuery(ddl.TOOL_CALLS_VIEW),
            ddl.TOOL_CALLS_FROM_LOGS_VIEW,
        ),
    ),
)


def bootstrap_statements(topo: Topology) -> list[str]:
    statements = [f"CREATE DATABASE IF NOT EXISTS {topo.database}{topo.on_cluster}"]
    return statements + ddl.render_table(ddl.MIGRATIONS_TABLE, topo)


def render_all(topo: Topology, retention: Retention | None = None) -> list[str]:
    """Every statement of every migration, then the configured TTLs: what `foothold-audit schema` prints."""
    statements = bootstrap_statements(topo)
    for migration in MIGRATIONS:
        statements += migration.statements(topo)
    return statements + (retention_ttl.render(retention, topo) if retention else [])


def migrate(command: Callable[[str], object], query_versions: Callable[[str], set[int]], topo: Topology) -> list[int]:
    """Apply the migrations not yet recorded; returns the versions applied now."""
    for statement in bootstrap_statements(topo):
        command(statement)
    table = f"{topo.database}.{ddl.MIGRATIONS}"
    done = query_versions(f"SELECT Version FROM {table} FINAL")
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements(topo):
            command(statement)
        description = migration.description.replace("'", "''")
        command(f"INSERT INTO {table} (Version, Description) VALUES ({migration.version}, '{description}')")
        applied.append(migration.version)
    return applied
