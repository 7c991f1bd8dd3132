"""The ClickHouse exporter: one column-wise insert per batch into ``otel_traces``.

The materialized views project each insert into ``tool_calls``, ``artifacts`` and the trace-id lookup.
"""

from __future__ import annotations

from foothold.collector.rows import COLUMNS, SpanBatch
from foothold.collector.schema.ddl import TRACES
from foothold.collector.store import Store


class ClickHouseExporter:
    def __init__(self, store: Store) -> None:
        self._client = store.client()  # this exporter's own: it runs on the pipeline's worker thread
        self._table = f"{store.database}.{TRACES}"

    def export(self, batch: SpanBatch) -> None:
        if len(batch):
            self._client.insert(self._table, batch.data(), column_names=COLUMNS, column_oriented=True)
