"""Insert semantics pinned (issue 16): synchronous, deduplicated, optional quorum, split by day, classified errors.

ClickHouse 26.2+ servers default to ``async_insert=1``, under which a batch's ``insert_deduplication_token`` no
longer identifies it; chDB (ClickHouse 26.9 in-process) does not reproduce that bypass, so these tests pin the
settings every insert carries and run each one through the real engine, which refuses any setting it does not
know: a misspelt name fails here rather than on a customer's server.
"""

from __future__ import annotations

import os

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector.config import InsertConfig
from foothold.collector.exporter import ClickHouseExporter, day_groups, insert_settings
from foothold.collector.rows import to_batch
from foothold.collector.store import open_store
from foothold.collector.store_errors import DataRejected, is_data_error

DAY_NS = 86_400 * 1_000_000_000


def _batch(days: int, token: str):
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for day in range(days):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"d{day}"
        span.start_time_unix_nano = span.end_time_unix_nano = 1_790_000_000 * 10**9 - day * DAY_NS
    batch = to_batch([request])
    batch.dedup_token = token
    return batch


def test_every_insert_is_synchronous_and_deduplicated_with_quorum_when_configured():
    plain = insert_settings(InsertConfig(), "spool:1-2")
    assert plain["async_insert"] == 0 and plain["insert_deduplicate"] == 1
    assert plain["insert_deduplication_token"] == "spool:1-2"
    assert plain["deduplicate_blocks_in_dependent_materialized_views"] == 1
    assert "insert_quorum" not in plain
    quorum = insert_settings(InsertConfig(quorum=2, quorum_timeout_ms=5000), "")
    assert (quorum["insert_quorum"], quorum["insert_quorum_timeout"], quorum["async_insert"]) == (2, 5000, 0)


def test_the_engine_accepts_every_setting_and_a_replayed_split_batch_is_stored_once(chdb_dsn, database):
    """Quorum on (ignored by non-replicated tables, but a name the engine must know), a batch over 120 days
    split into groups of 50, inserted twice with the same token: stored once."""
    store = open_store(chdb_dsn, database, insert=InsertConfig(quorum=2, max_days_per_insert=50))
    try:
        exporter = ClickHouseExporter(store)
        batch = _batch(120, "test-token:0-1")
        exporter.export(batch)
        exporter.export(batch)  # a replay after a crash: same token, same groups
        client = store.client()
        rows = client.query(f"SELECT count(), uniqExact(toDate(Timestamp, 'UTC')) FROM {database}.otel_traces")
        assert rows.result_rows == [(120, 120)]
        tool_view = client.query(f"SELECT count() FROM {database}.otel_traces_trace_id_ts").result_rows
        assert tool_view == [(120,)]
    finally:
        store.close()


def test_day_groups_bound_the_days_per_insert():
    stamps = [day * DAY_NS for day in range(7)] * 2
    assert day_groups(stamps, 7) == [None]  # the common case: one insert, no copy
    groups = day_groups(stamps, 3)
    assert [sorted({stamps[i] // DAY_NS for i in g}) for g in groups] == [[0, 1, 2], [3, 4, 5], [6]]
    assert sorted(i for g in groups for i in g) == list(range(14))


def test_the_store_refusing_a_batch_for_its_content_is_told_apart_from_the_store_being_unwell(chdb_dsn, database):
    store = open_store(chdb_dsn, database, insert=InsertConfig(max_days_per_insert=1000))
    try:
        with pytest.raises(DataRejected, match="Too many partitions"):
            ClickHouseExporter(store).export(_batch(101, ""))
    finally:
        store.close()
    assert not is_data_error(Exception("Code: 252. DB::Exception: Too many parts (300). Merges are processing slowly"))
    assert not is_data_error(ConnectionError("Connection refused"))
    assert not is_data_error(Exception("Code: 241. DB::Exception: Memory limit (total) exceeded"))
    assert is_data_error(Exception("Code: 27. DB::Exception: Cannot parse input"))
