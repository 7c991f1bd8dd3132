"""Property (issue 13): whatever a sender throws at a running collector, the pipeline keeps moving.

Hypothesis generates hostile OTLP requests — times anywhere in 0..2**64-1 (1970, 2262 and beyond, one request
over 100+ days), huge and oddly typed attributes, bad ids, deep nesting, out-of-range enums, random or truncated
bodies, gzip that is not gzip, JSON with base64 instead of hex ids — and sends them over real sockets (OTLP/HTTP
protobuf, JSON, gzip, and OTLP/gRPC) to a running collector on 127.0.0.1 with its real chDB store. After every
request: the answer is an OTLP answer (never 5xx, never 429), the pipeline drains (no wedged batch), and at the
end a good request is stored. No shrinking: a wedged collector stays wedged, so the first failure is the report.
"""

from __future__ import annotations

import gzip
import os
import time

import grpc
import httpx
from google.protobuf import json_format
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector import metrics as m
from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, rows

DAY_NS = 86_400 * 1_000_000_000
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

times = st.one_of(
    st.integers(0, 2**64 - 1),
    st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1]),
    st.integers(-400, 400).map(lambda days: max(0, time.time_ns() + days * DAY_NS)),
)
ids = st.one_of(st.binary(min_size=0, max_size=20), st.just(b"\0" * 16), st.binary(min_size=8, max_size=8))
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=64)
big = st.integers(0, 300_000).map(lambda n: "\u202e\x1b[2J" + "A" * n)  # bidi, ESC and length


def _nested(value, depth: int) -> None:
    for _ in range(depth):
        value = value.array_value.values.add()
    value.string_value = "bottom"


@st.composite
def hostile_requests(draw) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 3))):
        resource_spans = request.resource_spans.add()
        kv = resource_spans.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", draw(st.one_of(text, big))
        scope = resource_spans.scope_spans.add()
        scope.scope.name = draw(text)
        for _ in range(draw(st.integers(0, 12))):
            span = scope.spans.add()
            span.trace_id = draw(st.one_of(ids, st.binary(min_size=16, max_size=16)))
            span.span_id = draw(ids)
            span.parent_span_id = draw(st.one_of(st.just(b""), ids))
            span.name = draw(st.one_of(text, big))
            span.kind = draw(st.integers(-(2**31), 2**31 - 1))
            span.status.code = draw(st.integers(-(2**31), 2**31 - 1))
            span.start_time_unix_nano = draw(times)
            span.end_time_unix_nano = draw(times)
            for _ in range(draw(st.integers(0, 4))):
                attribute = span.attributes.add()
                attribute.key = draw(st.one_of(text, big))
                kind = draw(st.sampled_from(["str", "int", "double", "bytes", "nested", "kvlist", "empty"]))
                if kind == "str":
                    attribute.value.string_value = draw(st.one_of(text, big))
                elif kind == "int":
                    attribute.value.int_value = draw(st.integers(-(2**63), 2**63 - 1))
                elif kind == "double":
                    attribute.value.double_value = draw(st.floats(allow_nan=True, allow_infinity=True))
                elif kind == "bytes":
                    attribute.value.bytes_value = draw(st.binary(max_size=512))
                elif kind == "nested":
                    _nested(attribute.value, draw(st.integers(0, 120)))
                elif kind == "kvlist":
                    for _ in range(draw(st.integers(0, 5))):
                        entry = attribute.value.kvlist_value.values.add()
                        entry.key, entry.value.string_value = draw(text), draw(text)
            for _ in range(draw(st.integers(0, 2))):
                event = span.events.add()
                event.name, event.time_unix_nano = draw(text), draw(times)
            for _ in range(draw(st.integers(0, 2))):
                link = span.links.add()
                link.trace_id, link.span_id = draw(ids), draw(ids)
    return request


def spread_over_days(days: int) -> ExportTraceServiceRequest:
    """The reported wedge: one request whose spans start on ``days`` different days."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for day in range(days):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"day-{day}"
        span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns() - (day + 1) * DAY_NS * 3
    return request


ENCODINGS = ["protobuf", "json", "gzip", "grpc", "random-bytes", "truncated", "bad-gzip"]


def _send(collector, grpc_export, request: ExportTraceServiceRequest, encoding: str, noise: bytes) -> str:
    """Send; returns the outcome as a short string (HTTP status or gRPC code name)."""
    body = request.SerializeToString()
    if encoding == "grpc":
        try:
            grpc_export(body, timeout=60)
            return "OK"
        except grpc.RpcError as exc:
            return exc.code().name
    headers = {"content-type": "application/x-protobuf"}
    if encoding == "json":
        body, headers = json_format.MessageToJson(request).encode(), {"content-type": "application/json"}
    elif encoding == "gzip":
        body, headers = gzip.compress(body), headers | {"content-encoding": "gzip"}
    elif encoding == "random-bytes":
        body = noise
    elif encoding == "truncated":
        body = body[: len(body) // 2]
    elif encoding == "bad-gzip":
        body, headers = noise, headers | {"content-encoding": "gzip"}
    url = collector.endpoint_url("otlp_http") + "/v1/traces"
    return str(httpx.post(url, content=body, headers=headers, timeout=60).status_code)


ANSWERS = {"200", "400", "413", "415", "OK", "INVALID_ARGUMENT"}  # never 429/5xx/RESOURCE_EXHAUSTED/UNAVAILABLE


def test_hostile_requests_never_stop_the_pipeline(tmp_path, chdb_dsn, database):
    config = make_settings(tmp_path, chdb_dsn, database, batch={"timeout_seconds": 0.05, "retry_max_seconds": 0.5})
    with CollectorThread(config) as collector, grpc.insecure_channel(collector.endpoint_url("otlp_grpc")) as channel:
        grpc_export = channel.unary_unary(EXPORT)

        @settings(
            max_examples=60,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        )
        @given(request=hostile_requests(), encoding=st.sampled_from(ENCODINGS), noise=st.binary(max_size=256))
        @example(request=spread_over_days(101), encoding="protobuf", noise=b"")
        @example(request=spread_over_days(101), encoding="grpc", noise=b"")
        def hostile(request, encoding, noise):
            outcome = _send(collector, grpc_export, request, encoding, noise)
            assert outcome in ANSWERS, f"answered {outcome}"
            assert collector.pipeline.flush(20), "the pipeline is wedged"

        hostile()
        assert collector.metrics.value(m.SPANS_REFUSED, signal="traces") == 0  # no 429 at any point
        good = ExportTraceServiceRequest()
        span = good.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), "good-after-hostile"
        span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
        assert _send(collector, grpc_export, good, "protobuf", b"") == "200"
        assert rows(collector, "SELECT count() FROM {db}.otel_traces WHERE SpanName = 'good-after-hostile'") == [(1,)]
        assert collector.metrics.value(m.SPANS_LOST, signal="traces") == 0
