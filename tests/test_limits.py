"""Input limits: refused whole or cut with a visible marker, never silently; every case counted."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from foothold.collector import metrics as m
from foothold.collector.auth import stamp_sender
from foothold.collector.config import LimitsConfig
from foothold.collector.otlp import BadRequest, LimitExceeded, validate
from foothold.collector.rows import NESTING_MARKER, TRUNCATED_ATTRIBUTES, Truncations, to_batch
from foothold.collector.service import CollectorThread
from foothold.semconv import SENDER
from tests.conftest import make_settings, rows

LIMITS = LimitsConfig(
    max_spans_per_request=10, max_attributes_per_span=4, max_attribute_value_bytes=32, max_nesting_depth=3
)


def _request(spans: int = 1) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"limits-{i}"
        span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
    return request


def _span(request: ExportTraceServiceRequest):
    return request.resource_spans[0].scope_spans[0].spans[0]


def _set(span, key: str):
    attribute = span.attributes.add()
    attribute.key = key
    return attribute.value


def _flatten(request: ExportTraceServiceRequest, limits: LimitsConfig = LIMITS) -> tuple[dict[str, str], Truncations]:
    batch = to_batch([request], limits=limits)
    return batch.span_attributes[0], batch.truncations


def test_too_many_spans_refuses_the_whole_request_naming_the_limit():
    with pytest.raises(LimitExceeded) as raised:
        validate(_request(spans=11), LIMITS)
    assert raised.value.spans == 11 and isinstance(raised.value, BadRequest)
    assert "11 spans" in str(raised.value) and "limits.max_spans_per_request" in str(raised.value)
    assert validate(_request(spans=10), LIMITS).spans == 10


def test_attributes_beyond_the_limit_are_dropped_with_a_count_marker():
    request = _request()
    for i in range(7):
        _set(_span(request), f"k{i}").string_value = "v"
    attributes, cut = _flatten(request)
    assert attributes == {"k0": "v", "k1": "v", "k2": "v", "k3": "v", TRUNCATED_ATTRIBUTES: "3"}
    assert cut.dropped_attributes == 3


def test_the_sender_stamp_survives_the_attribute_limit():
    """The receiver appends foothold.sender last; a client padding its spans must not push it out."""
    request = _request()
    for i in range(7):
        _set(_span(request), f"k{i}").string_value = "v"
    _set(_span(request), SENDER).string_value = "forged"
    stamp_sender(request, "team-a")
    attributes, cut = _flatten(request)
    assert attributes[SENDER] == "team-a"
    assert attributes[TRUNCATED_ATTRIBUTES] == "3" and cut.dropped_attributes == 3


def test_long_values_are_cut_at_a_character_boundary_with_a_visible_marker():
    request = _request()
    span = _span(request)
    _set(span, "ascii").string_value = "a" * 100
    _set(span, "utf8").string_value = "é" * 40  # 80 bytes; 32 is a boundary, 33 would split a character
    _set(span, "bytes").bytes_value = b"\x01" * 50
    _set(span, "short").string_value = "fits"
    attributes, cut = _flatten(request)
    assert attributes["ascii"] == "a" * 32 + "…[truncated 68 bytes]"
    assert attributes["utf8"] == "é" * 16 + "…[truncated 48 bytes]"
    assert attributes["bytes"].endswith("…[truncated 18 bytes]")
    assert attributes["short"] == "fits"
    assert cut.truncated_values == 3


def test_large_arrays_are_rendered_then_cut():
    request = _request()
    array = _set(_span(request), "many").array_value
    for i in range(100):
        array.values.add().int_value = i
    attributes, cut = _flatten(request)
    assert attributes["many"].startswith("[0,1,2,3") and "…[truncated" in attributes["many"]
    assert cut.truncated_values == 1


def test_nesting_deeper_than_the_limit_becomes_a_marker():
    request = _request()
    value = _set(_span(request), "deep")
    for _ in range(6):
        value = value.kvlist_value.values.add()
        value.key = "k"
        value = value.value
    value.string_value = "bottom"
    attributes, cut = _flatten(request, LIMITS.model_copy(update={"max_attribute_value_bytes": 1024}))
    assert attributes["deep"] == '{"k":{"k":{"k":"' + NESTING_MARKER + '"}}}'
    assert cut.truncated_nesting == 1


def test_event_link_and_resource_attributes_are_limited_too():
    request = _request()
    for i in range(6):
        kv = request.resource_spans[0].resource.attributes.add()
        kv.key, kv.value.string_value = f"r{i}", "x" * 40
    event = _span(request).events.add()
    for i in range(5):
        kv = event.attributes.add()
        kv.key, kv.value.string_value = f"e{i}", "v"
    batch = to_batch([request], limits=LIMITS)
    assert batch.truncations.dropped_attributes == 2 + 1
    assert batch.truncations.truncated_values == 4
    assert batch.columns["ResourceAttributes"][0][TRUNCATED_ATTRIBUTES] == "2"
    assert batch.columns["Events.Attributes"][0][0][TRUNCATED_ATTRIBUTES] == "1"


def test_spans_dated_after_2262_are_rejected_not_left_to_poison_a_batch():
    request = _request(spans=2)
    request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 2**64 - 1
    accepted = validate(request, LIMITS)
    assert accepted.spans == 1 and accepted.rejected == 1 and "2262" in accepted.error_message


def test_limits_over_http_answer_400_and_count_everything(tmp_path, chdb_dsn, database):
    limits = LIMITS.model_dump()
    settings = make_settings(tmp_path, chdb_dsn, database, limits=limits)
    with CollectorThread(settings) as collector:
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        headers = {"content-type": "application/x-protobuf"}
        refused = httpx.post(url, content=_request(spans=11).SerializeToString(), headers=headers)
        assert refused.status_code == 400
        assert b"limits.max_spans_per_request" in refused.content

        request = _request()
        for i in range(6):
            _set(_span(request), f"k{i}").string_value = "y" * 40
        answered = httpx.post(url, content=request.SerializeToString(), headers=headers)
        assert answered.status_code == 200
        response = ExportTraceServiceResponse.FromString(answered.content)
        assert not response.HasField("partial_success")  # cut, not rejected: the markers and counters say so

        stored = rows(collector, "SELECT SpanAttributes FROM {db}.otel_traces")
        (attributes,) = stored[0]
        assert attributes[TRUNCATED_ATTRIBUTES] == "2" and attributes["k0"].endswith("…[truncated 8 bytes]")
        refused = collector.metrics.value(m.REQUESTS_REFUSED, receiver="otlp_http", reason="over_limits")
        assert (refused, collector.metrics.value(m.SPANS_LIMIT_REFUSED, receiver="otlp_http")) == (1, 11)
        assert (
            collector.metrics.value(m.ATTRIBUTES_DROPPED, signal="traces"),
            collector.metrics.value(m.VALUES_TRUNCATED, signal="traces"),
        ) == (2, 4)
        figures = httpx.get(collector.endpoint_url("query_api") + "/healthz").json()["metrics"]
        assert figures['foothold_attributes_dropped_total{signal="traces"}'] == 2
        assert figures['foothold_requests_refused_total{reason="over_limits",receiver="otlp_http"}'] == 1
