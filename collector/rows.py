"""Flattening OTLP trace requests into the ``otel_traces`` columns, column-wise.

Values follow the contrib ClickHouse exporter: attribute values as strings (arrays and maps as JSON),
ids as lowercase hex, kinds and status codes in the exporter's current spelling ('Server', 'Error').
This is the collector's hot path: plain loops over the parsed messages, no per-span objects.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

COLUMNS: tuple[str, ...] = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
)  # fmt: skip

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
MAX_DEPTH = 8  # default nesting of array/kvlist values kept (limits.max_nesting_depth); deeper becomes a marker


@dataclass
class SpanBatch:
    """Rows of ``otel_traces`` held column-wise, the shape clickhouse-connect inserts fastest."""

    columns: dict[str, list] = field(default_factory=lambda: {name: [] for name in COLUMNS})
    # Set when the batch is a fixed range of spool records: a re-insert of the same range after a crash
    # carries the same token, and ClickHouse drops it instead of storing the spans twice.
    dedup_token: str = ""

    def __len__(self) -> int:
        return len(self.columns["SpanId"])

    @property
    def span_attributes(self) -> list[dict[str, str]]:
        return self.columns["SpanAttributes"]

    def data(self) -> list[list]:
        return [self.columns[name] for name in COLUMNS]


def _plain(value, depth: int, max_depth: int = MAX_DEPTH):
    """An AnyValue as a JSON-able Python value (for arrays and maps)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if depth >= max_depth:
        return "[foothold:truncated nesting]"
    if which == "array_value":
        return [_plain(v, depth + 1, max_depth) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value, depth + 1, max_depth) for kv in value.kvlist_value.values}
    return None


def any_value_str(value, max_depth: int = MAX_DEPTH) -> str:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        text = repr(value.double_value)
        return text[:-2] if text.endswith(".0") else text
    if which is None:
        return ""
    plain = _plain(value, 0, max_depth)
    return plain if isinstance(plain, str) else orjson.dumps(plain, option=orjson.OPT_NON_STR_KEYS).decode()


def attributes_map(attributes, max_depth: int = MAX_DEPTH) -> dict[str, str]:
    out = {}
    for kv in attributes:
        value = kv.value
        if value.WhichOneof("value") == "string_value":  # the common case, without the call
            out[kv.key] = value.string_value
        else:
            out[kv.key] = any_value_str(value, max_depth)
    return out


def to_batch(
    requests: Iterable[ExportTraceServiceRequest], batch: SpanBatch | None = None, max_depth: int = MAX_DEPTH
) -> SpanBatch:
    batch = SpanBatch() if batch is None else batch
    amap = attributes_map if max_depth == MAX_DEPTH else partial(attributes_map, max_depth=max_depth)
    c = batch.columns
    timestamp, trace_id, span_id, parent_id = c["Timestamp"], c["TraceId"], c["SpanId"], c["ParentSpanId"]
    trace_state, span_name, span_kind, service = c["TraceState"], c["SpanName"], c["SpanKind"], c["ServiceName"]
    resource_attrs, scope_name, scope_version = c["ResourceAttributes"], c["ScopeName"], c["ScopeVersion"]
    span_attrs, duration, status_code, status_msg = c["SpanAttributes"], c["Duration"], c["StatusCode"], c["StatusMessage"]
    ev_ts, ev_name, ev_attrs = c["Events.Timestamp"], c["Events.Name"], c["Events.Attributes"]
    ln_trace, ln_span, ln_state, ln_attrs = c["Links.TraceId"], c["Links.SpanId"], c["Links.TraceState"], c["Links.Attributes"]
    for request in requests:
        for resource_spans in request.resource_spans:
            resource = amap(resource_spans.resource.attributes)
            service_name = resource.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                for span in scope_spans.spans:
                    start, end = span.start_time_unix_nano, span.end_time_unix_nano
                    timestamp.append(start)
                    trace_id.append(span.trace_id.hex())
                    span_id.append(span.span_id.hex())
                    parent_id.append(span.parent_span_id.hex())
                    trace_state.append(span.trace_state)
                    span_name.append(span.name)
                    span_kind.append(SPAN_KINDS[span.kind] if 0 <= span.kind < 6 else "Unspecified")
                    service.append(service_name)
                    resource_attrs.append(resource)
                    scope_name.append(scope.name)
                    scope_version.append(scope.version)
                    span_attrs.append(amap(span.attributes))
                    duration.append(end - start if end > start else 0)
                    status_code.append(STATUS_CODES[span.status.code] if 0 <= span.status.code < 3 else "Unset")
                    status_msg.append(span.status.message)
                    events, links = span.events, span.links
                    ev_ts.append([e.time_unix_nano for e in events])
                    ev_name.append([e.name for e in events])
                    ev_attrs.append([amap(e.attributes) for e in events])
                    ln_trace.append([link.trace_id.hex() for link in links])
                    ln_span.append([link.span_id.hex() for link in links])
                    ln_state.append([link.trace_state for link in links])
                    ln_attrs.append([amap(link.attributes) for link in links])
    return batch

