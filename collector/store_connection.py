"""The store connection, a component: opens (and migrates) the store in the background until it works, then
hands it to each consumer in the order they were registered.

It starts first and stops last. The collector takes data while the store is unreachable (a store that is
down, a cluster node that does not answer ``ON CLUSTER`` DDL): until the store opens, the spools accept,
``foothold_store_up`` is 0 and every read names the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable

from clickhouse_connect.driver.client import Client

from foothold.collector import metrics as m
from foothold.collector.config import Settings
from foothold.collector.store import Store, StoreError, open_store

log = logging.getLogger("foothold.collector")

Consumer = Callable[[Store], None]  # takes the opened store; raising makes the connection retry


class StoreConnection:
    def __init__(self, settings: Settings, metrics: m.Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._consumers: list[Consumer] = []
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self.store: Store | None = None
        self.reason = "connecting"  # why the store is unreachable, for every reader that is told so
        metrics.record(m.STORE_UP, 0)

    def on_connect(self, consumer: Consumer) -> None:
        """Hand the store to ``consumer`` once it opens (consumers run in registration order)."""
        self._consumers.append(consumer)

    def connected(self) -> Store:
        """The open store, or StoreError naming why it is unreachable."""
        if self.store is None:
            raise StoreError(f"the store is unreachable ({self.reason}); spans are spooled until it is back")
        return self.store

    def client(self) -> Client:
        return self.connected().client()

    async def start(self) -> None:
        """Begin connecting in the background (see :meth:`first_attempt`)."""
        self._task = asyncio.create_task(self._connect())

    async def first_attempt(self) -> None:
        """Wait for the first attempt to open the store, up to ``store.startup_wait_seconds``: the service waits
        here once every other component runs, so data is taken while the store is slow to open."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self._settings.store.startup_wait_seconds)

    async def _connect(self) -> None:
        s = self._settings
        delay = 0.5
        while True:
            store = None
            try:
                store = await asyncio.to_thread(
                    functools.partial(
                        open_store,
                        s.store_dsn,
                        s.store.database,
                        s.store.cluster,
                        insert=s.store.insert,
                        replicated=s.store.replicated,
                        retention=s.retention.policy(),
                    )
                )
                for consumer in self._consumers:
                    consumer(store)
                break
            except Exception as exc:  # StoreError, or a consumer's first query (the chain head) failing
                if store is not None:
                    store.close()
                self.reason = str(exc).strip()
                log.warning("store unreachable (%s); spooling, retrying in %.1fs", exc, delay)
            self._first_attempt.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, s.batch.retry_max_seconds)
        self.store, self.reason = store, ""
        self._metrics.record(m.STORE_UP, 1)
        self._first_attempt.set()
        log.info("store %s reachable: exporting", s.store_dsn)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.store is not None:
            self.store.close()


class DiskBound:
    """The embedded store's disk bound (``retention.max_store_bytes``), checked every
    ``retention.check_interval_seconds`` once the store is open; a component through :class:`Periodic`."""

    def __init__(self, connection: StoreConnection) -> None:
        self._connection = connection

    def __call__(self) -> None:
        if self._connection.store is None:
            return
        for dropped in self._connection.store.enforce_disk_bound():
            log.warning(
                "store over retention.max_store_bytes: dropped partition %s of %s (%d bytes)",
                dropped.partition,
                dropped.table,
                dropped.bytes,
            )
