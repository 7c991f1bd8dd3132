"""The ClickHouse exporter: one insert per batch into ``otel_traces``.

The materialized views project each insert into ``tool_calls``, ``artifacts`` and the trace-id lookup.
A batch formed from a range of spool records carries a deduplication token, so replaying it after a crash
stores it once.

The batch goes over as one ``JSONColumns`` document encoded by orjson, not through clickhouse-connect's
column-list insert: that insert serialises to Native format in Python while holding the GIL (~20 µs a
span), whereas the engine parses JSON with the GIL released, so the parse runs on another core while the
receivers and the next batch's processors keep this one busy (docs/performance.md, round 3).
orjson cannot fail on a batch: the decoders admit only valid UTF-8 strings and bounded integers.
"""

from __future__ import annotations

import orjson

from foothold.collector.rows import COLUMNS, SpanBatch
from foothold.collector.schema.ddl import TRACES
from foothold.collector.store import Store

_NS_PER_SECOND = 1_000_000_000


class ClickHouseExporter:
    def __init__(self, store: Store) -> None:
        self._client = store.client()  # this exporter's own: it runs on the pipeline's worker thread
        self._table = f"{store.database}.{TRACES}"

    def export(self, batch: SpanBatch) -> None:
        if len(batch):
            settings = _dedup_settings(batch.dedup_token) if batch.dedup_token else None
            self._client.raw_insert(
                self._table,
                column_names=COLUMNS,
                insert_block=json_columns(batch),
                fmt="JSONColumns",
                settings=settings,
            )


def json_columns(batch: SpanBatch) -> bytes:
    """The batch as a ``JSONColumns`` document, times as exact decimal seconds.

    DateTime64 reads a JSON number as seconds, so nanoseconds go as ``seconds.nnnnnnnnn`` number text (a
    float would round; a quoted string meets the date-text heuristics, which read ``20230101.5`` as a date).
    """
    columns = dict(batch.columns)
    columns["Timestamp"] = [nanoseconds_json(ns) for ns in columns["Timestamp"]]
    columns["Events.Timestamp"] = [[nanoseconds_json(ns) for ns in row] for row in columns["Events.Timestamp"]]
    return orjson.dumps(columns)


def nanoseconds_json(ns: int) -> orjson.Fragment:
    """A DateTime64(9) value from integer nanoseconds, as exact decimal seconds (see :func:`json_columns`)."""
    return orjson.Fragment(b"%d.%09d" % divmod(ns, _NS_PER_SECOND))


def milliseconds_json(ms: int) -> orjson.Fragment:
    """A DateTime64(3) value from integer milliseconds, as exact decimal seconds (see :func:`json_columns`)."""
    return orjson.Fragment(b"%d.%03d" % divmod(ms, 1000))


def _dedup_settings(token: str) -> dict[str, object]:
    """Idempotent inserts: the same token within the tables' deduplication window is stored once.

    ``deduplicate_blocks_in_dependent_materialized_views`` extends that to the views' target tables
    (tool_calls, artifacts, otel_traces_trace_id_ts); without it they would get the rows twice. Both need
    the tables' ``non_replicated_deduplication_window`` (schema migration 3).
    """
    return {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}
