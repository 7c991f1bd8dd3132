"""Decoding and validating OTLP trace requests, shared by the gRPC and HTTP receivers.

Protobuf goes through the upb-backed generated classes. OTLP/JSON is proto3 JSON with two differences
handled here: trace and span ids are hex (proto3 JSON would use base64), and unknown fields must be
ignored. Invalid spans (bad ids, times past 2262) are dropped from the request and reported as a partial
success, so one bad span never costs the good ones around it.

Input limits (``limits`` in the config) are applied here, before anything is spooled or stored: a request
with too many spans is refused whole; attributes beyond the per-list limit are dropped and counted in a
``foothold.truncated.attributes`` attribute; over-long values are cut with a visible ``…[truncated N
bytes]`` suffix; array/kvlist values nested deeper than the limit become a marker. Nothing is silent: the
sender gets a partial-success warning and the pipeline counts every refusal and truncation.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from foothold.collector.config import LimitsConfig

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
MAX_TIME_UNIX_NANO = 2**63 - 1  # DateTime64(9) ends in 2262; a later time would fail every insert of its batch
TRUNCATED_ATTRIBUTES = "foothold.truncated.attributes"
NESTING_MARKER = "[foothold:truncated nesting]"
DEFAULT_LIMITS = LimitsConfig()


class BadRequest(Exception):
    """The body cannot be decoded as an OTLP trace request (HTTP 400 / gRPC INVALID_ARGUMENT)."""


class LimitExceeded(BadRequest):
    """The request is over an input limit that refuses it whole (limits.max_spans_per_request)."""

    def __init__(self, message: str, spans: int) -> None:
        super().__init__(message)
        self.spans = spans


@dataclass
class Truncations:
    """What the input limits changed in one request (summed into the pipeline's counters)."""

    dropped_attributes: int = 0  # attributes dropped beyond limits.max_attributes_per_span
    truncated_values: int = 0  # values cut at limits.max_attribute_value_bytes
    truncated_nesting: int = 0  # array/kvlist values deeper than limits.max_nesting_depth

    def __bool__(self) -> bool:
        return bool(self.dropped_attributes or self.truncated_values or self.truncated_nesting)

    def describe(self) -> str:
        parts = []
        if self.dropped_attributes:
            parts.append(f"{self.dropped_attributes} attribute(s) dropped (limits.max_attributes_per_span)")
        if self.truncated_values:
            parts.append(f"{self.truncated_values} value(s) truncated (limits.max_attribute_value_bytes)")
        if self.truncated_nesting:
            parts.append(f"{self.truncated_nesting} value(s) nested too deep (limits.max_nesting_depth)")
        return "; ".join(parts)


@dataclass(frozen=True)
class Accepted:
    request: ExportTraceServiceRequest
    spans: int
    rejected: int
    error_message: str
    truncations: Truncations = field(default_factory=Truncations)

    def response(self) -> ExportTraceServiceResponse:
        response = ExportTraceServiceResponse()
        if self.rejected:
            response.partial_success.rejected_spans = self.rejected
        if self.error_message:  # rejected_spans 0 with a message: an OTLP warning (here: truncation)
            response.partial_success.error_message = self.error_message
        return response


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not a valid OTLP ExportTraceServiceRequest protobuf: {exc}") from exc
    return request


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON (UTF-8 required): {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest("OTLP/JSON body must be an object with a resourceSpans array")
    try:
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not a valid OTLP/JSON trace request: {exc}") from exc


def _hex_ids_to_base64(document: dict) -> None:
    """OTLP/JSON carries ids as hex; the proto3 JSON parser expects base64 for bytes fields."""
    for resource_spans in _list(document.get("resourceSpans")):
        for scope_spans in _list(_dict(resource_spans).get("scopeSpans")):
            for span in _list(_dict(scope_spans).get("spans")):
                span = _dict(span)
                _convert_ids(span)
                for link in _list(span.get("links")):
                    _convert_ids(_dict(link))


def _convert_ids(obj: dict) -> None:
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                obj[key] = ""  # an invalid id fails validation below and is reported, not fatal
        elif value is not None:
            raise BadRequest(f"{key} must be a hex string, got {type(value).__name__}")


def _list(value: object) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"expected an array, got {type(value).__name__}")
    return value


def _dict(value: object) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(f"expected an object, got {type(value).__name__}")
    return value


def _span_problem(span) -> str | None:
    if len(span.trace_id) != 16 or span.trace_id == b"\0" * 16:
        return "trace_id must be 16 non-zero bytes"
    if len(span.span_id) != 8 or span.span_id == b"\0" * 8:
        return "span_id must be 8 non-zero bytes"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "parent_span_id must be empty or 8 bytes"
    if span.start_time_unix_nano > MAX_TIME_UNIX_NANO or span.end_time_unix_nano > MAX_TIME_UNIX_NANO:
        return "start/end time must be before 2262 (fits DateTime64(9))"
    if span.events and any(event.time_unix_nano > MAX_TIME_UNIX_NANO for event in span.events):
        return "event time must be before 2262 (fits DateTime64(9))"
    return None


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope_spans.spans) for rs in request.resource_spans for scope_spans in rs.scope_spans)


def validate(request: ExportTraceServiceRequest, limits: LimitsConfig = DEFAULT_LIMITS) -> Accepted:
    """Check limits, drop invalid spans in place, cut what is over the limits; the result says what to answer."""
    total = count_spans(request)
    if total > limits.max_spans_per_request:
        raise LimitExceeded(
            f"request has {total} spans, over the limit of {limits.max_spans_per_request} per request "
            "(limits.max_spans_per_request): split it into smaller requests",
            total,
        )
    accepted = rejected = 0
    first_problem = ""
    cut = Truncations()
    for resource_spans in request.resource_spans:
        _limit_attributes(resource_spans.resource.attributes, limits, cut)
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            bad = [i for i, span in enumerate(spans) if _span_problem(span)]
            if bad:
                first_problem = first_problem or _span_problem(spans[bad[0]]) or ""
                for i in reversed(bad):
                    del spans[i]
                rejected += len(bad)
            accepted += len(spans)
            for span in spans:
                _limit_attributes(span.attributes, limits, cut)
                if span.events:
                    for event in span.events:
                        _limit_attributes(event.attributes, limits, cut)
                if span.links:
                    for link in span.links:
                        _limit_attributes(link.attributes, limits, cut)
    messages = [f"{rejected} span(s) rejected: {first_problem}"] if rejected else []
    if cut:
        messages.append(cut.describe())
    return Accepted(request=request, spans=accepted, rejected=rejected, error_message="; ".join(messages), truncations=cut)


def _limit_attributes(attributes, limits: LimitsConfig, cut: Truncations) -> None:
    """Apply the count, length and nesting limits to one attribute list, in place.

    One pass; scalar values are judged inline (a str of n characters is at most 4n UTF-8 bytes, so only a
    string over limit/4 characters is measured); only possibly-long and nested values take the full check.
    """
    if not attributes:
        return
    limit = limits.max_attributes_per_span
    if len(attributes) > limit:
        dropped = len(attributes) - limit
        del attributes[limit:]
        marker = attributes.add()
        marker.key = TRUNCATED_ATTRIBUTES
        marker.value.int_value = dropped
        cut.dropped_attributes += dropped
    max_bytes = limits.max_attribute_value_bytes
    for kv in attributes:
        value = kv.value
        which = value.WhichOneof("value")
        if which == "string_value":
            if len(value.string_value) * 4 > max_bytes:
                _limit_value(value, 0, limits, cut)
        elif which in _NESTED_OR_BYTES:
            _limit_value(value, 0, limits, cut)


_NESTED_OR_BYTES = frozenset(("array_value", "kvlist_value", "bytes_value"))  # bool/int/double/unset: nothing to limit


def truncation_marker(cut_bytes: int) -> str:
    return f"…[truncated {cut_bytes} bytes]"


def _cut_text(text: str, limit: int) -> tuple[str, int]:
    """At most ``limit`` UTF-8 bytes of ``text`` (whole characters) and the number of bytes cut."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, 0
    kept = raw[:limit].decode("utf-8", "ignore")
    return kept, len(raw) - len(kept.encode("utf-8"))


def _limit_value(value, depth: int, limits: LimitsConfig, cut: Truncations) -> None:
    which = value.WhichOneof("value")
    limit = limits.max_attribute_value_bytes
    if which == "string_value":
        text = value.string_value
        if len(text) * 4 > limit:  # cheap pre-check: a str of n characters is at most 4n UTF-8 bytes
            kept, removed = _cut_text(text, limit)
            if removed:
                value.string_value = kept + truncation_marker(removed)
                cut.truncated_values += 1
    elif which == "bytes_value":
        data = value.bytes_value
        if len(data) > limit:
            value.string_value = base64.b64encode(data[:limit]).decode() + truncation_marker(len(data) - limit)
            cut.truncated_values += 1
    elif which in ("array_value", "kvlist_value"):
        if depth >= limits.max_nesting_depth:
            value.string_value = NESTING_MARKER
            cut.truncated_nesting += 1
            return
        children = value.array_value.values if which == "array_value" else [kv.value for kv in value.kvlist_value.values]
        for child in children:
            _limit_value(child, depth + 1, limits, cut)
        if depth == 0 and value.ByteSize() > limit:  # many small elements: the rendered value, cut, as a string
            from foothold.collector.rows import any_value_str

            kept, removed = _cut_text(any_value_str(value, limits.max_nesting_depth), limit)
            value.string_value = kept + truncation_marker(removed) if removed else kept
            cut.truncated_values += 1 if removed else 0
