"""The collector starts without its store (issue 16): receivers open and the spool accepts while the store is
unreachable; /healthz and /metrics say so; when the store comes back the schema is applied and the backlog stored.

Counterparts. No ClickHouse server can be installed here, so the two halves use what is real:
- unreachable: a server DSN (``http://127.0.0.1:PORT``) on a port nothing listens on, so clickhouse-connect's
  real HTTP driver gets "connection refused", exactly what it gets from a ClickHouse server that is down;
- comes back: the real embedded store (chDB) held by another process — as ``foothold-audit sql`` or a second
  collector holds it — and then released. The collector runs as its own process (``python -m foothold collect``),
  since one process may own one chDB path. The recovery is the same code path for both DSN kinds: the collector's
  connect loop retrying ``open_store`` (connect, then migrate) until it succeeds. A loopback shim imitating the
  ClickHouse HTTP protocol in front of chDB would prove less: the test would then check our own imitation.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector import metrics as m
from foothold.collector.service import CollectorThread
from tests.collector_process import start_collector, write_config
from tests.conftest import make_settings

PROTOBUF = {"content-type": "application/x-protobuf"}


def _request(name: str) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), name
    span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
    return request.SerializeToString()


def _refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on exit: connecting is refused


def test_unreachable_server_dsn_starts_degraded_and_spools(tmp_path, database):
    settings = make_settings(
        tmp_path, f"http://127.0.0.1:{_refusing_port()}", database, batch={"retry_max_seconds": 0.2}
    )
    with CollectorThread(settings) as collector:
        assert collector.store is None
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        assert [httpx.post(url, content=_request(f"s{i}"), headers=PROTOBUF).status_code for i in range(3)] == [200] * 3
        api = collector.endpoint_url("query_api")
        health = httpx.get(api + "/healthz").json()
        assert health["status"] == "degraded"
        assert health["metrics"]["foothold_store_up"] == 0 and "127.0.0.1" in health["store_error"]
        assert "foothold_store_up 0" in httpx.get(api + "/metrics").text
        query = httpx.post(api + "/v1/query", json={"sql": "SELECT 1"})
        assert query.status_code == 400 and "store is unreachable" in query.json()["error"]
        assert collector.pipeline.queued_spans == 3
    assert collector.metrics.value(m.SPANS_LOST, signal="traces") == 0  # kept in the spool for the next start
    assert (tmp_path / "spool" / "checkpoint.json").exists()


def test_the_store_appears_later_and_the_spooled_spans_are_stored(tmp_path):
    data_dir, store_path = tmp_path / "collector", tmp_path / "store"
    data_dir.mkdir()
    config = write_config(
        tmp_path / "foothold.yaml",
        data_dir,
        store_path,
        store={"startup_wait_seconds": 5},
        alerts={"enabled": False},
        batch={"timeout_seconds": 0.2, "retry_max_seconds": 0.5},
        fingerprint_key="test-deployment-key",
    )
    # Another process owns the store: the lock collector/store.py takes beside a chDB path.
    holder = os.open(store_path.with_name("store.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    os.pwrite(holder, b"424242", 0)
    proc, info = start_collector(config, data_dir, data_dir / "collector.log")
    try:
        with httpx.Client(timeout=90) as client:
            for i in range(5):
                sent = client.post(info["otlp_http"] + "/v1/traces", content=_request(f"early-{i}"), headers=PROTOBUF)
                assert sent.status_code == 200
            health = client.get(info["query_api"] + "/healthz").json()
            assert health["status"] == "degraded" and "424242" in health["store_error"]

            os.close(holder)  # the store becomes available
            holder = None
            assert client.post(info["query_api"] + "/v1/flush").json() == {"flushed": True}
            answer = client.post(
                info["query_api"] + "/v1/query", json={"sql": "SELECT SpanName FROM foothold.otel_traces ORDER BY 1"}
            ).json()
            assert [row[0] for row in answer["rows"]] == [f"early-{i}" for i in range(5)]
            assert client.get(info["query_api"] + "/healthz").json()["status"] == "ok"
    finally:
        if holder is not None:
            os.close(holder)
        proc.terminate()
        assert proc.wait(60) == 0
