"""Opening the ClickHouse store: embedded chDB (``chdb:///path``) or a server (``http(s)://…``).

Both go through clickhouse-connect's one client API. chDB has two constraints this module turns into
clear errors: one process at a time may own a chDB path (we hold a lock file beside it, so the second
process is told who owns it), and one process may have only one chDB path open at a time.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from foothold.collector.config import InsertConfig
from foothold.collector.schema import migrations, retention
from foothold.collector.schema.ddl import Topology
from foothold.collector.schema.retention import DroppedPartition, Retention


class StoreError(Exception):
    """The store cannot be opened or used; the message says what to do."""


class StoreBusy(StoreError):
    """Another process owns the chDB path."""


def chdb_path(dsn: str) -> Path | None:
    if not dsn.startswith("chdb://"):
        return None
    return Path(dsn.removeprefix("chdb://"))


class _ChdbOwnership:
    """Process-wide: which chDB path this process holds, with a count of open stores."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._fd: int | None = None
        self._users = 0

    def acquire(self, path: Path) -> None:
        with self._lock:
            if self._path is not None and self._path != path:
                raise StoreError(
                    f"this process already has the chDB store {self._path} open; chDB allows one path per "
                    f"process. Close that store first, or point both at the same path."
                )
            if self._path is None:
                self._fd = _lock_path(path)
                self._path = path
            self._users += 1

    def release(self, path: Path) -> None:
        with self._lock:
            if self._path != path:
                return
            self._users -= 1
            if self._users == 0 and self._fd is not None:
                os.close(self._fd)  # closing the descriptor drops the flock
                self._path, self._fd = None, None


def _lock_path(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = path.with_name(path.name + ".lock")
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreBusy(
            f"the chDB store {path} is owned by another process (pid {owner}, usually `foothold-audit collect`). "
            "Query it through that collector's query API (`foothold-audit sql` does so when it is running), "
            "or stop that process first."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


_OWNERSHIP = _ChdbOwnership()


@dataclass
class Store:
    """An open store: a client per caller thread is created with :meth:`client`."""

    dsn: str
    topology: Topology
    insert: InsertConfig = field(default_factory=InsertConfig)  # how the exporter inserts (docs/reliability.md)
    retention: Retention | None = None  # None: leave TTLs as they are (a reader that does not own the config)
    _clients: list[Client] = field(default_factory=list)
    _closed: bool = False

    @property
    def database(self) -> str:
        return self.topology.database

    def client(self, *, in_database: bool = True) -> Client:
        """A new client, by default with the store's database as the current one.

        clickhouse-connect clients are not safe for concurrent use, so each thread takes its own.
        """
        try:
            database = self.database if in_database else None
            client = clickhouse_connect.get_client(dsn=self.dsn, database=database)
        except Exception as exc:  # the driver raises several types; all mean "cannot open"
            raise StoreError(_explain_open_failure(self.dsn, exc)) from exc
        self._clients.append(client)
        return client

    def migrate(self) -> list[int]:
        """Apply pending migrations, then bring the TTLs in line with the retention config."""
        client = self.client(in_database=False)  # the database may not exist yet
        applied = migrations.migrate(
            client.command,
            lambda sql: {row[0] for row in client.query(sql).result_rows},
            self.topology,
        )
        if self.retention is not None:
            retention.apply(client.command, lambda sql: client.query(sql).result_rows, self.retention, self.topology)
        return applied

    def enforce_disk_bound(self) -> list[DroppedPartition]:
        """Embedded stores only: drop the oldest raw partitions past retention.max_store_bytes."""
        if chdb_path(self.dsn) is None or self.retention is None or self.retention.max_store_bytes <= 0:
            return []
        client = self.client(in_database=False)
        try:
            return retention.enforce_disk_bound(
                client.command,
                lambda sql: client.query(sql).result_rows,
                self.database,
                self.retention.max_store_bytes,
            )
        finally:
            client.close()
            self._clients.remove(client)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            client.close()
        self._clients.clear()
        path = chdb_path(self.dsn)
        if path is not None:
            _OWNERSHIP.release(path)


def _explain_open_failure(dsn: str, exc: Exception) -> str:
    text = str(exc)
    if "already initialized with path" in text:
        return f"chDB is already open at another path in this process: {text}"
    if "EmbeddedServer" in text:
        return f"cannot open the chDB store {dsn}: another process probably owns it ({text})"
    return f"cannot connect to the store {dsn}: {text}. Check the DSN (store.dsn / FOOTHOLD_STORE__DSN)."


def open_store(
    dsn: str,
    database: str = "foothold",
    cluster: str | None = None,
    *,
    migrate: bool = True,
    insert: InsertConfig | None = None,
    replicated: bool = True,
    retention: Retention | None = None,
) -> Store:
    """Open (and by default migrate) the store. Raises :class:`StoreError` with a fix in the message."""
    path = chdb_path(dsn)
    if path is not None:
        if not path.is_absolute():
            raise StoreError(f"chDB DSN needs an absolute path (chdb:///abs/path), got {dsn!r}")
        _OWNERSHIP.acquire(path)
    topology = Topology(database=database, cluster=cluster, replicated=replicated)
    store = Store(dsn=dsn, topology=topology, insert=insert or InsertConfig(), retention=retention)
    try:
        if migrate:
            store.migrate()
    except StoreError:
        store.close()
        raise
    except migrations.SchemaVersionError as exc:
        store.close()
        raise StoreError(str(exc)) from None
    except Exception as exc:
        store.close()
        raise StoreError(f"migrating the schema in {dsn} failed: {exc}") from exc
    return store
