"""Agents' native telemetry in: OTLP logs over gRPC and HTTP, and native tool events as tool calls.

The counterparts are real where they can be here: the OpenTelemetry Python SDK's own OTLP log exporters
(gRPC and HTTP/protobuf, the exporters Claude Code's and Gemini CLI's Node SDKs mirror byte for byte: the
wire format is the OTLP protobuf) send to a running collector, and chDB stores. The agents' events are
built from each vendor's documented or source-defined attribute names (no Codex or Gemini binary runs
here: see test_codex_and_gemini_cli_binaries for why), cited per mapper:

- Claude Code: code.claude.com/docs/en/monitoring-usage ("Events": ``claude_code.tool_result`` with
  ``tool_name``, ``tool_use_id``, ``success``, ``duration_ms``, ``decision_type``/``decision_source``,
  ``tool_parameters`` JSON with ``full_command``/``file_path`` under OTEL_LOG_TOOL_DETAILS=1;
  ``claude_code.tool_decision`` with ``decision`` accept|reject and ``source``; ``session.id`` on all).
- Codex CLI: openai/codex codex-rs/otel (``OtelManager::tool_result``: ``event.name="codex.tool_result"``,
  ``conversation.id``, ``tool_name``, ``call_id``, ``arguments``, ``duration_ms``, ``success``,
  ``output``; ``tool_decision``: ``decision`` lowercased ReviewDecision, ``source``).
- Gemini CLI: google-gemini/gemini-cli packages/core/src/telemetry/types.ts (``EVENT_TOOL_CALL =
  'gemini_cli.tool_call'``: ``function_name``, ``function_args``, ``duration_ms``, ``success``,
  ``decision`` ToolCallDecision accept|reject|modify|auto_accept; ``EVENT_FILE_OPERATION``:
  ``tool_name``, ``operation``, ``lines``, no path); ``session.id`` from getCommonAttributes.
"""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from foothold.collector.auth import hash_token
from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, rows

# otelcol-contrib's clickhouseexporter logs_table.sql (internal/sqltemplates), column for column.
CONTRIB_LOGS_COLUMNS = [
    ("Timestamp", "DateTime64(9)"),
    ("TimestampTime", "DateTime"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("TraceFlags", "UInt8"),
    ("SeverityText", "LowCardinality(String)"),
    ("SeverityNumber", "UInt8"),
    ("ServiceName", "LowCardinality(String)"),
    ("Body", "String"),
    ("ResourceSchemaUrl", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeSchemaUrl", "LowCardinality(String)"),
    ("ScopeName", "String"),
    ("ScopeVersion", "LowCardinality(String)"),
    ("ScopeAttributes", "Map(LowCardinality(String), String)"),
    ("LogAttributes", "Map(LowCardinality(String), String)"),
    ("EventName", "String"),
]


def sdk_logger(collector, protocol: str, service: str):
    if protocol == "grpc":
        exporter = GrpcLogExporter(endpoint=collector.endpoint_url("otlp_grpc"), insecure=True)
    else:
        exporter = HttpLogExporter(endpoint=collector.endpoint_url("otlp_http") + "/v1/logs")
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider


def emit(provider, event: str, attributes: dict, scope: str = "com.anthropic.claude_code.events") -> None:
    provider.get_logger(scope).emit(body=event, event_name=event, attributes=attributes)


def claude_tool_result(session: str, call: str, command: str, **extra) -> dict:
    parameters = {"bash_command": command.split(maxsplit=1)[0], "full_command": command}
    return {
        "session.id": session,
        "event.name": "tool_result",
        "tool_name": "Bash",
        "tool_use_id": call,
        "success": "true",
        "duration_ms": "42",
        "decision_type": "accept",
        "decision_source": "config",
        "tool_parameters": orjson.dumps(parameters).decode(),
        **extra,
    }


def tool_calls(collector, session: str) -> list[dict]:
    names = (
        "ToolName, ToolCallId, AgentName, Status, ErrorType, DurationNs, Arguments, Decision, DecisionSource, "
        "Source, PersistenceKind, Technique, ToolCategories"
    )
    found = rows(
        collector, f"SELECT {names} FROM {{db}}.tool_calls FINAL WHERE SessionId = %(s)s ORDER BY Timestamp", s=session
    )
    return [dict(zip([n.strip() for n in names.split(",")], row, strict=True)) for row in found]


def test_otel_logs_is_the_contrib_exporters_table(collector):
    described = rows(collector, "DESCRIBE TABLE {db}.otel_logs")
    assert [(r[0], r[1]) for r in described] == CONTRIB_LOGS_COLUMNS
    create = rows(collector, "SHOW CREATE TABLE {db}.otel_logs")[0][0]
    assert "PARTITION BY toDate(TimestampTime)" in create
    assert "PRIMARY KEY (ServiceName, TimestampTime)" in create
    assert "ORDER BY (ServiceName, TimestampTime, Timestamp)" in create


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_log_exporter_events_land_in_otel_logs_and_become_tool_calls(collector, protocol):
    provider = sdk_logger(collector, protocol, "claude-code")
    command = "echo ssh-ed25519 AAAA attacker >> ~/.ssh/authorized_keys"
    emit(provider, "claude_code.tool_result", claude_tool_result("sess-native", "toolu_01", command))
    emit(provider, "claude_code.api_request", {"session.id": "sess-native", "model": "claude-x"})
    provider.shutdown()

    stored = rows(
        collector,
        "SELECT EventName, ServiceName, Body, ScopeName, LogAttributes FROM {db}.otel_logs ORDER BY EventName",
    )
    assert [r[0] for r in stored] == ["claude_code.api_request", "claude_code.tool_result"]
    event, service, body, scope, attributes = stored[1]
    assert (service, body, scope) == ("claude-code", "claude_code.tool_result", "com.anthropic.claude_code.events")
    assert attributes["tool_use_id"] == "toolu_01"  # the vendor's record is kept as it came

    (call,) = tool_calls(collector, "sess-native")  # the api_request is no tool call
    assert call["ToolName"] == "Bash" and call["ToolCallId"] == "toolu_01" and call["AgentName"] == "claude-code"
    assert call["Status"] == "Ok" and call["DurationNs"] == 42_000_000
    assert (call["Decision"], call["DecisionSource"], call["Source"]) == ("accept", "config", "claude_code.logs")
    assert orjson.loads(call["Arguments"]) == {"command": command}
    # judged by the same classifier as every other tool call
    assert call["PersistenceKind"] == "ssh_authorized_keys" and call["Technique"] == "T1098.004"
    assert "exec" in call["ToolCategories"]


def test_json_and_gzip_logs_with_a_bad_record_get_a_partial_success(collector):
    good = {"timeUnixNano": "1700000000000000000", "eventName": "codex.tool_result", "body": {"stringValue": "x"}}
    good["attributes"] = [
        {"key": k, "value": {"stringValue": v}}
        for k, v in {
            "conversation.id": "codex-json",
            "tool_name": "shell",
            "call_id": "call_9",
            "success": "true",
        }.items()
    ]
    bad = {"timeUnixNano": "1700000000000000000", "traceId": "abcd", "body": {"stringValue": "bad id"}}
    document = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [good, bad]}]}]}
    url = collector.endpoint_url("otlp_http") + "/v1/logs"
    answer = httpx.post(
        url,
        content=gzip.compress(orjson.dumps(document)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "trace_id" in answer.json()["partialSuccess"]["errorMessage"]
    garbage = httpx.post(url, content=b"\x00not protobuf", headers={"Content-Type": "application/x-protobuf"})
    assert garbage.status_code == 400 and "ExportLogsServiceRequest" in garbage.text
    assert [c["ToolCallId"] for c in tool_calls(collector, "codex-json")] == ["call_9"]  # the good one kept


def test_protobuf_logs_answer_in_protobuf(collector):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.time_unix_nano = 1_700_000_000_000_000_000
    record.body.string_value = "hello"
    answer = httpx.post(
        collector.endpoint_url("otlp_http") + "/v1/logs",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert answer.status_code == 200
    assert not ExportLogsServiceResponse.FromString(answer.content).HasField("partial_success")
    assert rows(collector, "SELECT Body FROM {db}.otel_logs") == [("hello",)]


def test_logs_need_the_same_token_as_traces(tmp_path, chdb_dsn, database):
    settings = make_settings(
        tmp_path, chdb_dsn, database, auth={"tokens": [{"name": "claude", "sha256": hash_token("s3cret-token-1")}]}
    )
    with CollectorThread(settings) as collector:
        url = collector.endpoint_url("otlp_http") + "/v1/logs"
        body = orjson.dumps({"resourceLogs": []})
        refused = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert refused.status_code == 401
        exporter = HttpLogExporter(endpoint=url, headers={"Authorization": "Bearer s3cret-token-1"})
        provider = LoggerProvider(resource=Resource.create({"service.name": "claude-code"}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        emit(provider, "claude_code.tool_result", claude_tool_result("sess-auth", "toolu_a", "ls"))
        provider.shutdown()
        (sender,) = rows(collector, "SELECT LogAttributes['foothold.sender'] FROM {db}.otel_logs")
        assert sender == ("claude",)  # the authenticated sender is stamped on logs as on spans
