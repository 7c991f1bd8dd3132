"""Retention: per-table TTLs from config, reconciled on every start, and a disk bound for the embedded store.

TTLs are not a versioned migration: they follow the config. On start the collector compares each table's
TTL clause (``system.tables``) with what ``retention.*_days`` asks for and runs ``ALTER TABLE … MODIFY TTL``
(or ``REMOVE TTL``) only where they differ, on the local tables of a cluster (``ON CLUSTER`` when it is
replicated). ClickHouse then drops expired rows in its merges; tables partitioned by time with
``ttl_only_drop_parts`` drop whole parts, which costs nothing.

The disk bound is for the embedded store (chDB), where nothing else watches the disk: past
``retention.max_store_bytes`` the oldest partitions of the raw tables (spans first, then metrics, tool calls,
artifacts) are dropped, one at a time, never a table's newest partition and never alerts or the export chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from foothold.collector.schema import ddl
from foothold.collector.schema.ddl import Table, Topology

Command = Callable[[str], object]
# A database row: each cell's Python type follows its column's type, so only the caller knows it.
Query = Callable[[str], Sequence[Sequence[Any]]]

# Retention classes, in the order the disk bound gives them up (alerts and the chain never).
CLASSES = ("spans", "metrics", "tool_calls", "artifacts", "alerts", "chain")
_DISK_BOUND_ORDER = ("spans", "metrics", "tool_calls", "artifacts")


@dataclass(frozen=True)
class Retention:
    """Days to keep per retention class (0 or missing: forever) and the embedded store's byte bound (0: none)."""

    days: Mapping[str, int] = field(default_factory=dict)
    max_store_bytes: int = 0


def tables() -> list[Table]:
    """The current schema's tables that expire rows (a migration brings an older store to the same tables)."""
    return [obj for obj in ddl.SCHEMA if isinstance(obj, Table) and obj.ttl_column]


def ttl_expression(table: Table, days: int) -> str:
    """Spelled as ClickHouse prints it back in ``system.tables``, so an unchanged TTL compares equal."""
    return f"toDateTime({table.ttl_column}) + toIntervalDay({days})"


def ttl_statement(table: Table, days: int, topo: Topology) -> str:
    target = f"{topo.database}.{topo.local(table.name)}{topo.on_cluster}"
    if days <= 0:
        return f"ALTER TABLE {target} REMOVE TTL"
    return f"ALTER TABLE {target} MODIFY TTL {ttl_expression(table, days)}"


def render(retention: Retention, topo: Topology) -> list[str]:
    """The TTL statements for this config, for `foothold-audit schema` (tables kept forever are left out)."""
    out = []
    for table in tables():
        days = retention.days.get(table.retention, 0)
        if days > 0:
            out.append(ttl_statement(table, days, topo))
    return out


def _current_ttl(create_query: str) -> str:
    """The table-level TTL clause of a CREATE statement ('' when none)."""
    _, sep, rest = create_query.partition(" TTL ")
    if not sep:
        return ""
    return rest.split(" SETTINGS ", 1)[0].strip()


def apply(command: Command, query: Query, retention: Retention, topo: Topology) -> list[str]:
    """Bring every table's TTL in line with the config; returns the statements run (none when nothing changed)."""
    rows = query(f"SELECT name, create_table_query FROM system.tables WHERE database = '{topo.database}'")
    current = {name: _current_ttl(create) for name, create in rows}
    ran = []
    for table in tables():
        local = topo.local(table.name)
        if local not in current:
            continue  # not created yet (a migration that has not run): the next start applies it
        days = retention.days.get(table.retention, 0)
        wanted = ttl_expression(table, days) if days > 0 else ""
        if current[local] == wanted:
            continue
        statement = ttl_statement(table, days, topo)
        command(statement)
        ran.append(statement)
    return ran


@dataclass(frozen=True)
class DroppedPartition:
    table: str
    partition: str
    bytes: int


def store_bytes(query: Query, database: str) -> int:
    (total,) = query(f"SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{database}' AND active")[0]
    return int(total or 0)


def enforce_disk_bound(
    command: Command, query: Query, database: str, max_bytes: int, classes: Iterable[str] = _DISK_BOUND_ORDER
) -> list[DroppedPartition]:
    """Drop the oldest partitions of the raw tables until the database fits in ``max_bytes``.

    Each round drops the single oldest droppable partition of the first class in ``classes`` that has one,
    so spans go before the tool calls and artifacts derived from them. A table's newest partition stays (it
    is being written), so a bound smaller than one partition per table is not reachable: the function stops.
    """
    if max_bytes <= 0:
        return []
    names = {cls: [t.name for t in tables() if t.retention == cls] for cls in classes}
    dropped: list[DroppedPartition] = []
    while store_bytes(query, database) > max_bytes:
        victim = _oldest_droppable(query, database, [n for cls in classes for n in names[cls]], names, classes)
        if victim is None:
            break
        command(f"ALTER TABLE {database}.{victim.table} DROP PARTITION ID '{victim.partition}'")
        dropped.append(victim)
    return dropped


def _oldest_droppable(
    query: Query, database: str, table_names: list[str], names: Mapping[str, list[str]], classes: Iterable[str]
) -> DroppedPartition | None:
    listed = ", ".join(f"'{n}'" for n in table_names)
    # Partition ids of toDate / toYYYYMM keys (20261201, 202612) sort in time order.
    rows = query(
        "SELECT table, partition_id, sum(bytes_on_disk), "
        "row_number() OVER (PARTITION BY table ORDER BY partition_id DESC) AS recency "
        f"FROM system.parts WHERE database = '{database}' AND active AND table IN ({listed}) "
        "GROUP BY table, partition_id"
    )
    candidates = [(t, p, int(b)) for t, p, b, recency in rows if recency > 1]
    for cls in classes:
        in_class = sorted((c for c in candidates if c[0] in names[cls]), key=lambda c: (c[1], c[0]))
        if in_class:
            return DroppedPartition(*in_class[0])
    return None
