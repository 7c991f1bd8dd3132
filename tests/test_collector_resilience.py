"""The collector under a failing store, at shutdown, and with broken configuration or a busy store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector import metrics as m
from foothold.collector.config import ConfigError, load_settings
from foothold.collector.exporter import ClickHouseExporter
from foothold.collector.rows import COLUMNS, SpanBatch
from foothold.collector.schema import migrations
from foothold.collector.schema.ddl import Topology
from foothold.collector.service import CollectorThread
from foothold.collector.store import StoreError, open_store
from tests.conftest import make_settings, rows


class FlakyExporter:
    """The real ClickHouse exporter behind a switch that makes every write fail while it is on."""

    def __init__(self, store) -> None:
        self.inner = ClickHouseExporter(store)
        self.down = threading.Event()
        self.attempted = threading.Event()

    def export(self, batch: SpanBatch) -> None:
        if self.down.is_set():
            self.attempted.set()
            raise ConnectionError("injected: store unreachable")
        self.inner.export(batch)


def _request(name: str, spans: int = 1) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"{name}-{i}"
    return request.SerializeToString()


def _post(collector, body: bytes) -> httpx.Response:
    url = collector.endpoint_url("otlp_http") + "/v1/traces"
    return httpx.post(url, content=body, headers={"content-type": "application/x-protobuf"})


def test_store_outage_fills_the_queue_then_429_and_nothing_accepted_is_lost(tmp_path, chdb_dsn, database):
    settings = make_settings(
        tmp_path, chdb_dsn, database, batch={"max_queued_spans": 6, "max_spans": 2, "retry_max_seconds": 0.2}
    )
    flaky: list[FlakyExporter] = []

    def factory(store):
        flaky.append(FlakyExporter(store))
        flaky[0].down.set()
        return flaky[0]

    with CollectorThread(settings, exporter_factory=factory) as collector:
        statuses = [_post(collector, _request(f"r{i}", spans=2)).status_code for i in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        refused = _post(collector, _request("refused"))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"

        channel = grpc.insecure_channel(collector.endpoint_url("otlp_grpc"))
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as raised:
            export(_request("grpc-refused"))
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert any(key == "grpc-status-details-bin" for key, _ in raised.value.trailing_metadata())
        channel.close()

        assert flaky[0].attempted.wait(10)
        flaky[0].down.clear()  # the store comes back: the held batches drain
        stored = rows(collector, "SELECT SpanName, count() FROM {db}.otel_traces GROUP BY SpanName ORDER BY SpanName")
        assert stored == [(f"r{i}-{j}", 1) for i in range(3) for j in range(2)]
        assert collector.metrics.value(m.EXPORT_FAILURES, signal="traces") >= 1
        assert _post(collector, _request("after")).status_code == 200


def test_shutdown_flushes_everything_accepted(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, batch={"timeout_seconds": 3600, "max_spans": 100_000})
    running = CollectorThread(settings)
    collector = running.__enter__()
    for i in range(20):
        assert _post(collector, _request(f"s{i}", spans=5)).status_code == 200
    assert (
        collector.metrics.value(m.SPANS_EXPORTED, signal="traces") == 0
    )  # still waiting for the (hour-long) batch timeout
    assert running.stop() == 0
    store = open_store(chdb_dsn, database)
    try:
        assert store.client().query(f"SELECT count() FROM {database}.otel_traces").result_rows == [(100,)]
    finally:
        store.close()


def test_second_process_is_told_who_owns_the_chdb_store(collector, chdb_dsn):
    code = f"from foothold.collector.store import open_store\nopen_store({chdb_dsn!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"owned by another process (pid {os.getpid()}" in result.stderr
    assert "foothold-audit sql" in result.stderr


def test_one_chdb_path_per_process_is_a_clear_error(chdb_dsn, tmp_path):
    with pytest.raises(StoreError, match="one path per process"):
        open_store(f"chdb://{tmp_path / 'other'}")


def test_relative_chdb_path_is_refused():
    with pytest.raises(StoreError, match="absolute path"):
        open_store("chdb://relative/store")


def test_migrations_are_idempotent_and_recorded(collector):
    assert collector.store.migrate() == []  # the collector applied them at start
    versions = rows(collector, "SELECT Version FROM {db}.foothold_schema_migrations FINAL ORDER BY Version")
    assert versions == [(m.version,) for m in migrations.MIGRATIONS]


def test_cluster_ddl_is_replicated_distributed_and_sharded_by_session():
    statements = migrations.render_all(Topology(database="audit", cluster="prod"))
    text = "\n".join(statements)
    assert all(" ON CLUSTER 'prod'" in s for s in statements)
    assert "CREATE TABLE IF NOT EXISTS audit.otel_traces_local ON CLUSTER 'prod'" in text
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/audit/otel_traces_local', '{replica}')" in text
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/tool_calls_local', '{replica}')"
        in text
    )
    assert "Distributed('prod', 'audit', 'tool_calls_local', cityHash64(SessionId))" in text
    assert (
        "Distributed('prod', 'audit', 'otel_traces_local', cityHash64(multiIf(SpanAttributes['gen_ai.conversation.id']"
        in text
    )
    assert "TO audit.tool_calls_local AS" in text and "FROM audit.otel_traces_local" in text
    single = "\n".join(migrations.render_all(Topology(database="audit")))
    assert "ON CLUSTER" not in single and "_local" not in single and "Distributed" not in single


# The contrib ClickHouse exporter's traces table (exporter/clickhouseexporter/internal/sql_templates/
# traces_table.sql), as ClickHouse reports it: every column in order with its type and codec, every index.
CONTRIB_TRACES_COLUMNS = [
    ("Timestamp", "DateTime64(9)", "CODEC(Delta(8), ZSTD(1))"),
    ("TraceId", "String", "CODEC(ZSTD(1))"),
    ("SpanId", "String", "CODEC(ZSTD(1))"),
    ("ParentSpanId", "String", "CODEC(ZSTD(1))"),
    ("TraceState", "String", "CODEC(ZSTD(1))"),
    ("SpanName", "LowCardinality(String)", "CODEC(ZSTD(1))"),
    ("SpanKind", "LowCardinality(String)", "CODEC(ZSTD(1))"),
    ("ServiceName", "LowCardinality(String)", "CODEC(ZSTD(1))"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)", "CODEC(ZSTD(1))"),
    ("ScopeName", "String", "CODEC(ZSTD(1))"),
    ("ScopeVersion", "String", "CODEC(ZSTD(1))"),
    ("SpanAttributes", "Map(LowCardinality(String), String)", "CODEC(ZSTD(1))"),
    ("Duration", "UInt64", "CODEC(ZSTD(1))"),
    ("StatusCode", "LowCardinality(String)", "CODEC(ZSTD(1))"),
    ("StatusMessage", "String", "CODEC(ZSTD(1))"),
    ("Events.Timestamp", "Array(DateTime64(9))", "CODEC(ZSTD(1))"),
    ("Events.Name", "Array(LowCardinality(String))", "CODEC(ZSTD(1))"),
    ("Events.Attributes", "Array(Map(LowCardinality(String), String))", "CODEC(ZSTD(1))"),
    ("Links.TraceId", "Array(String)", "CODEC(ZSTD(1))"),
    ("Links.SpanId", "Array(String)", "CODEC(ZSTD(1))"),
    ("Links.TraceState", "Array(String)", "CODEC(ZSTD(1))"),
    ("Links.Attributes", "Array(Map(LowCardinality(String), String))", "CODEC(ZSTD(1))"),
]
CONTRIB_TRACES_INDEXES = {
    ("idx_trace_id", "bloom_filter(0.001)", "TraceId"),
    ("idx_duration", "minmax", "Duration"),
    ("idx_res_attr_key", "bloom_filter(0.01)", "mapKeys(ResourceAttributes)"),
    ("idx_res_attr_value", "bloom_filter(0.01)", "mapValues(ResourceAttributes)"),
    ("idx_span_attr_key", "bloom_filter(0.01)", "mapKeys(SpanAttributes)"),
    ("idx_span_attr_value", "bloom_filter(0.01)", "mapValues(SpanAttributes)"),
}


def test_traces_table_matches_the_otel_collector_exporter(store):
    """otelcol-contrib can write into our otel_traces and create nothing: same columns, codecs, keys, indexes."""
    client, db = store.client(), store.database
    table = client.query(
        f"SELECT engine, sorting_key, partition_key FROM system.tables WHERE database = '{db}' AND name = 'otel_traces'"
    ).result_rows
    assert table == [("MergeTree", "ServiceName, SpanName, toDateTime(Timestamp)", "toDate(Timestamp)")]
    columns = client.query(
        f"SELECT name, type, compression_codec FROM system.columns WHERE database = '{db}' AND table "
        "= 'otel_traces' ORDER BY position"
    ).result_rows
    assert columns == CONTRIB_TRACES_COLUMNS
    indexes = client.query(
        f"SELECT name, type_full, expr FROM system.data_skipping_indices WHERE database = '{db}' AND "
        "table = 'otel_traces'"
    ).result_rows
    assert set(indexes) == CONTRIB_TRACES_INDEXES
    assert [name for name, _, _ in CONTRIB_TRACES_COLUMNS] == list(COLUMNS)  # and the exporter inserts exactly these


def test_old_exporter_spellings_of_status_and_kind_are_understood(store):
    """otelcol-contrib before v0.10x wrote STATUS_CODE_ERROR; rows written that way must still count."""
    client, db = store.client(), store.database
    client.command(
        f"INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, SpanName, SpanKind, StatusCode, "
        "SpanAttributes) VALUES "
        f"(now64(9), 'aa', 'bb', 'execute_tool x', 'SPAN_KIND_INTERNAL', 'STATUS_CODE_ERROR', "
        f"map('gen_ai.operation.name', 'execute_tool', 'gen_ai.tool.name', 'x'))"
    )
    assert client.query(f"SELECT ToolName, Status FROM {db}.tool_calls").result_rows == [("x", "Error")]


# --- configuration ---------------------------------------------------------------------------------------


def test_yaml_config_with_env_override(tmp_path, monkeypatch):
    config = tmp_path / "foothold.yaml"
    config.write_text("store:\n  dsn: chdb:///var/lib/foothold\nbatch:\n  max_spans: 100\n")
    monkeypatch.setenv("FOOTHOLD_STORE__DSN", "http://clickhouse:8123")
    settings = load_settings(config)
    assert settings.store_dsn == "http://clickhouse:8123" and settings.batch.max_spans == 100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("store: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("batch:\n  max_spans: many\n", "batch.max_spans"),
        ("batch:\n  max_spans: -1\n", "FOOTHOLD_BATCH__MAX_SPANS"),
        ("receivers:\n  grpc:\n    endpoint: nowhere\n", "HOST:PORT"),
        ("store:\n  dsn: postgres://x\n", "chdb://, http:// or https://"),
        ("stroe:\n  dsn: x\n", "stroe"),
        (b"store: \xff\xfe", "not valid YAML"),
    ],
)
def test_broken_config_names_the_key_and_the_fix(tmp_path, text, message):
    config = tmp_path / "foothold.yaml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert message in str(raised.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.yaml")


# --- a processor bug ---------------------------------------------------------------------------------------


class _BuggyProcessor:
    """Fails on any batch holding a span named 'poison', as a classifier bug on odd input would."""

    def process(self, batch: SpanBatch) -> None:
        if "poison" in batch.columns["SpanName"]:
            raise RuntimeError("processor bug")


def _named_request(name: str) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), name
    span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
    return request.SerializeToString()


def _post_and_flush(collector, body: bytes) -> None:
    response = httpx.post(
        collector.endpoint_url("otlp_http") + "/v1/traces",
        content=body,
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    assert collector.pipeline.flush(30)  # one batch per request


def test_a_batch_a_processor_fails_on_is_quarantined_then_resent_not_lost(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database)
    with CollectorThread(settings, processors=[_BuggyProcessor()]) as collector:
        for name in ("good-1", "poison", "good-2"):
            _post_and_flush(collector, _named_request(name))
        assert sorted(n for (n,) in rows(collector, "SELECT SpanName FROM {db}.otel_traces")) == ["good-1", "good-2"]
        counted = (
            collector.metrics.value(m.SPANS_QUARANTINED, signal="traces"),
            collector.metrics.value(m.SPANS_LOST, signal="traces"),
        )
        assert counted == (1, 0)
    (kept,) = (settings.data_dir / "quarantine").glob("*.otlp.pb")
    assert (
        ExportTraceServiceRequest.FromString(kept.read_bytes()).resource_spans[0].scope_spans[0].spans[0].name
        == "poison"
    )

    with CollectorThread(settings) as fixed:  # the fix deployed: re-send the file as the log says
        _post_and_flush(fixed, kept.read_bytes())
        assert sorted(n for (n,) in rows(fixed, "SELECT SpanName FROM {db}.otel_traces")) == [
            "good-1",
            "good-2",
            "poison",
        ]
