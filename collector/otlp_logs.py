"""Decoding and validating OTLP logs requests (``LogsService/Export``, ``POST /v1/logs``).

The logs counterpart of :mod:`foothold.collector.otlp`, with the same rules: protobuf through the upb
classes; OTLP/JSON as proto3 JSON with hex trace/span ids and unknown fields ignored; invalid records (bad
ids, times past 2262) dropped and answered as a partial success (``rejected_log_records``); a request with
more records than ``limits.max_spans_per_request`` refused whole. The authenticated sender is stamped on
every record as ``foothold.sender``, as on spans. Coding agents (Claude Code, Codex CLI, Gemini CLI)
export their tool activity this way.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from foothold.collector.auth import stamp_items
from foothold.collector.config import LimitsConfig
from foothold.collector.otlp import (
    DEFAULT_LIMITS,
    MAX_TIME_UNIX_NANO,
    Accepted,
    BadRequest,
    JsonObject,
    LimitExceeded,
    parse_json,
    parse_protobuf,
)


@dataclass(frozen=True)
class LogsAccepted(Accepted):
    """An accepted logs request; ``spans`` counts its log records (the pipeline's unit of work)."""

    def response(self) -> ExportLogsServiceResponse:
        response = ExportLogsServiceResponse()
        if self.rejected:
            response.partial_success.rejected_log_records = self.rejected
        if self.error_message:
            response.partial_success.error_message = self.error_message
        return response


def decode_protobuf(body: bytes) -> ExportLogsServiceRequest:
    return parse_protobuf(body, ExportLogsServiceRequest())


def decode_json(body: bytes) -> ExportLogsServiceRequest:
    return parse_json(body, ExportLogsServiceRequest(), "resourceLogs", _hex_ids_to_base64)


def _hex_ids_to_base64(document: JsonObject) -> None:
    """OTLP/JSON carries ids as hex; the proto3 JSON parser expects base64 for bytes fields."""
    for resource_logs in _list(document.get("resourceLogs")):
        for scope_logs in _list(_dict(resource_logs).get("scopeLogs")):
            for record in _list(_dict(scope_logs).get("logRecords")):
                record = _dict(record)
                for key in ("traceId", "spanId"):
                    value = record.get(key)
                    if isinstance(value, str):
                        try:
                            record[key] = base64.b64encode(bytes.fromhex(value)).decode()
                        except ValueError:
                            record[key] = "AA=="  # one byte: invalid length, so the record is rejected below
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


def _record_problem(record: LogRecord) -> str | None:
    if record.trace_id and len(record.trace_id) != 16:
        return "trace_id must be empty or 16 bytes"
    if record.span_id and len(record.span_id) != 8:
        return "span_id must be empty or 8 bytes"
    if record.time_unix_nano > MAX_TIME_UNIX_NANO or record.observed_time_unix_nano > MAX_TIME_UNIX_NANO:
        return "time must be before 2262 (fits DateTime64(9))"
    return None


def count_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(scope.log_records) for rl in request.resource_logs for scope in rl.scope_logs)


def validate(request: ExportLogsServiceRequest, limits: LimitsConfig = DEFAULT_LIMITS) -> LogsAccepted:
    """Check the request limit and drop invalid records in place; the result says what to answer."""
    total = count_records(request)
    if total > limits.max_spans_per_request:
        raise LimitExceeded(
            f"request has {total} log records, over the limit of {limits.max_spans_per_request} per request "
            "(limits.max_spans_per_request): split it into smaller requests",
            total,
        )
    rejected, first_problem = 0, ""
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            records = scope_logs.log_records
            bad = [i for i, record in enumerate(records) if _record_problem(record)]
            if bad:
                first_problem = first_problem or _record_problem(records[bad[0]]) or ""
                for i in reversed(bad):
                    del records[i]
                rejected += len(bad)
    message = f"{rejected} log record(s) rejected: {first_problem}" if rejected else ""
    return LogsAccepted(request=request, spans=total - rejected, rejected=rejected, error_message=message)


def stamp_sender(
    request: ExportLogsServiceRequest, sender: str, body: bytes = b"", escaped: bool = True
) -> tuple[int, bool]:
    """``foothold.sender`` on every record, any client-supplied value removed (see auth.stamp_sender)."""
    groups = (
        scope_logs.log_records for resource_logs in request.resource_logs for scope_logs in resource_logs.scope_logs
    )
    return stamp_items(groups, sender, body, escaped)
