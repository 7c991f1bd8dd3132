"""Bounded servers (issue 13): connections opened before any auth cannot take a listener down.

Real sockets against the running collector on 127.0.0.1: the listeners are the real uvicorn/h11 and grpc-core
servers the collector runs in production, with the bounds from collector/serving.py.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import time

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, rows

IDLE_CONNECTIONS = 1_100
CAP = 64  # connections.max_per_listener, small so eviction happens many times over


def _good_request(name: str) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), name
    span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
    return request.SerializeToString()


def _open_idle(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def _wait_until_server_closes_all(sockets: list[socket.socket], deadline_seconds: float) -> int:
    """Read each socket until the server closes it (EOF or reset); returns how many stayed open at the deadline."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_count = len(sockets)
    deadline = time.monotonic() + deadline_seconds  # a bound on the wait, not a timing assertion
    while open_count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            try:
                data = key.fileobj.recv(4096)
            except ConnectionResetError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                key.fileobj.close()
                open_count -= 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    selector.close()
    return open_count


def _raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def test_1100_idle_connections_do_not_take_down_otlp_http_or_the_query_api(tmp_path, chdb_dsn, database):
    """Before: nothing ever closed a connection that sends no request, so they pile up until descriptors run out.
    Now: past the cap the oldest idle one is evicted, a real request is served meanwhile, and every idle
    connection is closed by the header timeout."""
    _raise_nofile(3 * IDLE_CONNECTIONS + 512)
    settings = make_settings(
        tmp_path, chdb_dsn, database, connections={"max_per_listener": CAP, "header_timeout_seconds": 1.0}
    )
    with CollectorThread(settings) as collector:
        http_port, api_port = collector.ports["otlp_http"], collector.ports["query_api"]
        idle = _open_idle(http_port, IDLE_CONNECTIONS) + _open_idle(api_port, IDLE_CONNECTIONS)

        with httpx.Client(timeout=30) as client:  # meanwhile: a real request on each listener is answered
            sent = client.post(
                collector.endpoint_url("otlp_http") + "/v1/traces",
                content=_good_request("during-flood"),
                headers={"content-type": "application/x-protobuf"},
            )
            assert sent.status_code == 200
            assert client.get(collector.endpoint_url("query_api") + "/healthz").status_code == 200

        assert _wait_until_server_closes_all(idle, 60) == 0, "the server left idle connections open"

        with httpx.Client(timeout=30) as client:  # afterwards
            sent = client.post(
                collector.endpoint_url("otlp_http") + "/v1/traces",
                content=_good_request("after-flood"),
                headers={"content-type": "application/x-protobuf"},
            )
            assert sent.status_code == 200
        names = sorted(n for (n,) in rows(collector, "SELECT SpanName FROM {db}.otel_traces"))
        assert names == ["after-flood", "during-flood"]
        exposition = collector.metrics.exposition()
        for listener in ("otlp_http", "query_api"):
            for reason in ("evicted", "header_timeout"):
                assert f'foothold_connections_closed_total{{listener="{listener}",reason="{reason}"}}' in exposition


def test_an_oversized_request_head_is_refused_and_the_listener_keeps_serving(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, connections={"max_header_bytes": 4096})
    with CollectorThread(settings) as collector, httpx.Client(timeout=30) as client:
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        huge = client.post(url, content=b"", headers={"content-type": "application/x-protobuf", "x-pad": "a" * 8192})
        assert huge.status_code == 431
        sent = client.post(
            url, content=_good_request("after-huge-head"), headers={"content-type": "application/x-protobuf"}
        )
        assert sent.status_code == 200


def test_grpc_keeps_serving_with_idle_connections_at_its_cap(tmp_path, chdb_dsn, database):
    """grpc-core's own bounds: connections past the cap are refused by the core, idle ones time out in the
    handshake; a real call on a fresh channel is answered once the idle ones are gone."""
    settings = make_settings(
        tmp_path, chdb_dsn, database, connections={"max_per_listener": CAP, "header_timeout_seconds": 1.0}
    )
    with CollectorThread(settings) as collector:
        idle = _open_idle(collector.ports["otlp_grpc"], CAP * 2)
        assert _wait_until_server_closes_all(idle, 60) == 0, "grpc left idle connections open"
        with grpc.insecure_channel(collector.endpoint_url("otlp_grpc")) as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            export(_good_request("grpc-after-idle"), timeout=30)
        assert rows(collector, "SELECT SpanName FROM {db}.otel_traces") == [("grpc-after-idle",)]
