"""Schema versions: a new store is created from ``ddl.py``; an existing one is upgraded by frozen migrations.

Each version is a module ``vNNNN_<what>.py`` here holding one :class:`~.steps.Migration` of literal SQL
(``steps.py``); none imports the live schema, so what a version does never changes after it is released.
The current schema version is the last migration's. The ledger ``foothold_schema_migrations`` records the
versions a store has; on start the collector:

- creates an empty store straight from ``ddl.py`` and records every version;
- upgrades an older store by running the migrations it lacks, in order, each recorded once its statements
  ran (every statement is idempotent, so a run cut short by a crash just runs again);
- refuses a store newer than every migration it knows (a newer release wrote it), saying what to run.

tests/test_migrations.py builds a store fresh and one at version 1 upgraded through every version, in real
chDB on one node and on the two-shard cluster, and requires them equal column for column.

Adding a migration (after changing ``ddl.py``):
1. ``python -m foothold.collector.schema.migrations.draft "what changed" --write`` creates the next
   ``vNNNN_*.py`` with the new tables and views (``CreateTable``, ``CreateView``), a ``ModifyQuery`` per view
   whose SELECT changed, all as literal SQL, and the new ``fingerprint``;
2. for a column, index or setting changed on an existing table, add an ``AlterTable`` step
   (``ADD COLUMN IF NOT EXISTS … AFTER …``, ``MODIFY SETTING``, ``ADD INDEX IF NOT EXISTS``…);
3. run ``pytest tests/test_migrations.py``: it names any table or view where the upgraded store still differs.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import re
from collections.abc import Callable

from foothold.collector.schema import ddl
from foothold.collector.schema import retention as retention_ttl
from foothold.collector.schema.ddl import Topology
from foothold.collector.schema.migrations.steps import CreateTable, Migration, Placement
from foothold.collector.schema.retention import Retention

LEDGER_TABLE = "foothold_schema_migrations"

# The ledger is what tells versions apart, so it never changes: frozen like a migration.
LEDGER = CreateTable(
    name=LEDGER_TABLE,
    columns="""
    Version UInt32,
    Description String,
    AppliedAt DateTime64(3) DEFAULT now64(3)""",
    order_by="Version",
    partition_by="tuple()",
    shard_key="Version",
    engine="ReplacingMergeTree",
)

_MODULE = re.compile(r"v(\d{4})_\w+")


class SchemaVersionError(Exception):
    """The store's schema is one this release cannot work with; the message says what to run instead."""


def _load() -> tuple[Migration, ...]:
    found: list[Migration] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        match = _MODULE.fullmatch(info.name)
        if not match:
            continue
        migration = getattr(importlib.import_module(f"{__name__}.{info.name}"), "MIGRATION", None)
        if not isinstance(migration, Migration) or migration.version != int(match.group(1)):
            raise ImportError(f"{info.name}.py must define MIGRATION = Migration(version={int(match.group(1))}, …)")
        found.append(migration)
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise ImportError(f"schema migrations must be numbered 1, 2, 3… without gaps; found {numbers}")
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _load()
LATEST = MIGRATIONS[-1].version


def schema_fingerprint() -> str:
    """A digest of ``ddl.py``'s rendered schema (one node, replicated cluster; whitespace folded): it moves
    with every change that a store would see, and only with those."""
    digest = hashlib.sha256()
    for topo in (Topology(database="foothold"), Topology(database="foothold", cluster="cluster")):
        for statement in ddl.render_schema(topo):
            digest.update(" ".join(statement.split()).encode() + b";\n")
    return digest.hexdigest()[:16]


def bootstrap_statements(place: Placement) -> list[str]:
    on_cluster = f" ON CLUSTER '{place.cluster}'" if place.cluster and place.replicated else ""
    return [f"CREATE DATABASE IF NOT EXISTS {place.database}{on_cluster}", *LEDGER.render(place)]


def render_all(topo: Topology, retention: Retention | None = None) -> list[str]:
    """A new store's statements, then the configured TTLs: what `foothold-audit schema` prints."""
    statements = bootstrap_statements(topo) + ddl.render_schema(topo)
    return statements + (retention_ttl.render(retention, topo) if retention else [])


def upgrade_statements(from_version: int, place: Placement) -> list[str]:
    """What upgrading a store at ``from_version`` runs (`foothold-audit schema --upgrade-from N`)."""
    return [s for m in MIGRATIONS if m.version > from_version for s in m.statements(place)]


def migrate(command: Callable[[str], object], query_versions: Callable[[str], set[int]], topo: Topology) -> list[int]:
    """Create or upgrade the store's schema; returns the versions recorded now (none when it was current)."""
    for statement in bootstrap_statements(topo):
        command(statement)
    ledger = f"{topo.database}.{LEDGER_TABLE}"
    done = query_versions(f"SELECT Version FROM {ledger} FINAL")
    if done and max(done) > LATEST:
        raise SchemaVersionError(
            f"the store's database {topo.database} is at schema version {max(done)}, but this foothold-audit "
            f"knows versions up to {LATEST}: a newer release created or upgraded it. Run that release or a newer "
            "one against this store (pip install -U foothold-audit); an older one must not write to it."
        )
    pending = [m for m in MIGRATIONS if m.version not in done]
    if not done:  # a new store: the current schema in one go, all versions recorded by one insert
        for statement in ddl.render_schema(topo):
            command(statement)
        _record(command, ledger, pending)
        return [m.version for m in pending]
    for migration in pending:
        for statement in migration.statements(topo):
            command(statement)
        _record(command, ledger, [migration])
    return [m.version for m in pending]


def _record(command: Callable[[str], object], ledger: str, migrations: list[Migration]) -> None:
    """One insert, so a crash records all of these versions or none (then they run again: idempotent)."""
    if not migrations:
        return
    values = ", ".join(f"({m.version}, '{_quote(m.description)}')" for m in migrations)
    command(f"INSERT INTO {ledger} (Version, Description) VALUES {values}")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
