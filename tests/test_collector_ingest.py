"""OTLP in, ClickHouse out: real SDK exporters and raw OTLP/JSON over real sockets into chDB."""

from __future__ import annotations

import asyncio
import gzip
import secrets
import socket
import time
import zlib

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
from foothold.collector import metrics as m
from foothold.collector.config import HttpReceiverConfig
from foothold.collector.receivers.http import otlp_http_app
from foothold.collector.schema import sql
from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, rows, sdk_agent

# recent, so inside the accepted time window (limits.max_span_age_days); whole seconds
_T0 = time.time_ns() // 1_000_000_000 * 1_000_000_000


def _emit_tool_session(agent, session_id: str):
    """One tool call with a child artifact span, an event and a link: every column gets data. Returns the link's
    target."""
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
        semconv.tool_span_name("bash"),
        kind=SpanKind.INTERNAL,
        attributes=tool_attrs,
        links=[Link(link_ctx, {"why": "plan"})],
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
    return link_ctx


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_spans_are_stored_once_with_everything_intact(collector, protocol):
    agent = sdk_agent(collector, protocol, service=f"agent-{protocol}")
    link_ctx = _emit_tool_session(agent, "sess-1")
    agent.close()

    stored = rows(
        collector,
        "SELECT SpanName, ServiceName, SpanKind, StatusCode, StatusMessage, SpanAttributes, ResourceAttributes, "
        "Events.Name, Events.Attributes, Links.Attributes, ScopeName, Duration, Links.TraceId, Links.SpanId "
        "FROM {db}.otel_traces ORDER BY SpanName",
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
    assert (tool[12], tool[13]) == ([format(link_ctx.trace_id, "032x")], [format(link_ctx.span_id, "016x")])
    assert tool[10] == "foothold.tests" and tool[11] > 0

    calls = rows(
        collector,
        "SELECT SessionId, ToolName, ToolCallId, AgentName, TaskId, Status, HumanCheckpoint FROM {db}.tool_calls",
    )
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
                                "startTimeUnixNano": str(_T0),
                                "endTimeUnixNano": str(_T0 + 500_000_000),
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                                    {"key": "gen_ai.tool.name", "value": {"stringValue": "fetch"}},
                                    {"key": "gen_ai.conversation.id", "value": {"stringValue": "json-sess"}},
                                    {"key": "attempt", "value": {"intValue": "3"}},
                                    {
                                        "key": "nested",
                                        "value": {
                                            "kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}
                                        },
                                    },
                                ],
                                "events": [{"timeUnixNano": str(_T0 + 100_000_000), "name": "sent"}],
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


def _value(value) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    return {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}


def _attributes(**values) -> list[dict]:
    return [{"key": key, "value": _value(value)} for key, value in values.items()]


def test_otlp_json_with_hex_ids_and_int_enums_is_stored(collector):
    trace_id, span_id, artifact_id = secrets.token_hex(16), secrets.token_hex(8), secrets.token_hex(8)
    link_trace_id, link_span_id = secrets.token_hex(16), secrets.token_hex(8)
    body = _json_body(trace_id, span_id)
    resource_spans = body["resourceSpans"][0]
    resource_spans["resource"]["attributes"] += _attributes(**{"host.name": "box-1", "process.pid": 42})
    spans = resource_spans["scopeSpans"][0]["spans"]
    tool = spans[0]
    tool["events"][0]["attributes"] = _attributes(bytes=512, peer="api.example.com")
    # OTLP/JSON ids are case-insensitive hex; they are stored lowercase
    tool["links"] = [
        {"traceId": link_trace_id.upper(), "spanId": link_span_id.upper(), "attributes": _attributes(why="retry")}
    ]
    artifact = {
        semconv.ARTIFACT_KIND: "file",
        semconv.ARTIFACT_ACTION: "create",
        semconv.ARTIFACT_PATH: "/tmp/fetched.html",
        semconv.ARTIFACT_SIZE: 1234,
        semconv.ARTIFACT_DURABLE: False,
        semconv.GEN_AI_CONVERSATION_ID: "json-sess",
    }
    spans.append(
        {
            "traceId": trace_id,
            "spanId": artifact_id,
            "parentSpanId": span_id,
            "name": "artifact file",
            "kind": 1,
            "startTimeUnixNano": str(_T0 + 200_000_000),
            "endTimeUnixNano": str(_T0 + 300_000_000),
            "attributes": _attributes(**artifact),
        }
    )
    response = _post(collector, orjson.dumps(body), "application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    stored = rows(
        collector,
        "SELECT SpanName, TraceId, SpanId, ParentSpanId, SpanKind, StatusCode, Duration, SpanAttributes, "
        "ResourceAttributes, "
        "ScopeVersion, Events.Name, Events.Attributes, Links.TraceId, Links.SpanId, Links.Attributes "
        "FROM {db}.otel_traces ORDER BY SpanName",
    )
    resource = {"service.name": "json-agent", "host.name": "box-1", "process.pid": "42"}
    assert stored[1] == (
        "execute_tool fetch",
        trace_id,
        span_id,
        "",
        "Client",
        "Ok",
        500_000_000,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "fetch",
            "gen_ai.conversation.id": "json-sess",
            "attempt": "3",
            "nested": '{"a":true}',
            "foothold.tool.categories": "untrusted_input",
        },
        resource,
        "1.0",
        ["sent"],
        [{"bytes": "512", "peer": "api.example.com"}],
        [link_trace_id],
        [link_span_id],
        [{"why": "retry"}],
    )
    assert stored[0][:9] == (
        "artifact file",
        trace_id,
        artifact_id,
        span_id,
        "Internal",
        "Unset",
        100_000_000,
        {key: str(value).lower() for key, value in artifact.items()},
        resource,
    )
    assert rows(collector, "SELECT SessionId, ToolName, Status FROM {db}.tool_calls") == [("json-sess", "fetch", "Ok")]
    artifacts = rows(
        collector,
        "SELECT SessionId, Kind, Action, Path, Size, Durable, TraceId, SpanId, ToolSpanId FROM {db}.artifacts",
    )
    assert artifacts == [
        ("json-sess", "file", "create", "/tmp/fetched.html", 1234, False, trace_id, artifact_id, span_id)
    ]


def test_gzip_protobuf_body_is_accepted(collector):
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = secrets.token_bytes(16), secrets.token_bytes(8), "gz"
    response = _post(
        collector, gzip.compress(request.SerializeToString()), "application/x-protobuf", **{"content-encoding": "gzip"}
    )
    assert response.status_code == 200
    ExportTraceServiceResponse.FromString(response.content)  # a protobuf answer to a protobuf request
    assert rows(collector, "SELECT SpanName FROM {db}.otel_traces") == [("gz",)]


def _request_parts(*names: str) -> list[bytes]:
    """One serialized one-span request per name; concatenated they are one valid request with all the spans."""
    parts = []
    for name in names:
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = secrets.token_bytes(16), secrets.token_bytes(8), name
        parts.append(request.SerializeToString())
    return parts


def _truncated_gzip(data: bytes) -> bytes:
    """``data`` gzip-compressed and flushed, but cut before the end of the stream (last block, CRC, size)."""
    deflate = zlib.compressobj(wbits=31)
    return deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)


def test_multi_member_gzip_body_is_stored_whole(collector):
    body = b"".join(
        gzip.compress(part) for part in _request_parts("member-1", "member-2")
    )  # RFC 1952: members concatenate
    response = _post(collector, body, "application/x-protobuf", **{"content-encoding": "gzip"})
    assert response.status_code == 200
    assert rows(collector, "SELECT SpanName FROM {db}.otel_traces ORDER BY SpanName") == [("member-1",), ("member-2",)]


def test_non_numeric_content_length_is_400(collector):
    """uvicorn (h11) answers it before the app; the app's own check gives the same answer under other ASGI servers."""
    host, port = collector.endpoint_url("otlp_http").removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2x\r\n\r\n{}"
        )
        answer = b"".join(iter(lambda: sock.recv(65536), b""))  # the server closes the connection
    assert answer.startswith(b"HTTP/1.1 400 ")

    async def through_the_app() -> httpx.Response:
        transport = httpx.ASGITransport(
            otlp_http_app(collector.pipeline, HttpReceiverConfig(), metrics=collector.metrics)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            headers = {"content-type": "application/json", "content-length": "2x"}
            return await client.post("/v1/traces", content=b"{}", headers=headers)

    response = asyncio.run(through_the_app())
    assert response.status_code == 400 and "Content-Length" in response.json()["message"]
    assert collector.metrics.value(m.REQUESTS_REFUSED, receiver="otlp_http", reason="malformed") == 1
    assert (
        _post(
            collector,
            orjson.dumps(_json_body(secrets.token_hex(16), secrets.token_hex(8), "after")),
            "application/json",
        ).status_code
        == 200
    )
    assert rows(collector, "SELECT SpanName FROM {db}.otel_traces") == [("after",)]


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
    pytest.param(
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}',
        "application/json",
        {},
        400,
        "OTLP",
        id="wrong-field-type",
    ),
    pytest.param(b'{"a": "\xff"}', "application/json", {}, 400, "UTF-8", id="invalid-utf8-json"),
    pytest.param(b"\n\x03\x0a\x01\xff", "application/x-protobuf", {}, 400, "protobuf", id="truncated-protobuf"),
    pytest.param(b"{}", "text/plain", {}, 415, "Content-Type", id="wrong-content-type"),
    pytest.param(b"{}", "application/json", {"content-encoding": "br"}, 415, "Content-Encoding", id="unknown-encoding"),
    pytest.param(b"not gzip", "application/json", {"content-encoding": "gzip"}, 400, "gzip", id="bad-gzip"),
    pytest.param(
        _truncated_gzip(_request_parts("cut")[0]),
        "application/x-protobuf",
        {"content-encoding": "gzip"},
        400,
        "truncated",
        id="truncated-gzip",
    ),
    pytest.param(b"", "application/json", {"content-encoding": "gzip"}, 400, "truncated", id="empty-gzip"),
    pytest.param(
        gzip.compress(b"{}") + b"junk",
        "application/json",
        {"content-encoding": "gzip"},
        400,
        "gzip",
        id="gzip-trailing-junk",
    ),
    pytest.param(b"x" * 70_000, "application/x-protobuf", {}, 413, "limit", id="oversized"),
    pytest.param(
        gzip.compress(b" " * 200_000),
        "application/json",
        {"content-encoding": "gzip"},
        413,
        "decompressed",
        id="gzip-bomb",
    ),
    pytest.param(
        gzip.compress(b" " * 40_000) * 2,
        "application/json",
        {"content-encoding": "gzip"},
        413,
        "decompressed",
        id="gzip-bomb-members",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "headers", "status", "reason"), BAD_REQUESTS)
def test_bad_http_requests_get_a_clear_error_and_serving_goes_on(
    tmp_path, chdb_dsn, database, body, content_type, headers, status, reason
):
    settings = make_settings(
        tmp_path,
        chdb_dsn,
        database,
        receivers={"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0", "max_body_bytes": 65536}},
    )
    with CollectorThread(settings) as collector:
        before = _post(
            collector,
            orjson.dumps(_json_body(secrets.token_hex(16), secrets.token_hex(8), "before")),
            "application/json",
        )
        bad = _post(collector, body, content_type, **headers)
        after = _post(
            collector,
            orjson.dumps(_json_body(secrets.token_hex(16), secrets.token_hex(8), "after")),
            "application/json",
        )
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
    assert httpx.post(base + "/v1/metrics", content=b"").status_code == 404  # logs are served (test_native_telemetry)
    assert httpx.get(base + "/v1/traces").status_code == 405


def test_old_exporter_spellings_of_span_kind_are_understood(store):
    """Older exporters wrote 'SPAN_KIND_CLIENT' for 'Client': the kind rules (sql.KIND) read both spellings."""
    client, db = store.client(), store.database
    mcp_call = "map('mcp.method.name', 'tools/call', 'gen_ai.tool.name', 'read')"
    client.command(
        f"INSERT INTO {db}.otel_traces "
        "(Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, SpanAttributes) VALUES "
        f"(now64(9), 'aa', 'c1', '', 'tools/call read', 'SPAN_KIND_CLIENT', {mcp_call}), "
        f"(now64(9), 'aa', 's1', 'c1', 'tools/call read', 'SPAN_KIND_SERVER', {mcp_call}), "
        f"(now64(9), 'aa', 'i1', '', 'step', 'SPAN_KIND_INTERNAL', map()), "
        f"(now64(9), 'aa', 'p1', '', 'enqueue', 'SPAN_KIND_PRODUCER', map()), "
        f"(now64(9), 'aa', 'k1', '', 'dequeue', 'SPAN_KIND_CONSUMER', map())"
    )
    kinds = client.query(f"SELECT SpanId, {sql.KIND} FROM {db}.otel_traces ORDER BY SpanId").result_rows
    assert kinds == [("c1", "Client"), ("i1", "Internal"), ("k1", "Consumer"), ("p1", "Producer"), ("s1", "Server")]
    # one MCP call is one row: the client span, not the server span under it
    assert client.query(f"SELECT SpanId, ToolName FROM {db}.tool_calls").result_rows == [("c1", "read")]
