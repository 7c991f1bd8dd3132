"""Hostile inputs (issue 13): no single request can stop the pipeline.

The counterpart is real: a running collector over real sockets on 127.0.0.1, the real chDB engine (ClickHouse
26.9) raising its own "too many partitions for a single INSERT block" (code 252) — the error a ClickHouse
server raises for the same insert, since chDB is that server's engine in-process — and the real spool on disk
across a restart.
"""

from __future__ import annotations

import os
import time

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from foothold import semconv
from foothold.collector import metrics as m
from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, rows

DAY_NS = 86_400 * 1_000_000_000
PROTOBUF = {"content-type": "application/x-protobuf"}


def spread_request(days: int, *, name: str = "spread", newest_days_ago: int = 1) -> bytes:
    """One span per day, on ``days`` different days ending ``newest_days_ago`` days back."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    newest = time.time_ns() - newest_days_ago * DAY_NS
    for day in range(days):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"{name}-{day}"
        span.start_time_unix_nano = newest - day * DAY_NS
        span.end_time_unix_nano = span.start_time_unix_nano + 1_000
    return request.SerializeToString()


def good_request(name: str) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), name
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000
    return request.SerializeToString()


def post(collector, body: bytes) -> httpx.Response:
    return httpx.post(collector.endpoint_url("otlp_http") + "/v1/traces", content=body, headers=PROTOBUF, timeout=30)


def stored_names(collector, like: str = "%") -> list[str]:
    query = "SELECT SpanName FROM {db}.otel_traces WHERE SpanName LIKE {{like:String}} ORDER BY SpanName"
    return [name for (name,) in rows(collector, query, like=like)]


def test_a_101_day_request_then_a_good_one_both_stored_no_429_and_a_restart_is_clean(tmp_path, chdb_dsn, database):
    """Today's wedge: 200 for the 101-day request, then every insert fails and every later sender gets 429.

    Default limits: the old start times are moved to the receive time, the answer says so (a partial-success
    warning, nothing rejected) and each span keeps its own time in an attribute.
    """
    settings = make_settings(tmp_path, chdb_dsn, database)
    with CollectorThread(settings) as collector:
        hostile = post(collector, spread_request(101, newest_days_ago=40))
        assert hostile.status_code == 200
        answer = ExportTraceServiceResponse.FromString(hostile.content)
        assert answer.partial_success.rejected_spans == 0
        assert "101 span(s) started outside the accepted window" in answer.partial_success.error_message
        statuses = [post(collector, good_request(f"good-{i}")).status_code for i in range(20)]
        assert statuses == [200] * 20  # no 429 storm
        assert collector.pipeline.flush(30), "the pipeline is wedged"
        assert len(stored_names(collector, "spread-%")) == 101
        assert len(stored_names(collector, "good-%")) == 20
        originals = rows(
            collector,
            "SELECT count(DISTINCT SpanAttributes[{{key:String}}]) FROM {db}.otel_traces "
            "WHERE SpanName LIKE 'spread-%'",
            key=semconv.ORIGINAL_START_TIME,
        )
        assert originals == [(101,)]  # each span's own time kept
    with CollectorThread(settings) as restarted:  # nothing poisonous waits in the spool
        assert restarted.metrics.value(m.SPANS_REPLAYED, signal="traces") == 0
        assert post(restarted, good_request("after-restart")).status_code == 200
        assert stored_names(restarted, "after-%") == ["after-restart"]


def test_a_legitimate_batch_over_many_days_is_stored_with_its_own_times(tmp_path, chdb_dsn, database):
    """An operator who accepts a year of history (an agent's backlog, an import): 150 days in one request go in
    as several inserts of at most store.insert.max_days_per_insert days, times unchanged."""
    settings = make_settings(tmp_path, chdb_dsn, database, limits={"max_span_age_days": 400})
    with CollectorThread(settings) as collector:
        answer = post(collector, spread_request(150, name="history"))
        assert answer.status_code == 200
        assert not ExportTraceServiceResponse.FromString(answer.content).HasField("partial_success")
        assert collector.pipeline.flush(30), "the pipeline is wedged"
        days = rows(collector, "SELECT uniqExact(toDate(Timestamp, 'UTC')) FROM {db}.otel_traces")
        assert days == [(150,)]
        assert collector.metrics.value(m.DATA_REJECTIONS, signal="traces") == 0


def test_a_batch_the_store_refuses_is_split_and_only_the_offender_quarantined_even_after_a_restart(
    tmp_path, chdb_dsn, database
):
    """The store's own refusal, not the collector's guard: a store that takes fewer partitions per insert than
    the collector assumes (store.insert.max_days_per_insert above max_partitions_per_insert_block) refuses the
    101-day request with code 252. First run: the store is down (the batch stays in the spool). Second run:
    the spool replays [good, 101 days, good] as one batch; it is split, the goods are stored, the offender is
    quarantined, and the next start has nothing left to replay."""
    settings = make_settings(
        tmp_path,
        chdb_dsn,
        database,
        limits={"max_span_age_days": 400},
        store={"dsn": chdb_dsn, "database": database, "insert": {"max_days_per_insert": 1000}},
        batch={"timeout_seconds": 3600, "retry_max_seconds": 0.2},
    )

    class Down:
        def __init__(self, store) -> None:
            pass

        def export(self, batch) -> None:
            raise ConnectionError("injected: store unreachable")

    with CollectorThread(settings, exporter_factory=Down) as collector:
        for body in (good_request("good-before"), spread_request(101, name="poison"), good_request("good-after")):
            assert post(collector, body).status_code == 200
        collector.pipeline.close(timeout=0.5)  # a stop while the store is down: the batch stays in the spool
        assert collector.metrics.value(m.SPANS_EXPORTED, signal="traces") == 0

    with CollectorThread(settings) as replaying:
        assert replaying.metrics.value(m.SPANS_REPLAYED, signal="traces") == 103
        assert replaying.pipeline.flush(30), "the replayed poison batch wedged the pipeline"
        assert stored_names(replaying) == ["good-after", "good-before"]
        counted = (
            replaying.metrics.value(m.SPANS_QUARANTINED, signal="traces"),
            replaying.metrics.value(m.SPANS_LOST, signal="traces"),
        )
        assert counted == (101, 0)
        assert (
            replaying.metrics.value(m.DATA_REJECTIONS, signal="traces") >= 2
        )  # the whole batch, then the half holding the offender
        assert post(replaying, good_request("good-later")).status_code == 200
        assert "good-later" in stored_names(replaying)
    (kept,) = (settings.data_dir / "quarantine").glob("*.otlp.pb")
    assert len(ExportTraceServiceRequest.FromString(kept.read_bytes()).resource_spans[0].scope_spans[0].spans) == 101
    with CollectorThread(settings) as again:
        assert again.metrics.value(m.SPANS_REPLAYED, signal="traces") == 0
