"""The durable spool: nothing acknowledged is lost (crash, store outage), nothing is stored twice (replay).

The kill -9 test runs the collector as a separate process with its own chDB path (chDB allows one path
per process, and this process already holds the session store) and reads the result through that
collector's query API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foothold.collector import metrics as m
from foothold.collector.config import BatchConfig, SpoolConfig
from foothold.collector.exporter import ClickHouseExporter
from foothold.collector.otlp import validate
from foothold.collector.pipeline import Pipeline, Submitted
from foothold.collector.rows import to_batch
from foothold.collector.service import CollectorThread
from foothold.collector.spool import HEADER, Spool
from foothold.collector.store import open_store
from tests.collector_process import start_collector, write_config
from tests.conftest import make_settings, rows
from tests.test_collector_resilience import FlakyExporter, _post

EXPORTED = 'foothold_spans_exported_total{signal="traces"}'  # as /healthz and /metrics name it

SPOOL_DIR = "spool"


def _tool_request(prefix: str, spans: int = 1) -> ExportTraceServiceRequest:
    """A request of tool-call spans (so tool_calls, a view target, is checked for duplicates too)."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    kv = resource.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "spool-test"
    scope = resource.scope_spans.add()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"{prefix}-{i}"
        span.start_time_unix_nano = time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + 1000
        for key, value in (("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", "shell")):
            attribute = span.attributes.add()
            attribute.key, attribute.value.string_value = key, value
    return request


def _spool_requests(
    directory: Path, requests: list[ExportTraceServiceRequest], config: SpoolConfig | None = None
) -> list[int]:
    """Append requests as the pipeline does (validated, serialized), as a collector that then died would."""
    spool = Spool.open(directory, config or SpoolConfig())
    try:
        seqs = []
        for request in requests:
            accepted = validate(request)
            seqs.append(spool.append(accepted.request.SerializeToString(), accepted.spans))
            spool.sync(seqs[-1])
        return seqs
    finally:
        spool.close()


def _span_counts(collector, table: str) -> dict[str, int]:
    return dict(rows(collector, f"SELECT SpanId, count() FROM {{db}}.{table} GROUP BY SpanId"))


def _ids(requests: list[ExportTraceServiceRequest]) -> set[str]:
    return {
        span.span_id.hex() for r in requests for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans
    }


# --- the spool itself ------------------------------------------------------------------------------------


def test_spool_round_trip_segments_and_checkpoint(tmp_path):
    config = SpoolConfig(segment_bytes=4096, max_bytes=1 << 20)
    spool = Spool.open(tmp_path, config)
    payloads = [os.urandom(700) for _ in range(12)]
    seqs = [spool.append(p, spans=i + 1) for i, p in enumerate(payloads)]
    spool.sync(seqs[-1])
    assert seqs == list(range(12)) and spool.durable_seq == 12
    assert len(list(tmp_path.glob("*.seg"))) > 1  # rolled over at segment_bytes
    first = spool.read(0, 12, max_spans=6)  # 1 + 2 + 3 spans: the 4th record would pass 6
    assert [r.seq for r in first] == [0, 1, 2] and first[1].request == payloads[1]
    rest = spool.read(3, 12)
    assert [r.seq for r in rest] == list(range(3, 12))
    assert [r.request for r in first + rest] == payloads
    spool.begin_batch(0, 8)
    spool.commit(8)
    spool.close()

    reopened = Spool.open(tmp_path, config)  # what a restart finds: the checkpoint and the rest
    try:
        assert reopened.committed == 8 and reopened.pending_batch is None
        assert reopened.backlog_records == 4 and reopened.backlog_spans == sum(range(9, 13))
        assert [r.seq for r in reopened.read(8, 12)] == [8, 9, 10, 11]
        assert reopened.next_seq == 12 and reopened.append(b"\0\0next", 1) == 12
        reopened.commit(13)
        assert list(tmp_path.glob("*.seg")) == []  # wholly exported segments are deleted
    finally:
        reopened.close()


def test_one_collector_per_spool(tmp_path):
    spool = Spool.open(tmp_path, SpoolConfig())
    try:
        with pytest.raises(OSError, match="in use by another collector"):
            Spool.open(tmp_path, SpoolConfig())
    finally:
        spool.close()


@pytest.mark.parametrize(
    ("damage", "intact"),
    [
        pytest.param(lambda data: data + HEADER.pack(500, 0, 4, 1)[:11], 4, id="torn-header"),
        pytest.param(lambda data: data + HEADER.pack(500, 0, 4, 1) + b"x" * 100, 4, id="torn-payload"),
        pytest.param(lambda data: data + b"\0" * 4096, 4, id="zero-filled-tail"),
        pytest.param(lambda data: data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:], 3, id="flipped-bit-in-last-record"),
    ],
)
def test_corrupt_tail_is_cut_with_a_warning_and_the_rest_replayed(tmp_path, chdb_dsn, database, caplog, damage, intact):
    requests = [_tool_request(f"r{i}", spans=3) for i in range(4)]
    _spool_requests(tmp_path / SPOOL_DIR, requests)
    (segment,) = (tmp_path / SPOOL_DIR).glob("*.seg")
    segment.write_bytes(damage(segment.read_bytes()))

    settings = make_settings(tmp_path, chdb_dsn, database)
    with caplog.at_level(logging.WARNING, logger="foothold.collector.spool"):
        with CollectorThread(settings) as collector:  # starts despite the damage
            stored = _span_counts(collector, "otel_traces")
            truncated, replayed = (
                collector.metrics.value(x, signal="traces") for x in (m.SPOOL_TRUNCATED_BYTES, m.SPANS_REPLAYED)
            )
            assert _post(collector, _tool_request("after").SerializeToString()).status_code == 200
    assert "truncating" in caplog.text and truncated > 0
    assert stored == dict.fromkeys(_ids(requests[:intact]), 1)
    assert replayed == 3 * intact


def test_replay_reads_a_backlog_larger_than_the_memory_queue_in_batches(tmp_path, chdb_dsn, database):
    requests = [_tool_request(f"b{i}", spans=5) for i in range(40)]  # 200 spans on disk
    _spool_requests(tmp_path / SPOOL_DIR, requests)
    settings = make_settings(tmp_path, chdb_dsn, database, batch={"max_queued_spans": 500, "max_spans": 25})
    with CollectorThread(settings) as collector:
        assert _span_counts(collector, "otel_traces") == dict.fromkeys(_ids(requests), 1)
        assert collector.metrics.value(m.BATCHES_EXPORTED, signal="traces") >= 200 // 25
        assert collector.pipeline.queued_spans == 0
    assert list((tmp_path / SPOOL_DIR).glob("*.seg")) == []


class _GatedExporter:
    """Holds every export until opened (a store that is slow), then records the span names in order."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.names: list[str] = []
        self.sizes: list[int] = []

    def export(self, batch) -> None:
        if not self.open.wait(30):
            raise ConnectionError("gate never opened")
        self.names.extend(batch.columns["SpanName"])
        self.sizes.append(len(batch))


@pytest.mark.parametrize("spooled", [True, False], ids=["spool", "memory-only"])
def test_queued_requests_wait_as_bytes_within_the_memory_byte_bound(tmp_path, spooled):
    """Overload memory: the queue holds each request's protobuf bytes (decoded only when its batch forms), at
    most ``batch.max_queued_memory_bytes`` of them; with the spool the rest waits on disk and is read back in
    order, without it receivers are refused (429). Batches are cut at ``batch.max_batch_bytes`` from memory and
    from disk alike. Nothing accepted is lost or reordered either way."""
    requests = [validate(_tool_request(f"q{i}", spans=4)) for i in range(30)]
    size = len(requests[0].encoded())
    config = BatchConfig(
        max_spans=1000,
        max_batch_bytes=2 * size,  # two requests of 4 spans a batch, whatever max_spans allows
        max_queued_spans=10_000,
        max_queued_memory_bytes=3 * size,
        timeout_seconds=0.05,
    )
    exporter = _GatedExporter()
    spool = Spool.open(tmp_path / SPOOL_DIR, SpoolConfig()) if spooled else None
    pipeline = Pipeline(config, exporter, spool=spool)
    asyncio.run(pipeline.start())
    try:
        outcomes = [pipeline.submit(accepted) for accepted in requests]
        assert all(isinstance(item.payload, bytes) for item in pipeline._memory)
        assert pipeline._memory_bytes <= config.max_queued_memory_bytes
        if spooled:
            assert outcomes == [Submitted.OK] * len(requests)  # beyond the memory bound: on disk, still accepted
        else:
            assert Submitted.FULL in outcomes  # no disk to fall back on: the client keeps the data
        kept = [accepted for accepted, outcome in zip(requests, outcomes, strict=True) if outcome is Submitted.OK]
        exporter.open.set()
        assert pipeline.flush(30)
        expected = [span.name for a in kept for span in a.request.resource_spans[0].scope_spans[0].spans]
        assert exporter.names == expected
        assert max(exporter.sizes) == 8
    finally:
        pipeline.close(5)


def test_a_batch_stored_just_before_a_crash_is_not_stored_again(tmp_path, chdb_dsn, database):
    """The crash window between the insert and the checkpoint: the replayed insert is deduplicated.

    A collector inserted records [0, 3) and died before advancing the checkpoint, which still names
    [0, 3) as in flight. The restart re-forms exactly that batch with the same token; chDB must drop it in
    otel_traces and in the views' targets, and store record 3 once.
    """
    requests = [_tool_request(f"d{i}", spans=4) for i in range(4)]
    _spool_requests(tmp_path / SPOOL_DIR, requests)
    spool = Spool.open(tmp_path / SPOOL_DIR, SpoolConfig())
    spool.begin_batch(0, 3)
    batch = to_batch(validate(r).request for r in requests[:3])
    batch.dedup_token = spool.token(0, 3)
    spool.close()
    store = open_store(chdb_dsn, database)
    try:
        ClickHouseExporter(store).export(batch)  # what the dead collector got into the store
    finally:
        store.close()

    with CollectorThread(make_settings(tmp_path, chdb_dsn, database)) as collector:
        assert collector.metrics.value(m.SPANS_REPLAYED, signal="traces") == 16
        assert _span_counts(collector, "otel_traces") == dict.fromkeys(_ids(requests), 1)
        assert _span_counts(collector, "tool_calls") == dict.fromkeys(_ids(requests), 1)
        assert rows(collector, "SELECT count() FROM {db}.otel_traces_trace_id_ts") == [(16,)]
        assert collector.metrics.value(m.BATCHES_EXPORTED, signal="traces") >= 2  # the replayed range, then the rest


def test_replayed_insert_with_the_same_token_is_dropped_in_every_table(store):
    """What the exporter relies on, checked on chDB directly: token + window + dependent-view setting."""
    batch = to_batch([_tool_request("tok", spans=5)])
    batch.dedup_token = "foothold-spool:test:0-1"
    exporter = ClickHouseExporter(store)
    exporter.export(batch)
    exporter.export(batch)
    client, db = store.client(), store.database
    for table in ("otel_traces", "tool_calls", "otel_traces_trace_id_ts"):
        assert client.query(f"SELECT count() FROM {db}.{table}").result_rows == [(5,)], table
    batch.dedup_token = "foothold-spool:test:1-2"  # another range: stored
    exporter.export(batch)
    assert client.query(f"SELECT count() FROM {db}.otel_traces").result_rows == [(10,)]
    window = client.query(
        f"SELECT name FROM system.tables WHERE database = '{db}' "
        "AND engine_full LIKE '%non_replicated_deduplication_window = 1000%'"
    ).result_rows
    assert sorted(name for (name,) in window) == [
        "artifacts",
        "otel_logs",
        "otel_traces",
        "otel_traces_trace_id_ts",
        "tool_calls",
    ]


# --- store outage ------------------------------------------------------------------------------------------


def test_store_outage_is_absorbed_by_the_spool_then_drained_and_a_full_spool_answers_429(tmp_path, chdb_dsn, database):
    settings = make_settings(
        tmp_path,
        chdb_dsn,
        database,
        batch={"max_spans": 50, "retry_max_seconds": 0.2},
        spool={"max_bytes": 64 * 1024, "segment_bytes": 8 * 1024},
    )
    flaky: list[FlakyExporter] = []

    def factory(store):
        flaky.append(FlakyExporter(store))
        flaky[0].down.set()
        return flaky[0]

    accepted: list[ExportTraceServiceRequest] = []
    with CollectorThread(settings, exporter_factory=factory) as collector:
        statuses = []
        while not statuses or statuses[-1] == 200:  # load until the spool is full
            request = _tool_request(f"o{len(statuses)}", spans=10)
            statuses.append(_post(collector, request.SerializeToString()).status_code)
            if statuses[-1] == 200:
                accepted.append(request)
            assert len(statuses) < 1000, "the spool never filled"
        assert statuses[-1] == 429 and len(accepted) >= 10
        refused = _post(collector, _tool_request("refused").SerializeToString())
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert flaky[0].attempted.wait(10)
        assert (
            collector.metrics.value(m.SPANS_EXPORTED, signal="traces") == 0
            and collector.metrics.value(m.SPOOL_BYTES, signal="traces") > 48 * 1024
        )
        assert collector.metrics.value(m.SPANS_REFUSED, signal="traces") >= 11

        flaky[0].down.clear()  # the store is back: the spool drains
        assert _span_counts(collector, "otel_traces") == dict.fromkeys(_ids(accepted), 1)
        assert collector.metrics.value(m.EXPORT_FAILURES, signal="traces") >= 1
        assert collector.metrics.value(m.SPOOL_BYTES, signal="traces") < 8 * 1024  # exported segments deleted
        assert _post(collector, _tool_request("after").SerializeToString()).status_code == 200


# --- kill -9 -------------------------------------------------------------------------------------------------


def test_kill_9_mid_load_loses_no_acknowledged_span_and_stores_none_twice(tmp_path):
    data_dir = tmp_path / "collector"
    data_dir.mkdir()
    config = write_config(
        tmp_path / "foothold.yaml",
        data_dir,
        tmp_path / "store",
        alerts={"enabled": False},
        batch={"timeout_seconds": 2.0, "max_spans": 2000},
        fingerprint_key="test-deployment-key",
    )
    proc, info = start_collector(config, data_dir, data_dir / "collector.log")

    provider = TracerProvider(resource=Resource.create({"service.name": "kill-test"}))
    made = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(made))
    tracer = provider.get_tracer("foothold.tests")
    acknowledged: set[str] = set()
    sent: set[str] = set()
    target = [3000]
    reached = threading.Event()
    stopped = threading.Event()

    def load() -> None:
        exporter = GrpcSpanExporter(endpoint=info["otlp_grpc"], insecure=True, timeout=3)
        try:
            while not stopped.is_set():
                made.clear()
                for _ in range(50):
                    with tracer.start_as_current_span("execute_tool shell") as span:
                        span.set_attribute("gen_ai.operation.name", "execute_tool")
                        span.set_attribute("gen_ai.tool.name", "shell")
                spans = made.get_finished_spans()
                ids = {format(s.context.span_id, "016x") for s in spans}
                sent.update(ids)
                if exporter.export(spans) is not SpanExportResult.SUCCESS:
                    return  # the collector is gone: stop, so no client retry can race the restart
                acknowledged.update(ids)
                if len(acknowledged) >= target[0]:
                    reached.set()
        finally:
            exporter.shutdown()
            reached.set()

    def acknowledged_at_least(n: int) -> None:
        target[0] = n
        while len(acknowledged) < n and loader.is_alive():
            reached.clear()
            reached.wait(1)  # re-checks the condition: not a sleep standing in for synchronisation

    loader = threading.Thread(target=load)
    loader.start()
    acknowledged_at_least(3000)
    deadline = time.monotonic() + 60  # another process: poll its health figures until it has exported
    while httpx.get(info["query_api"] + "/healthz", timeout=10).json()["metrics"][EXPORTED] == 0:
        assert time.monotonic() < deadline, "the collector exported nothing in 60 s"
        time.sleep(0.05)
    acknowledged_at_least(len(acknowledged) + 2000)  # keep loading: the kill lands mid-stream
    os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests in flight, a batch possibly mid-insert
    proc.wait(30)
    loader.join(60)
    stopped.set()
    assert loader.is_alive() is False and len(acknowledged) >= 5000

    proc, info = start_collector(config, data_dir, data_dir / "collector.log")  # same data dir: replay
    try:
        query = info["query_api"]
        assert httpx.post(query + "/v1/flush", timeout=60).json() == {"flushed": True}
        health = httpx.get(query + "/healthz", timeout=10).json()
        result = httpx.post(
            query + "/v1/query",
            timeout=60,
            json={"sql": "SELECT SpanId, count() FROM foothold.otel_traces GROUP BY SpanId"},
        ).json()
        stored = dict(result["rows"])
        tool_calls = httpx.post(
            query + "/v1/query",
            timeout=60,
            json={"sql": "SELECT SpanId, count() FROM foothold.tool_calls GROUP BY SpanId"},
        ).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    missing = acknowledged - stored.keys()
    assert not missing, f"{len(missing)} acknowledged span(s) lost"
    assert all(n == 1 for n in stored.values()), "a span was stored twice"
    assert all(n == 1 for _, n in tool_calls["rows"]) and len(tool_calls["rows"]) == len(stored)
    assert stored.keys() <= sent
    assert (
        0 < health["metrics"]['foothold_spans_replayed_total{signal="traces"}'] < len(stored)
    )  # some exported before the kill, the rest replayed
