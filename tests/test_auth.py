"""Bearer-token authentication on every listener, the stored sender identity, and the exposed-bind guard."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import grpc
import httpx
import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from pydantic import SecretStr
from typer.testing import CliRunner

from foothold import semconv
from foothold.cli import app
from foothold.collector import metrics as m
from foothold.collector.config import ConfigError, load_settings
from foothold.collector.service import CollectorThread
from foothold.collector.store import StoreError
from foothold.investigation.access import open_reader
from tests.conftest import make_settings, rows

TOKEN_A = "fh_token-for-fleet-a"
TOKEN_B = "fh_token-for-team-b"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


AUTH = {"tokens": [{"name": "agent-fleet-a", "sha256": _sha(TOKEN_A)}, {"name": "team-b", "sha256": _sha(TOKEN_B)}]}


@pytest.fixture
def secured(tmp_path, chdb_dsn, database):
    with CollectorThread(make_settings(tmp_path, chdb_dsn, database, auth=AUTH)) as collector:
        yield collector


def _request(name: str, forged_sender: str | None = None) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), name
    if forged_sender is not None:
        kv = span.attributes.add()
        kv.key, kv.value.string_value = semconv.SENDER, forged_sender
    return request.SerializeToString()


def _headers(token: str | None) -> dict[str, str]:
    return (
        {"authorization": token} if token and " " in token else ({"authorization": f"Bearer {token}"} if token else {})
    )


@pytest.mark.parametrize(
    "token",
    [None, "fh_wrong-token", "Basic dXNlcjpwYXNz", f"Bearer {TOKEN_A}x"],
    ids=["missing", "wrong", "basic", "suffix"],
)
def test_every_endpoint_refuses_missing_or_wrong_tokens(secured, token):
    headers = _headers(token)
    reason = "missing" if token is None else "invalid"

    channel = grpc.insecure_channel(secured.endpoint_url("otlp_grpc"))
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(EXPORT)(_request("grpc"), metadata=tuple(headers.items()), timeout=10)
    channel.close()
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED

    traces = secured.endpoint_url("otlp_http") + "/v1/traces"
    for media_type in ("application/x-protobuf", "application/json"):
        body = _request("http") if media_type.endswith("protobuf") else b'{"resourceSpans": []}'
        response = httpx.post(traces, content=body, headers={"content-type": media_type, **headers})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        if media_type.endswith("protobuf"):
            status = status_pb2.Status.FromString(response.content)
            assert status.code == grpc.StatusCode.UNAUTHENTICATED.value[0] and status.message
        else:
            assert response.json()["code"] == 16

    base = secured.endpoint_url("query_api")
    for method, path in [
        ("POST", "/v1/query"),
        ("POST", "/v1/flush"),
        ("POST", "/v1/alerts/evaluate"),
        ("POST", "/v1/verify"),
        ("GET", "/metrics"),
    ]:
        response = httpx.request(method, base + path, json={"sql": "SELECT 1"}, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer") and "token" in response.json()["error"]

    # /healthz stays open for liveness probes but tells an unauthenticated caller nothing else
    assert httpx.get(base + "/healthz", headers=headers).json() == {"status": "ok"}
    assert "metrics" in httpx.get(base + "/healthz", headers=_headers(TOKEN_A)).json()

    assert rows(secured, "SELECT count() FROM {db}.otel_traces") == [(0,)]
    for listener, expected in (("otlp_grpc", 1), ("otlp_http", 2), ("query_api", 5)):
        assert secured.metrics.value(m.AUTH_FAILURES, listener=listener, reason=reason) == expected


def _sdk_provider(exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "secured-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_right_token_is_accepted_and_the_sender_is_stored_and_cannot_be_forged(secured):
    grpc_exporter = GrpcSpanExporter(
        endpoint=secured.endpoint_url("otlp_grpc"), insecure=True, headers={"authorization": f"Bearer {TOKEN_A}"}
    )
    http_exporter = HttpSpanExporter(
        endpoint=secured.endpoint_url("otlp_http") + "/v1/traces", headers={"Authorization": f"Bearer {TOKEN_B}"}
    )
    for exporter, tool in ((grpc_exporter, "via-grpc"), (http_exporter, "via-http")):
        provider = _sdk_provider(exporter)
        with provider.get_tracer("t").start_as_current_span(f"execute_tool {tool}") as span:
            span.set_attribute(semconv.GEN_AI_OPERATION_NAME, semconv.OPERATION_EXECUTE_TOOL)
            span.set_attribute(semconv.GEN_AI_TOOL_NAME, tool)
            span.set_attribute(semconv.SENDER, "admin")  # a forgery attempt
        provider.shutdown()

    # OTLP/JSON with the key hidden behind a JSON escape, sent by team-b claiming to be fleet a
    span = {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": "escaped",
        "attributes": [
            {"key": "foothold\\u002esender", "value": {"stringValue": "agent-fleet-a"}},
            {"key": "foothold.sender", "value": {"stringValue": "root"}},
        ],
    }
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).replace(b"\\\\u002e", b"\\u002e")
    assert b"foothold\\u002esender" in body
    response = httpx.post(
        secured.endpoint_url("otlp_http") + "/v1/traces",
        content=body,
        headers={"content-type": "application/json", **_headers(TOKEN_B)},
    )
    assert response.status_code == 200

    stored = rows(
        secured,
        "SELECT SpanName, SpanAttributes['foothold.sender'], "
        "length(arrayFilter(k -> k = 'foothold.sender', mapKeys(SpanAttributes))) "
        "FROM {db}.otel_traces ORDER BY SpanName",
    )
    assert stored == [
        ("escaped", "team-b", 1),
        ("execute_tool via-grpc", "agent-fleet-a", 1),
        ("execute_tool via-http", "team-b", 1),
    ]
    assert rows(secured, "SELECT ToolName, Sender FROM {db}.tool_calls ORDER BY ToolName") == [
        ("via-grpc", "agent-fleet-a"),
        ("via-http", "team-b"),
    ]


def test_without_auth_a_client_cannot_claim_a_sender(collector):
    response = httpx.post(
        collector.endpoint_url("otlp_http") + "/v1/traces",
        content=_request("claims", "admin"),
        headers={"content-type": "application/x-protobuf", "authorization": "Bearer whatever"},
    )
    assert response.status_code == 200
    assert rows(collector, "SELECT mapContains(SpanAttributes, 'foothold.sender') FROM {db}.otel_traces") == [(0,)]


def test_allow_unauthenticated_takes_anonymous_data_but_still_refuses_a_wrong_token(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, auth={**AUTH, "allow_unauthenticated": True})
    with CollectorThread(settings) as collector:
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        content = {"content-type": "application/x-protobuf"}
        assert httpx.post(url, content=_request("anonymous", "admin"), headers=content).status_code == 200
        assert httpx.post(url, content=_request("wrong"), headers={**content, **_headers("nope")}).status_code == 401
        assert httpx.post(url, content=_request("known"), headers={**content, **_headers(TOKEN_A)}).status_code == 200
        stored = rows(
            collector, "SELECT SpanName, SpanAttributes['foothold.sender'] FROM {db}.otel_traces ORDER BY SpanName"
        )
        assert stored == [("anonymous", ""), ("known", "agent-fleet-a")]


def test_the_cli_sends_its_token_to_the_query_api(secured, monkeypatch):
    settings = secured.settings
    monkeypatch.delenv("FOOTHOLD_TOKEN", raising=False)
    with open_reader(settings) as reader, pytest.raises(StoreError, match="FOOTHOLD_TOKEN"):
        reader.query("SELECT 1")
    monkeypatch.setenv("FOOTHOLD_TOKEN", TOKEN_B)
    with open_reader(settings) as reader:
        assert reader.query("SELECT 1 AS one").rows == [[1]]
    monkeypatch.delenv("FOOTHOLD_TOKEN")
    configured = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"client_token": SecretStr(TOKEN_A)})}
    )
    with open_reader(configured) as reader:
        reader.flush()
        assert reader.query("SELECT count() FROM otel_traces").rows == [[0]]


@pytest.mark.parametrize(
    "overrides",
    [
        {"receivers": {"grpc": {"endpoint": "0.0.0.0:0"}}},
        {"receivers": {"http": {"endpoint": "[::]:0"}}},
        {"query_api": {"endpoint": "192.0.2.10:4319"}},
    ],
)
def test_a_network_listener_without_auth_is_refused_at_start_with_the_fix(tmp_path, overrides):
    with pytest.raises(ConfigError) as raised:
        load_settings(data_dir=tmp_path, **overrides)
    message = str(raised.value)
    assert "not a loopback address" in message and "auth.tokens" in message
    assert "foothold-audit token new" in message and "auth.allow_unauthenticated: true" in message
    assert load_settings(data_dir=tmp_path, auth=AUTH, **overrides).auth.enabled
    assert load_settings(data_dir=tmp_path, auth={"allow_unauthenticated": True}, **overrides)
    # disabled listeners and loopback ones (tests/conftest.py) need nothing
    assert load_settings(data_dir=tmp_path, receivers={"grpc": {"endpoint": "0.0.0.0:0", "enabled": False}})
    assert load_settings(data_dir=tmp_path, receivers={"grpc": {"endpoint": "localhost:0"}})


def test_foothold_collect_refuses_an_exposed_bind_without_auth(tmp_path):
    env = {**os.environ, "FOOTHOLD_DATA_DIR": str(tmp_path), "FOOTHOLD_RECEIVERS__HTTP__ENDPOINT": "0.0.0.0:0"}
    result = subprocess.run(
        [sys.executable, "-m", "foothold", "collect"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 1
    text = " ".join(result.stderr.split())
    assert (
        "receivers.http.endpoint 0.0.0.0:0 is not a loopback address" in text and "auth.allow_unauthenticated" in text
    )


def test_token_commands_print_a_token_and_its_config_line():
    runner = CliRunner()
    created = runner.invoke(app, ["token", "new", "--name", "agent-fleet-a"])
    assert created.exit_code == 0, created.output
    lines = [line for line in created.stdout.splitlines() if line.strip()]
    token = lines[0]
    assert token.startswith("fh_") and len(token) > 40
    assert f'{{name: "agent-fleet-a", sha256: "{_sha(token)}"}}' in created.stdout
    hashed = runner.invoke(app, ["token", "hash"], input=token + "\n")
    assert hashed.exit_code == 0 and hashed.stdout.strip() == _sha(token)
    assert runner.invoke(app, ["token", "hash"], input="").exit_code == 1
    assert load_settings(auth={"tokens": [{"name": "agent-fleet-a", "sha256": _sha(token)}]}).auth.enabled


def test_duplicate_and_malformed_tokens_are_config_errors():
    with pytest.raises(ConfigError, match="more than once"):
        load_settings(auth={"tokens": [{"name": "a", "sha256": _sha("x")}, {"name": "a", "sha256": _sha("y")}]})
    with pytest.raises(ConfigError, match="auth.tokens.0.sha256"):
        load_settings(auth={"tokens": [{"name": "a", "sha256": "not-a-hash"}]})


def _one_span_body(attributes: dict[str, str]) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), "execute_tool bash"
    for key, value in attributes.items():
        kv = span.attributes.add()
        kv.key, kv.value.string_value = key, value
    return request.SerializeToString()


@pytest.mark.parametrize(
    ("sender", "attributes", "reused"),
    [("", {"k": "v"}, True), ("team-a", {"k": "v"}, False), ("", {semconv.SENDER: "forged"}, False)],
    ids=["untouched", "stamped", "forged-stamp-removed"],
)
def test_the_spool_reuses_the_received_body_only_when_nothing_was_stamped(sender, attributes, reused):
    """What a replay after a crash reads is the spooled payload: it must carry the stamp the queue saw."""
    from foothold.collector.auth import stamping
    from foothold.collector.otlp import decode_protobuf

    body = _one_span_body(attributes)
    request, wire = stamping(decode_protobuf, sender, json=False)(body)
    assert wire == (body if reused else None)
    stored = {kv.key: kv.value.string_value for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert stored.get(semconv.SENDER, "") == sender
