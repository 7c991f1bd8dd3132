"""The exporter's JSONColumns insert stores exactly what clickhouse-connect's column insert stores."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from foothold.collector.exporter import ClickHouseExporter
from foothold.collector.rows import COLUMNS, to_batch
from foothold.collector.store import open_store

# Times the DateTime text heuristics would misread as dates, and the ends of the DateTime64(9) range.
EDGE_TIMES_NS = (0, 1, 20230101_123456789, 99999999_000000001, 1_700000000_123456789, 2**63 - 1)


def _sdk_request():
    """Spans as the SDK encodes them: events, links, arrays, unicode, errors, every kind."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "exporter-test", "host.name": "h-ü"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("foothold.tests", "1.0")
    with tracer.start_as_current_span("execute_tool shell", kind=SpanKind.INTERNAL) as parent:
        parent.set_attribute("gen_ai.operation.name", "execute_tool")
        parent.set_attribute("gen_ai.tool.name", "shell")
        parent.set_attribute("tags", ["a", 'b"c', "ü"])
        parent.set_attribute("retries", 3)
        parent.set_attribute("ratio", 0.25)
        parent.add_event("foothold.checkpoint", {"approved_by": "alice", "line\nbreak": "x\ty"})
        linked = parent.get_span_context()
    for kind in (SpanKind.CLIENT, SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER):
        with tracer.start_as_current_span(f"op {kind.name}", kind=kind, links=[Link(linked, {"why": "retry"})]) as span:
            span.set_status(Status(StatusCode.ERROR, "boom ✗"))
    provider.shutdown()
    request = encode_spans(memory.get_finished_spans())
    spans = request.resource_spans[0].scope_spans[0].spans
    for span, ns in zip(spans, EDGE_TIMES_NS, strict=False):
        span.start_time_unix_nano = ns
        span.end_time_unix_nano = max(ns, 2**63 - 1 - ns)
        for event in span.events:
            event.time_unix_nano = 2**63 - 1 - ns
    return request


def test_json_columns_insert_stores_what_the_column_insert_stores(chdb_dsn, database):
    store = open_store(chdb_dsn, database)
    try:
        client, db = store.client(), store.database
        client.command(f"CREATE TABLE {db}.reference AS {db}.otel_traces")
        batch = to_batch([_sdk_request()])
        assert len(batch) == 5 and set(batch.columns["Timestamp"]) >= {0, 20230101_123456789}

        ClickHouseExporter(store).export(batch)
        client.insert(f"{db}.reference", batch.data(), column_names=COLUMNS, column_oriented=True)

        select = "SELECT * FROM {db}.{table} ORDER BY SpanId"
        stored = client.query(select.format(db=db, table="otel_traces")).result_rows
        reference = client.query(select.format(db=db, table="reference")).result_rows
        assert len(stored) == 5
        assert stored == reference
        nanos = (
            "SELECT toUnixTimestamp64Nano(Timestamp), arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) "
            f"FROM {db}.otel_traces ORDER BY SpanId"
        )
        expected = sorted(
            zip(batch.columns["SpanId"], batch.columns["Timestamp"], batch.columns["Events.Timestamp"], strict=False)
        )
        assert client.query(nanos).result_rows == [(ts, list(events)) for _, ts, events in expected]
        assert client.query(f"SELECT count() FROM {db}.tool_calls").result_rows == [(1,)]
    finally:
        store.close()
