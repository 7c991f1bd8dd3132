"""Fuzzing the OTLP decoders: whatever arrives, only BadRequest may escape, and nothing hangs.

decode (protobuf or JSON) → validate (with tight limits) → to_batch is the path every request takes
before it is spooled. Bounded for CI: a fixed number of examples and a per-example deadline.
"""

from __future__ import annotations

import gzip
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector.config import LimitsConfig
from foothold.collector.otlp import BadRequest, decode_json, decode_protobuf, validate
from foothold.collector.receivers.http import _decompress, _HttpError
from foothold.collector.rows import to_batch

LIMITS = LimitsConfig(
    max_spans_per_request=500, max_attributes_per_span=16, max_attribute_value_bytes=64, max_nesting_depth=4
)
FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _pipeline(decode, body: bytes) -> None:
    try:
        accepted = validate(decode(body), LIMITS)
    except BadRequest:
        return
    batch = to_batch([accepted.request], limits=LIMITS)
    assert len(batch) == accepted.spans
    for attributes in batch.span_attributes:  # the limits held (the collector's two stamps may come on top)
        assert len(attributes) <= LIMITS.max_attributes_per_span + 2
        assert all(len(v.encode()) <= LIMITS.max_attribute_value_bytes + 40 for v in attributes.values())


def _valid_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    kv = resource.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "fuzz"
    scope = resource.scope_spans.add()
    for i in range(3):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"s{i}"
        span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
        attribute = span.attributes.add()
        attribute.key = "nested"
        attribute.value.kvlist_value.values.add(key="a").value.array_value.values.add().string_value = "x" * 100
        span.events.add(name="e", time_unix_nano=5).attributes.add(key="k").value.int_value = 7
        span.links.add(trace_id=os.urandom(16), span_id=os.urandom(8))
    return request


VALID = _valid_request().SerializeToString()


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_as_protobuf(body):
    _pipeline(decode_protobuf, body)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_as_json(body):
    _pipeline(decode_json, body)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, len(VALID)),
)
def test_mutated_valid_protobuf(mutations, cut):
    body = bytearray(VALID)
    for index, byte in mutations:
        body[index] = byte
    _pipeline(decode_protobuf, bytes(body[:cut]) if cut % 3 == 0 else bytes(body))


GZIPPED, GZIP_LIMIT = gzip.compress(VALID, mtime=0), 3 * len(VALID)


@FUZZ
@given(
    st.integers(1, 4),
    st.lists(st.tuples(st.integers(0, 4 * len(GZIPPED)), st.integers(0, 255)), max_size=4),
    st.none() | st.integers(0, 4 * len(GZIPPED)),
)
def test_gzip_bodies_are_inflated_whole_or_refused(members, mutations, cut):
    """Each member to its end, all members, never over the limit: else 400 or 413, never a silent prefix."""
    body = bytearray(GZIPPED * members)
    for index, byte in mutations:
        body[index % len(body)] = byte
    intact = not mutations and (cut is None or cut >= len(body))
    body = bytes(body[:cut])
    try:
        inflated = _decompress(body, "gzip", GZIP_LIMIT)
    except _HttpError as exc:
        assert exc.status in (400, 413)
        assert not intact or (exc.status == 413 and members * len(VALID) > GZIP_LIMIT)
        return
    assert len(inflated) <= GZIP_LIMIT and inflated == gzip.decompress(body)  # the stdlib reads it the same way
    assert not intact or inflated == VALID * members


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@FUZZ
@given(st.integers(1, 400), st.sampled_from(["kvlist", "array"]))
def test_deeply_nested_values(depth, kind):
    """AnyValue nested ``depth`` deep, built on the wire (the message API would recurse in Python)."""
    value = _field(1, b"bottom")  # AnyValue.string_value
    for _ in range(depth):
        if kind == "array":
            value = _field(5, _field(1, value))  # AnyValue.array_value → ArrayValue.values
        else:
            value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))  # kvlist_value → KeyValue
    span = _field(1, os.urandom(16)) + _field(2, os.urandom(8)) + _field(9, _field(1, b"attr") + _field(2, value))
    body = _field(1, _field(2, _field(2, span)))  # request.resource_spans.scope_spans.spans
    _pipeline(decode_protobuf, body)


@FUZZ
@given(st.integers(0, 3000), st.integers(0, 200))
def test_huge_counts(spans, attributes):
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for _ in range(spans):
        span = scope.spans.add(trace_id=b"\1" * 16, span_id=b"\2" * 8)
    if spans:
        for i in range(attributes):
            span.attributes.add(key=f"k{i}").value.string_value = "v"
    _pipeline(decode_protobuf, request.SerializeToString())


@FUZZ
@given(st.binary(min_size=1, max_size=64))
def test_invalid_utf8_in_strings(raw):
    span = _field(1, os.urandom(16)) + _field(2, os.urandom(8)) + _field(5, raw)  # Span.name
    attr = _field(9, _field(1, raw) + _field(2, _field(1, raw)))  # key and string_value
    _pipeline(decode_protobuf, _field(1, _field(2, _field(2, span + attr))))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
KEYS = st.sampled_from(
    [
        "resourceSpans",
        "scopeSpans",
        "spans",
        "traceId",
        "spanId",
        "parentSpanId",
        "attributes",
        "key",
        "value",
        "stringValue",
        "intValue",
        "arrayValue",
        "kvlistValue",
        "values",
        "events",
        "links",
        "kind",
        "status",
        "code",
        "startTimeUnixNano",
        "name",
        "resource",
    ]
)


@st.composite
def otlp_json_shaped(draw):
    """Documents shaped like OTLP/JSON with the wrong types in random places."""
    value = draw(JSON_VALUES)
    for _ in range(draw(st.integers(1, 6))):
        value = {draw(KEYS): value if draw(st.booleans()) else [value]}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [value]}]}]} if draw(st.booleans()) else value


@FUZZ
@given(otlp_json_shaped())
def test_wrong_json_types(document):
    _pipeline(decode_json, json.dumps(document).encode())  # stdlib: orjson cannot write ints beyond 64 bits


@FUZZ
@given(st.integers(1, 3000))
def test_deep_json(depth):
    body = b'{"resourceSpans":' + b"[" * depth + b"]" * depth + b"}"
    _pipeline(decode_json, body)
    value = b'{"stringValue":"x"}'
    for _ in range(depth % 200):
        value = b'{"kvlistValue":{"values":[{"key":"k","value":' + value + b"}]}}"
    span = (
        b'{"traceId":"'
        + b"1" * 32
        + b'","spanId":"'
        + b"2" * 16
        + b'","attributes":[{"key":"a","value":'
        + value
        + b"}]}"
    )
    _pipeline(decode_json, b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + b"]}]}]}")
