"""The ClickHouse exporter: one insert per batch into ``otel_traces``.

The materialized views project each insert into ``tool_calls``, ``artifacts`` and the trace-id lookup.
A batch formed from a range of spool records carries a deduplication token, so replaying it after a crash
stores it once.

The batch goes over as one ``JSONColumns`` document encoded by orjson, not through clickhouse-connect's
column-list insert: that insert serialises to Native format in Python while holding the GIL (~20 µs a
span), whereas the engine parses JSON with the GIL released, so the parse runs on another core while the
receivers and the next batch's processors keep this one busy (docs/performance.md, round 3).
orjson cannot fail on a batch: the decoders admit only valid UTF-8 strings and bounded integers.

Every insert pins its semantics (:func:`insert_settings`): synchronous (``async_insert=0``: ClickHouse
26.2+ defaults to asynchronous inserts, which ignore ``insert_deduplication_token``), deduplicated, and
with ``store.insert.quorum`` on replicated tables. ``otel_traces`` is partitioned by day and ClickHouse
refuses an insert that touches more than ``max_partitions_per_insert_block`` (100) partitions, so a batch
whose spans fall on more than ``store.insert.max_days_per_insert`` days goes in as several inserts, one
per group of days, each with its own deduplication token derived from the batch's. A batch the store
refuses for its content raises :class:`DataRejected` (collector/store_errors.py), so the pipeline splits
it instead of retrying it forever.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from foothold.collector.config import InsertConfig
from foothold.collector.rows import COLUMNS, SpanBatch
from foothold.collector.schema.ddl import TOOL_CALLS, TRACES
from foothold.collector.store import Store
from foothold.collector.store_errors import DataRejected, is_data_error

_NS_PER_SECOND = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_SECOND


class ClickHouseExporter:
    def __init__(self, store: Store) -> None:
        self._client = store.client()  # this exporter's own: it runs on the pipeline's worker thread
        self._table = f"{store.database}.{TRACES}"
        topo = store.topology
        self._tool_calls = f"{topo.database}.{topo.local(TOOL_CALLS)}{topo.on_cluster}"
        self._insert = store.insert

    def export(self, batch: SpanBatch) -> None:
        groups = day_groups(batch.columns["Timestamp"], self._insert.max_days_per_insert)
        for index, rows in enumerate(groups):
            part = batch if rows is None else batch.select(rows)  # None: the whole batch, one group
            token = batch.dedup_token and (batch.dedup_token if len(groups) == 1 else f"{batch.dedup_token}/d{index}")
            try:
                self._client.raw_insert(
                    self._table,
                    column_names=COLUMNS,
                    insert_block=json_columns(part),
                    fmt="JSONColumns",
                    settings=insert_settings(self._insert, token),
                )
            except Exception as exc:
                if is_data_error(exc):
                    raise DataRejected(str(exc)) from exc
                raise
        superseded = batch.superseded
        if superseded:  # native log rows of calls these spans record better (processors/native.py CallOfRecord)
            self._client.command(
                f"DELETE FROM {self._tool_calls} WHERE (SessionId, SpanId) IN {{rows:Array(Tuple(String, String))}}",
                parameters={"rows": list(superseded)},
            )


def day_groups(timestamps: list[int], max_days: int) -> Sequence[list[int] | None]:
    """Row indexes grouped so no group spans more than ``max_days`` UTC days; ``[None]`` for "all in one".

    A UTC day overlaps at most two days of the server's time zone (``toDate`` uses it), so a group touches
    at most ``max_days + 1`` partitions.
    """
    if not timestamps:
        return []
    if max(timestamps) // _NS_PER_DAY - min(timestamps) // _NS_PER_DAY < max_days:
        return [None]  # the common case, found without a per-span Python loop
    days = [ns // _NS_PER_DAY for ns in timestamps]
    distinct = sorted(set(days))
    if len(distinct) <= max_days:
        return [None]
    group_of = {day: i // max_days for i, day in enumerate(distinct)}
    groups: list[list[int]] = [[] for _ in range(group_of[distinct[-1]] + 1)]
    for row, day in enumerate(days):
        groups[group_of[day]].append(row)
    return groups


def insert_settings(config: InsertConfig, token: str) -> dict[str, object]:
    """The settings of every insert: synchronous, idempotent with ``token``, quorum when configured.

    ``async_insert=0``: with asynchronous inserts (the server default since ClickHouse 26.2) the server
    buffers and merges inserts, and ``insert_deduplication_token`` no longer identifies our batch.
    ``deduplicate_blocks_in_dependent_materialized_views`` extends deduplication to the views' target
    tables (tool_calls, artifacts, otel_traces_trace_id_ts); without it they would get a replay's rows
    twice. Both need the tables' deduplication window (schema migration 3).
    """
    settings: dict[str, object] = {"async_insert": 0, "insert_deduplicate": 1}
    if token:
        settings |= {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}
    if config.quorum:
        settings |= {"insert_quorum": config.quorum, "insert_quorum_timeout": config.quorum_timeout_ms}
    return settings


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
