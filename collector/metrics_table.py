"""The collector_metrics writer: a snapshot of the self-telemetry (:mod:`foothold.collector.metrics`) every
``metrics.interval_seconds``, and a final one at shutdown after the last export; a component through
:class:`~foothold.collector.component.Periodic`. Snapshots wait until the store connection is open."""

from __future__ import annotations

import threading
import time

from clickhouse_connect.driver.client import Client

from foothold.collector.metrics import Metrics
from foothold.collector.schema.ddl import COLLECTOR_METRICS
from foothold.collector.store import Store


class MetricsTable:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._client: Client | None = None
        self._table = COLLECTOR_METRICS
        self._lock = threading.Lock()  # the periodic writer and the final snapshot may overlap
        self.recorded = threading.Event()  # set after each write (tests wait on it)

    def attach(self, store: Store) -> None:
        """The store connection opened: write there from now on."""
        self._client, self._table = store.client(), f"{store.database}.{COLLECTOR_METRICS}"

    def __call__(self) -> int:
        """Write one snapshot; returns the rows written (0 while the store is not open yet)."""
        if self._client is None:
            return 0
        now_ms = int(time.time() * 1000)
        rows = [[now_ms, sample.name, sample.value, sample.labels] for sample in self._metrics.samples()]
        with self._lock:
            self._client.insert(self._table, rows, column_names=("Timestamp", "Name", "Value", "Labels"))
        self.recorded.set()
        return len(rows)
