"""The ClickHouse exporter: one column-wise insert per batch into ``otel_traces``.

The materialized views project each insert into ``tool_calls``, ``artifacts`` and the trace-id lookup.
A batch formed from a range of spool records carries a deduplication token, so replaying it after a crash
stores it once.
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
            settings = _dedup_settings(batch.dedup_token) if batch.dedup_token else None
            self._client.insert(self._table, batch.data(), column_names=COLUMNS, column_oriented=True, settings=settings)


def _dedup_settings(token: str) -> dict[str, object]:
    """Idempotent inserts: the same token within the tables' deduplication window is stored once.

    ``deduplicate_blocks_in_dependent_materialized_views`` extends that to the views' target tables
    (tool_calls, artifacts, otel_traces_trace_id_ts); without it they would get the rows twice. Both need
    the tables' ``non_replicated_deduplication_window`` (schema migration 2).
    """
    return {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}
