"""OTLP in, ClickHouse out: real SDK exporters and raw OTLP/JSON over real sockets into chDB."""

from __future__ import annotations

import gzip
import secrets

import httpx
import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from foothold import semconv
from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, rows, sdk_agent


def _emit_tool_session(agent, session_id: str) -> None:
    """One tool call with a child artifact span, an event and a link: every column gets data."""
    tracer = agent.tracer
    with tracer.start_as_current_span("planning") as planning:
        link_ctx = planning.get_span_context()
    tool_attrs = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: "bash",
        semconv.GEN_AI_TOOL_CALL_ID: "call-1",
        semconv.GEN_AI_CONVERSATION_ID: session_id,
        semconv.GEN_AI_AGENT_NAME: "coder",
        semconv.TASK_ID: "task-7",
        "retries": 2,
        "ratio": 0.5,
        "flags": [True, False],
    }
    with tracer.start_as_current_span(
        semconv.tool_span_name("bash"), kind=SpanKind.INTERNAL, attributes=tool_attrs, links=[Link(link_ctx, {"why": "plan"})]
    ) as tool:
        tool.add_event(semconv.EVENT_HUMAN_CHECKPOINT, {semconv.CHECKPOINT_APPROVER: "alice"})
        artifact_attrs = {
            semconv.ARTIFACT_KIND: "file",
            semconv.ARTIFACT_ACTION: "modify",
            semconv.ARTIFACT_PATH: "/sandbox/home/.ssh/authorized_keys",
            semconv.ARTIFACT_SIZE: 81,
            semconv.ARTIFACT_DURABLE: True,
            semconv.GEN_AI_CONVERSATION_ID: session_id,
        }
        with tracer.start_as_current_span("artifact file", attributes=artifact_attrs):
            pass
        tool.set_status(Status(StatusCode.ERROR, "exit 1"))


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_spans_are_stored_once_with_everything_intact(collector, protocol):
    agent = sdk_agent(collector, protocol, service=f"agent-{protocol}")
    _emit_tool_session(agent, "sess-1")
    agent.close()

    stored = rows(
        collector,
        "SELECT SpanName, ServiceName, SpanKind, StatusCode, StatusMessage, SpanAttributes, ResourceAttributes, "
        "Events.Name, Events.Attributes, Links.Attributes, ScopeName, Duration FROM {db}.otel_traces ORDER BY SpanName",
    )
    assert [r[0] for r in stored] == ["artifact file", "execute_tool bash", "planning"]
    artifact, tool, planning = stored
    assert tool[1] == f"agent-{protocol}" and tool[2] == "Internal"
    assert (tool[3], tool[4]) == ("Error", "exit 1")
    assert tool[5]["gen_ai.tool.name"] == "bash"
    assert (tool[5]["retries"], tool[5]["ratio"], tool[5]["flags"]) == ("2", "0.5", "[true,false]")
    assert tool[6]["service.name"] == f"agent-{protocol}" and "telemetry.sdk.language" in tool[6]
    assert tool[7] == [semconv.EVENT_HUMAN_CHECKPOINT] and tool[8] == [{semconv.CHECKPOINT_APPROVER: "alice"}]
    assert tool[9] == [{"why": "plan"}]
    assert tool[10] == "foothold.tests" and tool[11] > 0

    calls = rows(collector, "SELECT SessionId, ToolName, ToolCallId, AgentName, TaskId, Status, HumanCheckpoint FROM {db}.tool_calls")
    assert calls == [("sess-1", "bash", "call-1", "coder", "task-7", "Error", True)]
    artifacts = rows(collector, "SELECT SessionId, Kind, Action, Path, Size, Durable FROM {db}.artifacts")
    assert artifacts == [("sess-1", "file", "modify", "/sandbox/home/.ssh/authorized_keys", 81, True)]
    trace_lookup = rows(collector, "SELECT count() FROM {db}.otel_traces_trace_id_ts")
    assert trace_lookup == [(2,)]  # planning and the tool call are separate traces


def _json_body(trace_id: str, span_id: str, name: str = "execute_tool fetch") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "hand-written", "version": "1.0"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": name,
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000500000000",
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                                    {"key": "gen_ai.tool.name", "value": {"stringValue": "fetch"}},
                                    {"key": "gen_ai.conversation.id", "value": {"stringValue": "json-sess"}},
                                    {"key": "attempt", "value": {"intValue": "3"}},
                                    {"key": "nested", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}}},
                                ],
                                "events": [{"timeUnixNano": "1700000000100000000", "name": "sent"}],
                                "status": {"code": 1},
                                "someFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def _post(collector, body: bytes, content_type: str, **headers) -> httpx.Response:
    url = collector.endpoint_url("otlp_http") + "/v1/traces"
    return httpx.post(url, content=body, headers={"content-type": content_type, **headers})


def test_otlp_json_with_hex_ids_and_int_enums_is_stored(collector):
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    response = _post(collector, orjson.dumps(_json_body(trace_id, span_id)), "application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    stored = rows(collector, "SELECT TraceId, SpanId, SpanKind, StatusCode, Duration, SpanAttributes, ScopeVersion, Events.Name FROM {db}.otel_traces")
    assert stored == [
        (trace_id, span_id, "Client", "Ok", 500_000_000,
         {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "fetch", "gen_ai.conversation.id": "json-sess",
          "attempt": "3", "nested": '{"a":true}', "foothold.tool.categories": "untrusted_input"}, "1.0", ["sent"])
    ]  # fmt: skip
    assert rows(collector, "SELECT SessionId, ToolName, Status FROM {db}.tool_calls") == [("json-sess", "fetch", "Ok")]


def test_gzip_protobuf_body_is_accepted(collector):
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = secrets.token_bytes(16), secrets.token_bytes(8), "gz"
    response = _post(collector, gzip.compress(request.SerializeToString()), "application/x-protobuf", **{"content-encoding": "gzip"})
    assert response.status_code == 200
    ExportTraceServiceResponse.FromString(response.content)  # a protobuf answer to a protobuf request
    assert rows(collector, "SELECT SpanName FROM {db}.otel_traces") == [("gz",)]


def test_invalid_spans_are_a_partial_success_and_good_ones_are_kept(collector):
    body = _json_body(secrets.token_hex(16), secrets.token_hex(8))
    bad = dict(body["resourceSpans"][0]["scopeSpans"][0]["spans"][0], spanId="abc", name="bad")
    body["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    response = _post(collector, orjson.dumps(body), "application/json")
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "span_id" in partial["errorMessage"]
    assert rows(collector, "SELECT SpanName FROM {db}.otel_traces") == [("execute_tool fetch",)]


BAD_REQUESTS = [
    pytest.param(b"\xff\xfe not protobuf", "application/x-protobuf", {}, 400, "protobuf", id="malformed-protobuf"),
    pytest.param(b'{"resourceSpans": [', "application/json", {}, 400, "JSON", id="truncated-json"),
    pytest.param(b'{"resourceSpans": "x"}', "application/json", {}, 400, "array", id="wrong-type"),
    pytest.param(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}', "application/json", {}, 400, "OTLP", id="wrong-field-type"),
    pytest.param(b'{"a": "\xff"}', "application/json", {}, 400, "UTF-8", id="invalid-utf8-json"),
    pytest.param(b"\n\x03\x0a\x01\xff", "application/x-protobuf", {}, 400, "protobuf", id="truncated-protobuf"),
    pytest.param(b"{}", "text/plain", {}, 415, "Content-Type", id="wrong-content-type"),
    pytest.param(b"{}", "application/json", {"content-encoding": "br"}, 415, "Content-Encoding", id="unknown-encoding"),
    pytest.param(b"not gzip", "application/json", {"content-encoding": "gzip"}, 400, "gzip", id="bad-gzip"),
    pytest.param(b"x" * 70_000, "application/x-protobuf", {}, 413, "limit", id="oversized"),
    pytest.param(gzip.compress(b" " * 200_000), "application/json", {"content-encoding": "gzip"}, 413, "decompressed", id="gzip-bomb"),
]


@pytest.mark.parametrize(("body", "content_type", "headers", "status", "reason"), BAD_REQUESTS)
def test_bad_http_requests_get_a_clear_error_and_serving_goes_on(
    tmp_path, chdb_dsn, database, body, content_type, headers, status, reason
):
    settings = make_settings(tmp_path, chdb_dsn, database, receivers={"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0", "max_body_bytes": 65536}})
    with CollectorThread(settings) as collector:
        before = _post(collector, orjson.dumps(_json_body(secrets.token_hex(16), secrets.token_hex(8), "before")), "application/json")
        bad = _post(collector, body, content_type, **headers)
        after = _post(collector, orjson.dumps(_json_body(secrets.token_hex(16), secrets.token_hex(8), "after")), "application/json")
        assert (before.status_code, bad.status_code, after.status_code) == (200, status, 200)
        if bad.headers["content-type"].startswith("application/json"):
            message = bad.json()["message"]
        else:
            message = status_pb2.Status.FromString(bad.content).message
        assert reason in message
        stored = rows(collector, "SELECT SpanName FROM {db}.otel_traces ORDER BY SpanName")
        assert stored == [("after",), ("before",)]


def test_malformed_grpc_request_is_invalid_argument_and_serving_goes_on(collector):
    import grpc

    channel = grpc.insecure_channel(collector.endpoint_url("otlp_grpc"))
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    with pytest.raises(grpc.RpcError) as raised:
        export(b"\xff\xff\xff garbage")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "protobuf" in raised.value.details()
    agent = sdk_agent(collector, "grpc")
    with agent.tracer.start_as_current_span("still-serving"):
        pass
    agent.close()
    channel.close()
    assert rows(collector, "SELECT SpanName FROM {db}.otel_traces") == [("still-serving",)]


def test_unknown_path_and_method(collector):
    base = collector.endpoint_url("otlp_http")
    assert httpx.post(base + "/v1/logs", content=b"").status_code == 404
    assert httpx.get(base + "/v1/traces").status_code == 405
