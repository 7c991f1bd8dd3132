"""Decoding and validating OTLP trace requests, shared by the gRPC and HTTP receivers.

Protobuf goes through the upb-backed generated classes. OTLP/JSON is proto3 JSON with two differences
handled here: trace and span ids are hex (proto3 JSON would use base64), and unknown fields must be
ignored. Invalid spans (bad ids) are dropped from the request and reported as a partial success, so one
bad span never costs the good ones around it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class BadRequest(Exception):
    """The body cannot be decoded as an OTLP trace request (HTTP 400 / gRPC INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class Accepted:
    request: ExportTraceServiceRequest
    spans: int
    rejected: int
    error_message: str

    def response(self) -> ExportTraceServiceResponse:
        response = ExportTraceServiceResponse()
        if self.rejected:
            response.partial_success.rejected_spans = self.rejected
            response.partial_success.error_message = self.error_message
        return response


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
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
    except (json_format.ParseError, TypeError, AttributeError, ValueError) as exc:
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
    return None


def validate(request: ExportTraceServiceRequest) -> Accepted:
    """Count spans and drop invalid ones in place; the result says what to answer."""
    accepted = rejected = 0
    first_problem = ""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            bad = [i for i, span in enumerate(spans) if _span_problem(span)]
            if bad:
                first_problem = first_problem or _span_problem(spans[bad[0]]) or ""
                for i in reversed(bad):
                    del spans[i]
                rejected += len(bad)
            accepted += len(spans)
    message = f"{rejected} span(s) rejected: {first_problem}" if rejected else ""
    return Accepted(request=request, spans=accepted, rejected=rejected, error_message=message)
