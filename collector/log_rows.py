"""Flattening OTLP logs requests into the ``otel_logs`` columns (the contrib exporter's logs table).

Values follow the contrib exporter: attributes as strings (arrays and maps as JSON), ids as lowercase
hex, ``ServiceName`` from the resource, the body as its string (a structured body as JSON), ``EventName``
from the record's event name (or its ``event.name`` attribute, which is where Claude Code, Codex CLI and Gemini
CLI put it, when the field is empty: SDKs older than the field; or holds a tracing callsite: Codex CLI's Rust
SDK). The input limits apply as they do to spans
(:func:`foothold.collector.rows.attribute_mapper`). ``TimestampTime`` is left to its column default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from foothold.collector.config import LimitsConfig
from foothold.collector.rows import DEFAULT_LIMITS, AttributeMapper, Column, Truncations, attribute_mapper

COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "TraceFlags",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceSchemaUrl",
    "ResourceAttributes",
    "ScopeSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "LogAttributes",
    "EventName",
)
EVENT_NAME_ATTRIBUTE = "event.name"
# Rust's tracing appender (Codex CLI 0.171) fills the EventName field with tracing's default name for an event,
# its callsite (``event otel/src/tool_result.rs:54``), and names the event only in the attribute.
_TRACING_CALLSITE = "event "


@dataclass
class LogBatch:
    """Rows of ``otel_logs`` held column-wise. Processors see each record's attributes as ``span_attributes``
    (the name the span processors use), so redaction and classification run on logs unchanged."""

    columns: dict[str, Column] = field(default_factory=lambda: {name: [] for name in COLUMNS})
    dedup_token: str = ""
    truncations: Truncations = field(default_factory=Truncations)
    table_columns: tuple[str, ...] = COLUMNS

    def __len__(self) -> int:
        return len(self.columns["Timestamp"])

    @property
    def span_attributes(self) -> list[dict[str, str]]:
        return self.columns["LogAttributes"]

    def data(self) -> list[Column]:
        return [self.columns[name] for name in COLUMNS]

    def select(self, rows: list[int]) -> LogBatch:
        """A new batch of the given rows, in that order (no token, no truncation counts)."""
        return LogBatch({name: [values[i] for i in rows] for name, values in self.columns.items()})


def to_log_batch(
    requests: Iterable[ExportLogsServiceRequest], batch: LogBatch | None = None, limits: LimitsConfig = DEFAULT_LIMITS
) -> LogBatch:
    batch = LogBatch() if batch is None else batch
    amap = attribute_mapper(limits, batch.truncations)
    body_map = attribute_mapper(limits, batch.truncations)
    c = batch.columns
    for request in requests:
        for resource_logs in request.resource_logs:
            resource = amap(resource_logs.resource.attributes)
            service_name = resource.get("service.name", "")
            for scope_logs in resource_logs.scope_logs:
                scope = scope_logs.scope
                scope_attributes = amap(scope.attributes)
                for record in scope_logs.log_records:
                    attributes = amap(record.attributes)
                    c["Timestamp"].append(record.time_unix_nano or record.observed_time_unix_nano)
                    c["TraceId"].append(record.trace_id.hex())
                    c["SpanId"].append(record.span_id.hex())
                    c["TraceFlags"].append(record.flags & 0xFF)
                    c["SeverityText"].append(record.severity_text)
                    c["SeverityNumber"].append(max(0, min(255, record.severity_number)))
                    c["ServiceName"].append(service_name)
                    c["Body"].append(_body(record, body_map))
                    c["ResourceSchemaUrl"].append(resource_logs.schema_url)
                    c["ResourceAttributes"].append(resource)
                    c["ScopeSchemaUrl"].append(scope_logs.schema_url)
                    c["ScopeName"].append(scope.name)
                    c["ScopeVersion"].append(scope.version)
                    c["ScopeAttributes"].append(scope_attributes)
                    c["LogAttributes"].append(attributes)
                    c["EventName"].append(_event_name(record.event_name, attributes))
    return batch


def _event_name(field: str, attributes: dict[str, str]) -> str:
    """The record's event name field, unless it is empty or a tracing callsite and the attribute names the event."""
    if field and not field.startswith(_TRACING_CALLSITE):
        return field
    return attributes.get(EVENT_NAME_ATTRIBUTE) or field


def _body(record: LogRecord, body_map: AttributeMapper) -> str:
    """The body as stored: a string as is, anything else as JSON text, within the value limits."""
    return body_map([_Body(record.body)]).get("", "") if record.HasField("body") else ""


class _Body:
    """The body as a one-attribute list, so it goes through the same limits as every attribute value."""

    __slots__ = ("value",)
    key = ""

    def __init__(self, value: AnyValue) -> None:
        self.value = value
