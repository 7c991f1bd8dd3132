"""Decoding and validating OTLP trace requests, shared by the gRPC and HTTP receivers.

Protobuf goes through the upb-backed generated classes. OTLP/JSON is proto3 JSON with two differences
handled here: trace and span ids are hex (proto3 JSON would use base64), and unknown fields must be
ignored. Invalid spans (bad ids, times past 2262) are dropped from the request and reported as a partial
success, so one bad span never costs the good ones around it.

A span whose start time lies outside the accepted window (``limits.max_span_age_days`` in the past,
``limits.max_span_future_seconds`` ahead: a skewed clock, or an attacker spreading one request over
hundreds of daily partitions) is kept, not dropped, since it is audit evidence: it is moved to the receive
time with its duration intact, its original start goes into ``foothold.original_start_time_unix_nano``,
and the answer says so in ``partial_success.error_message`` (a warning: nothing rejected).

Of the input limits (``limits`` in the config), the per-request one is applied here, before anything is
spooled: a request with too many spans is refused whole. The attribute limits (count, value length,
nesting) are applied where the values become columns (:mod:`foothold.collector.rows`), so the receivers do
not walk every attribute a second time; their markers and counters say what was cut.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from foothold.collector.config import LimitsConfig
from foothold.semconv import ORIGINAL_START_TIME

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
MAX_TIME_UNIX_NANO = 2**63 - 1  # DateTime64(9) ends in 2262; a later time would fail every insert of its batch
DEFAULT_LIMITS = LimitsConfig()


class BadRequest(Exception):
    """The body cannot be decoded as an OTLP trace request (HTTP 400 / gRPC INVALID_ARGUMENT)."""


class LimitExceeded(BadRequest):
    """The request is over an input limit that refuses it whole (limits.max_spans_per_request)."""

    def __init__(self, message: str, spans: int) -> None:
        super().__init__(message)
        self.spans = spans


@dataclass(frozen=True)
class Accepted:
    request: ExportTraceServiceRequest
    spans: int
    rejected: int
    error_message: str
    payload: bytes = b""  # the request's protobuf encoding, when the receiver already holds it
    clamped: int = 0  # spans moved to the receive time (start outside the accepted window)

    @property
    def changed(self) -> bool:
        """Validation changed the request: the received bytes no longer encode it."""
        return bool(self.rejected or self.clamped)

    def encoded(self) -> bytes:
        """The request as protobuf: the body as received when it is still that, else serialised."""
        return self.payload or self.request.SerializeToString()

    def response(self) -> ExportTraceServiceResponse:
        response = ExportTraceServiceResponse()
        if self.rejected:
            response.partial_success.rejected_spans = self.rejected
        if self.error_message:
            response.partial_success.error_message = self.error_message
        return response


M = TypeVar("M", bound=Message)
JsonObject = dict[str, object]  # a parsed OTLP/JSON object, its values checked where they are read


def parse_protobuf(body: bytes, message: M) -> M:
    """``body`` parsed into ``message`` (a fresh OTLP request), or a BadRequest naming the message type."""
    try:
        message.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not a valid OTLP {type(message).__name__} protobuf: {exc}") from exc
    return message


def parse_json(body: bytes, message: M, top_key: str, hex_ids_to_base64: Callable[[JsonObject], None]) -> M:
    """OTLP/JSON into ``message``: ids converted from hex first, unknown fields ignored, errors as BadRequest."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON (UTF-8 required): {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest(f"OTLP/JSON body must be an object with a {top_key} array")
    try:
        hex_ids_to_base64(document)
        json_format.ParseDict(document, message, ignore_unknown_fields=True)  # fills message in place
        return message
    except (json_format.ParseError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not a valid OTLP/JSON {type(message).__name__}: {exc}") from exc


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    return parse_protobuf(body, ExportTraceServiceRequest())


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    return parse_json(body, ExportTraceServiceRequest(), "resourceSpans", _hex_ids_to_base64)


def _hex_ids_to_base64(document: JsonObject) -> None:
    """OTLP/JSON carries ids as hex; the proto3 JSON parser expects base64 for bytes fields."""
    for resource_spans in _list(document.get("resourceSpans")):
        for scope_spans in _list(_dict(resource_spans).get("scopeSpans")):
            for span in _list(_dict(scope_spans).get("spans")):
                span = _dict(span)
                _convert_ids(span)
                for link in _list(span.get("links")):
                    _convert_ids(_dict(link))


def _convert_ids(obj: JsonObject) -> None:
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                obj[key] = ""  # an invalid id fails validation below and is reported, not fatal
        elif value is not None:
            raise BadRequest(f"{key} must be a hex string, got {type(value).__name__}")


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"expected an array, got {type(value).__name__}")
    return value


def _dict(value: object) -> JsonObject:
    if not isinstance(value, dict):
        raise BadRequest(f"expected an object, got {type(value).__name__}")
    return value


def _span_problem(span: Span) -> str | None:
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


def _clamp_time(span: Span, now_ns: int) -> None:
    """Move the span to ``now_ns`` keeping its duration, the original start in an attribute."""
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    original = span.attributes.add()
    original.key = ORIGINAL_START_TIME
    original.value.string_value = str(start)
    span.start_time_unix_nano = now_ns
    span.end_time_unix_nano = min(now_ns + (end - start), MAX_TIME_UNIX_NANO) if end >= start else now_ns


def validate(
    request: ExportTraceServiceRequest, limits: LimitsConfig = DEFAULT_LIMITS, now_ns: int | None = None
) -> Accepted:
    """Check the request limit, drop invalid spans and clamp out-of-window start times in place; the result
    says what to answer."""
    total = count_spans(request)
    if total > limits.max_spans_per_request:
        raise LimitExceeded(
            f"request has {total} spans, over the limit of {limits.max_spans_per_request} per request "
            "(limits.max_spans_per_request): split it into smaller requests",
            total,
        )
    now_ns = time.time_ns() if now_ns is None else now_ns
    oldest = now_ns - int(limits.max_span_age_days * 86_400 * 1e9)
    newest = now_ns + int(limits.max_span_future_seconds * 1e9)
    rejected = clamped = 0
    first_problem = ""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            bad = []
            for i, span in enumerate(spans):
                if problem := _span_problem(span):
                    first_problem = first_problem or problem
                    bad.append(i)
                elif not oldest <= span.start_time_unix_nano <= newest:
                    _clamp_time(span, now_ns)
                    clamped += 1
            for i in reversed(bad):
                del spans[i]
            rejected += len(bad)
    messages = [f"{rejected} span(s) rejected: {first_problem}"] if rejected else []
    if clamped:
        messages.append(
            f"{clamped} span(s) started outside the accepted window (limits.max_span_age_days, "
            f"limits.max_span_future_seconds): stored at the receive time, the original start in {ORIGINAL_START_TIME}"
        )
    return Accepted(
        request=request, spans=total - rejected, rejected=rejected, error_message="; ".join(messages), clamped=clamped
    )
