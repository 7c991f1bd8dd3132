"""The ClickHouse exporter for logs: one insert per batch (per group of days) into ``otel_logs``.

The same wire path and insert semantics as spans (:mod:`foothold.collector.exporter`): a ``JSONColumns``
document with exact decimal-second times, :func:`~foothold.collector.exporter.insert_settings` (synchronous,
deduplicated by the batch's token, quorum when configured), a batch spread over more days than
``store.insert.max_days_per_insert`` split by day (``otel_logs`` is partitioned by day too), and a batch the
store refuses for its content raised as :class:`DataRejected`. The ``tool_calls_from_logs_mv`` view projects
the normalised native tool events into ``tool_calls``.
"""

from __future__ import annotations

import orjson

from foothold.collector.exporter import day_groups, insert_settings, nanoseconds_json
from foothold.collector.log_rows import COLUMNS, LogBatch
from foothold.collector.schema.ddl import LOGS
from foothold.collector.store import Store
from foothold.collector.store_errors import DataRejected, is_data_error


class ClickHouseLogsExporter:
    def __init__(self, store: Store) -> None:
        self._client = store.client()  # this exporter's own: it runs on the logs pipeline's worker thread
        self._table = f"{store.database}.{LOGS}"
        self._insert = store.insert

    def export(self, batch: LogBatch) -> None:
        groups = day_groups(batch.columns["Timestamp"], self._insert.max_days_per_insert)
        for index, rows in enumerate(groups):
            part = batch if rows is None else batch.select(rows)  # None: the whole batch, one group
            token = batch.dedup_token and (batch.dedup_token if len(groups) == 1 else f"{batch.dedup_token}/d{index}")
            columns = dict(part.columns)
            columns["Timestamp"] = [nanoseconds_json(ns) for ns in columns["Timestamp"]]
            try:
                self._client.raw_insert(
                    self._table,
                    column_names=COLUMNS,
                    insert_block=orjson.dumps(columns),
                    fmt="JSONColumns",
                    settings=insert_settings(self._insert, token),
                )
            except Exception as exc:
                if is_data_error(exc):
                    raise DataRejected(str(exc)) from exc
                raise
