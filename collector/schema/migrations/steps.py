"""The vocabulary of frozen migrations: steps holding literal SQL, rendered for a store's topology.

Nothing here reads the live schema (``ddl.py``, ``sql.py``, ``semconv``): a released migration must render
the same statements in every later release, because stores out there ran exactly those. So a step kind's
rendering never changes once released; a new need gets a new step kind.

Topology, as ``ddl.py`` renders it: on one node a table ``T`` is just ``T``; on a cluster it is ``T_local``
(a ``Replicated*`` engine and ``ON CLUSTER`` unless ``replicated`` is false, i.e. no Keeper) plus ``T``, a
Distributed table over it; views read and write the ``_local`` tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SOURCE = "{source}"  # where a view's literal SELECT names its source table (replaced, not str.format'ed)


class Placement(Protocol):
    """Where a store lives (``ddl.Topology`` satisfies it); read structurally so no live module is imported."""

    @property
    def database(self) -> str: ...

    @property
    def cluster(self) -> str | None: ...

    @property
    def replicated(self) -> bool: ...


def local(place: Placement, name: str) -> str:
    return f"{name}_local" if place.cluster else name


def on_cluster(place: Placement) -> str:
    return f" ON CLUSTER '{place.cluster}'" if place.cluster and place.replicated else ""


@dataclass(frozen=True)
class CreateTable:
    """``CREATE TABLE IF NOT EXISTS``; on a cluster the ``_local`` table and a Distributed table over it."""

    name: str
    columns: str  # column and index definitions, literal
    order_by: str
    partition_by: str
    shard_key: str  # the Distributed table's sharding expression
    engine: str = "MergeTree"
    engine_args: str = ""
    primary_key: str = ""
    settings: str = "index_granularity = 8192"

    def render(self, place: Placement) -> list[str]:
        db, table = place.database, local(place, self.name)
        if place.cluster and place.replicated:
            zk_path = f"'/clickhouse/tables/{{shard}}/{db}/{table}'"
            args = ", ".join(a for a in (zk_path, "'{replica}'", self.engine_args) if a)
            engine = f"Replicated{self.engine}({args})"
        else:
            engine = f"{self.engine}({self.engine_args})"
        statements = [
            f"CREATE TABLE IF NOT EXISTS {db}.{table}{on_cluster(place)} ({self.columns}\n)\n"
            f"ENGINE = {engine}\nPARTITION BY {self.partition_by}\n"
            + (f"PRIMARY KEY {self.primary_key}\n" if self.primary_key else "")
            + f"ORDER BY {self.order_by}\n"
            f"SETTINGS {self.settings}"
        ]
        if place.cluster:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {db}.{self.name}{on_cluster(place)} AS {db}.{table}\n"
                f"ENGINE = Distributed('{place.cluster}', '{db}', '{table}', {self.shard_key})"
            )
        return statements


@dataclass(frozen=True)
class CreateView:
    """``CREATE MATERIALIZED VIEW IF NOT EXISTS … TO``; ``select`` names its source as ``{source}``."""

    name: str
    source: str
    target: str
    select: str

    def render(self, place: Placement) -> list[str]:
        db = place.database
        select = self.select.replace(SOURCE, f"{db}.{local(place, self.source)}")
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{self.name}{on_cluster(place)}\n"
            f"TO {db}.{local(place, self.target)} AS{select}"
        ]


@dataclass(frozen=True)
class AlterTable:
    """``ALTER TABLE … {clause}`` on the (local) table; ``distributed`` repeats it on the Distributed table,
    which a column change needs (the Distributed table has its own column list) and a setting must not get.

    The clause must be idempotent, so a migration cut short by a crash can run again: ``ADD COLUMN IF NOT
    EXISTS``, ``MODIFY SETTING``, ``MODIFY COLUMN``, ``DROP COLUMN IF EXISTS``, ``ADD INDEX IF NOT EXISTS``.
    A new column goes where ``ddl.py`` has it: ``ADD COLUMN IF NOT EXISTS X T AFTER Previous``.
    """

    table: str
    clause: str
    distributed: bool = False

    def render(self, place: Placement) -> list[str]:
        names = [local(place, self.table)] + ([self.table] if place.cluster and self.distributed else [])
        return [f"ALTER TABLE {place.database}.{name}{on_cluster(place)} {self.clause}" for name in names]


@dataclass(frozen=True)
class ModifyQuery:
    """``ALTER TABLE view MODIFY QUERY``: a materialized view derives new rows another way (rows already
    written keep the old derivation; running it again is a no-op). ``select`` names its source as ``{source}``."""

    view: str
    source: str
    select: str

    def render(self, place: Placement) -> list[str]:
        db = place.database
        select = self.select.replace(SOURCE, f"{db}.{local(place, self.source)}")
        return [f"ALTER TABLE {db}.{self.view}{on_cluster(place)} MODIFY QUERY{select}"]


Step = CreateTable | CreateView | AlterTable | ModifyQuery


@dataclass(frozen=True)
class Migration:
    """One schema version: the steps that take a store from the previous version to this one.

    ``fingerprint`` is ``ddl.py``'s rendered schema at this version (``migrations.schema_fingerprint()``):
    the guard test compares the newest with ``ddl.py`` to catch a schema edit that no migration carries.
    Versions 1-4 were frozen after the fact, when ``ddl.py`` had moved on, so they record none.
    """

    version: int
    description: str
    steps: tuple[Step, ...]
    fingerprint: str | None = None

    def statements(self, place: Placement) -> list[str]:
        return [statement for step in self.steps for statement in step.render(place)]
