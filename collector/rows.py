"""Flattening OTLP trace requests into the ``otel_traces`` columns, column-wise, within the input limits.

Values follow the contrib ClickHouse exporter: attribute values as strings (arrays and maps as JSON),
ids as lowercase hex, kinds and status codes in the exporter's current spelling ('Server', 'Error').
This is the collector's hot path: plain loops over the parsed messages, no per-span objects.

The attribute limits (``limits`` in the config) apply here, where every value is read anyway, rather than
in a second walk in the receivers: attributes beyond the per-list limit are dropped and counted in a
``foothold.truncated.attributes`` attribute (the collector's own ``foothold.sender`` stamp is always kept);
values over the byte limit are cut with a visible ``…[truncated N bytes]`` suffix; array/kvlist values
nested deeper than the limit become a marker. Each batch counts what it changed (``SpanBatch.truncations``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from foothold.collector.config import LimitsConfig
from foothold.semconv import ORIGINAL_START_TIME, SENDER

COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
TRUNCATED_ATTRIBUTES = "foothold.truncated.attributes"
NESTING_MARKER = "[foothold:truncated nesting]"
DEFAULT_LIMITS = LimitsConfig()
_COLLECTOR_STAMPS = frozenset((SENDER, ORIGINAL_START_TIME))  # kept past the attribute-count limit
EMPTY = ()  # the Events.* / Links.* value of a span without events or links (a tuple: nothing appends to it)

# One column's values in row order. A cell's Python type follows its ClickHouse column (COLUMNS): int for
# times and durations, str for ids and names, dict[str, str] for maps, a list or EMPTY for Nested columns.
Column: TypeAlias = list[Any]
# An array or map attribute value as JSON-able Python (its stored form is JSON text).
JsonValue: TypeAlias = "str | bool | int | float | None | list[JsonValue] | dict[str, JsonValue]"


class Attribute(Protocol):
    """An OTLP KeyValue, or anything shaped like one (a log body goes through the same limits)."""

    @property
    def key(self) -> str: ...

    @property
    def value(self) -> AnyValue: ...


AttributeMapper = Callable[[Sequence[Attribute]], dict[str, str]]


@dataclass
class Truncations:
    """What the input limits changed in a batch (summed into the pipeline's counters)."""

    dropped_attributes: int = 0  # attributes dropped beyond limits.max_attributes_per_span
    truncated_values: int = 0  # values cut at limits.max_attribute_value_bytes
    truncated_nesting: int = 0  # array/kvlist values deeper than limits.max_nesting_depth


@dataclass
class SpanBatch:
    """Rows of ``otel_traces`` held column-wise, the shape clickhouse-connect inserts fastest."""

    columns: dict[str, Column] = field(default_factory=lambda: {name: [] for name in COLUMNS})
    # Set when the batch is a fixed range of spool records: a re-insert of the same range after a crash
    # carries the same token, and ClickHouse drops it instead of storing the spans twice.
    dedup_token: str = ""
    truncations: Truncations = field(default_factory=Truncations)
    # (SessionId, SpanId) of native log rows in tool_calls that spans of this batch record better: the exporter
    # deletes them (set by processors/native.py CallOfRecord).
    superseded: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns["SpanId"])

    @property
    def span_attributes(self) -> list[dict[str, str]]:
        return self.columns["SpanAttributes"]

    def data(self) -> list[Column]:
        return [self.columns[name] for name in COLUMNS]

    def select(self, rows: list[int]) -> SpanBatch:
        """A new batch of the given rows, in that order (no token, no truncation counts)."""
        return SpanBatch({name: [values[i] for i in rows] for name, values in self.columns.items()})


def truncation_marker(cut_bytes: int) -> str:
    return f"…[truncated {cut_bytes} bytes]"


def _cut_text(text: str, limit: int) -> tuple[str, int]:
    """At most ``limit`` UTF-8 bytes of ``text`` (whole characters) and the number of bytes cut."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, 0
    kept = raw[:limit].decode("utf-8", "ignore")
    return kept, len(raw) - len(kept.encode("utf-8"))


def _plain(value: AnyValue, depth: int, max_depth: int, cut: Truncations) -> JsonValue:
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
    if which is None:
        return None
    if depth >= max_depth:
        cut.truncated_nesting += 1
        return NESTING_MARKER
    if which == "array_value":
        return [_plain(v, depth + 1, max_depth, cut) for v in value.array_value.values]
    return {kv.key: _plain(kv.value, depth + 1, max_depth, cut) for kv in value.kvlist_value.values}


def _scalar_str(value: AnyValue, which: str | None) -> str:
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        text = repr(value.double_value)
        return text[:-2] if text.endswith(".0") else text
    return ""


def _value_str(value: AnyValue, limits: LimitsConfig, cut: Truncations) -> str:
    """A non-string AnyValue as the stored string, within the byte and nesting limits."""
    which = value.WhichOneof("value")
    limit = limits.max_attribute_value_bytes
    if which == "bytes_value":
        data = value.bytes_value
        if len(data) <= limit:
            return base64.b64encode(data).decode()
        cut.truncated_values += 1
        return base64.b64encode(data[:limit]).decode() + truncation_marker(len(data) - limit)
    if which not in ("array_value", "kvlist_value"):
        return _scalar_str(value, which)
    text = orjson.dumps(_plain(value, 0, limits.max_nesting_depth, cut), option=orjson.OPT_NON_STR_KEYS).decode()
    return _limit_text(text, limit, cut)


def _limit_text(text: str, limit: int, cut: Truncations) -> str:
    kept, removed = _cut_text(text, limit)
    if not removed:
        return text
    cut.truncated_values += 1
    return kept + truncation_marker(removed)


def attribute_mapper(limits: LimitsConfig, cut: Truncations) -> AttributeMapper:
    """A function from an OTLP attribute list to the stored map, applying ``limits`` and counting in ``cut``."""
    max_count = limits.max_attributes_per_span
    max_bytes = limits.max_attribute_value_bytes
    unmeasured = max_bytes // 4  # a str of n characters is at most 4n UTF-8 bytes: shorter ones always fit

    def mapped(attributes: Sequence[Attribute]) -> dict[str, str]:
        out: dict[str, str] = {}
        for kv in attributes[:max_count] if len(attributes) > max_count else attributes:
            value = kv.value
            text = value.string_value  # non-empty: the oneof holds a string (the common case, inline)
            if text or value.WhichOneof("value") == "string_value":
                out[kv.key] = _limit_text(text, max_bytes, cut) if len(text) > unmeasured else text
            else:
                out[kv.key] = _value_str(value, limits, cut)
        if len(attributes) > max_count:
            _drop_beyond_limit(attributes, max_count, out, cut)
        return out

    return mapped


def _drop_beyond_limit(attributes: Sequence[Attribute], max_count: int, out: dict[str, str], cut: Truncations) -> None:
    """Count what lies beyond the limit; keep the collector's own stamps, which the receiver appended."""
    dropped = len(attributes) - max_count
    for kv in attributes[max_count:]:
        if kv.key in _COLLECTOR_STAMPS:
            out[kv.key] = kv.value.string_value
            dropped -= 1
    if dropped:
        out[TRUNCATED_ATTRIBUTES] = str(dropped)
        cut.dropped_attributes += dropped


def to_batch(
    requests: Iterable[ExportTraceServiceRequest], batch: SpanBatch | None = None, limits: LimitsConfig = DEFAULT_LIMITS
) -> SpanBatch:
    batch = SpanBatch() if batch is None else batch
    amap = attribute_mapper(limits, batch.truncations)
    c = batch.columns
    timestamp, trace_id, span_id, parent_id = c["Timestamp"], c["TraceId"], c["SpanId"], c["ParentSpanId"]
    trace_state, span_name, span_kind, service = c["TraceState"], c["SpanName"], c["SpanKind"], c["ServiceName"]
    resource_attrs, scope_name, scope_version = c["ResourceAttributes"], c["ScopeName"], c["ScopeVersion"]
    span_attrs, duration, status_code, status_msg = (
        c["SpanAttributes"],
        c["Duration"],
        c["StatusCode"],
        c["StatusMessage"],
    )
    ev_ts, ev_name, ev_attrs = c["Events.Timestamp"], c["Events.Name"], c["Events.Attributes"]
    ln_trace, ln_span, ln_state, ln_attrs = (
        c["Links.TraceId"],
        c["Links.SpanId"],
        c["Links.TraceState"],
        c["Links.Attributes"],
    )
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
                    if events:
                        ev_ts.append([e.time_unix_nano for e in events])
                        ev_name.append([e.name for e in events])
                        ev_attrs.append([amap(e.attributes) for e in events])
                    else:  # most spans: one shared, immutable empty value instead of new lists
                        ev_ts.append(EMPTY)
                        ev_name.append(EMPTY)
                        ev_attrs.append(EMPTY)
                    if links:
                        ln_trace.append([link.trace_id.hex() for link in links])
                        ln_span.append([link.span_id.hex() for link in links])
                        ln_state.append([link.trace_state for link in links])
                        ln_attrs.append([amap(link.attributes) for link in links])
                    else:
                        ln_trace.append(EMPTY)
                        ln_span.append(EMPTY)
                        ln_state.append(EMPTY)
                        ln_attrs.append(EMPTY)
    return batch
