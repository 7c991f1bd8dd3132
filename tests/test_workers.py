"""Redaction at the door in worker processes (``pipeline.workers``, collector/processing.py).

The same requests (planted secrets of every kind, the persistence corpus's commands as tool calls, a logs
request) sent to a collector redacting in its own process and to one with two workers store the same rows.
A worker killed under the collector is replaced and loses nothing; a batch a processor fails on is still
quarantined, redacted; workers never load chDB and end with the collector.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from foothold import semconv
from foothold.collector import metrics as m
from foothold.collector.rows import SpanBatch
from foothold.collector.service import Collector, CollectorThread
from tests.conftest import make_settings, rows
from tests.planted import Planter

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CORPUS = Path(__file__).parent / "corpus" / "persistence_cases.yaml"
PLANTED = Planter(seed=1818).every()
START = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago, the same for both collectors: not clamped


def _kv(key: str, value: str) -> KeyValue:
    kv = KeyValue(key=key)
    kv.value.string_value = value
    return kv


def _arguments(case_input: object) -> tuple[str, str]:
    """A corpus input as the tool call an agent would report: (tool, arguments JSON)."""
    if isinstance(case_input, str):
        return "bash", json.dumps({"command": case_input})
    assert isinstance(case_input, dict)
    if "path" in case_input:
        return str(case_input["tool"]), json.dumps({"file_path": case_input["path"], "content": case_input["content"]})
    args = case_input["args"]
    return str(case_input["tool"]), args if isinstance(args, str) else json.dumps(args)


def _request(index: int, calls: list[tuple[str, str]], secret: str) -> bytes:
    """One request of tool-call spans in a session, a secret in its resource, span names and status messages."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.extend([_kv("service.name", "agent"), _kv("process.command_line", f"run {secret}")])
    scoped = resource.scope_spans.add()
    for n, (tool, arguments) in enumerate(calls):
        span = scoped.spans.add()
        span.trace_id = (index + 1).to_bytes(16, "big")  # an all-zero id is invalid
        span.span_id = (index * 1000 + n + 1).to_bytes(8, "big")
        span.name = semconv.tool_span_name(tool)
        span.start_time_unix_nano = START + index * 10**6 + n
        span.end_time_unix_nano = span.start_time_unix_nano + 10**6
        span.status.message = f"failed with {secret}" if n == 0 else ""
        span.attributes.extend(
            [
                _kv(semconv.GEN_AI_OPERATION_NAME, semconv.OPERATION_EXECUTE_TOOL),
                _kv(semconv.GEN_AI_TOOL_NAME, tool),
                _kv(semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments),
                _kv(semconv.GEN_AI_CONVERSATION_ID, f"session-{index % 3}"),
                _kv(semconv.GEN_AI_AGENT_NAME, "devops-agent"),
                _kv(semconv.CWD, "/home/dev/project"),
            ]
        )
    return request.SerializeToString()


def corpus() -> list[bytes]:
    """The persistence corpus's inputs as tool calls, 8 to a request, each request carrying planted secrets."""
    cases = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["cases"]
    calls = [_arguments(case["input"]) for case in cases]
    secrets = [text for _, _, text in PLANTED.values()]
    for i, text in enumerate(secrets):  # every planted secret also inside a call's arguments
        calls[i % len(calls)] = ("bash", json.dumps({"command": f"echo {text} > /tmp/out", "env": text}))
    return [
        _request(i, calls[start : start + 8], secrets[i % len(secrets)])
        for i, start in enumerate(range(0, len(calls), 8))
    ]


def _logs_request() -> bytes:
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.time_unix_nano = START
    record.body.string_value = "tool input: " + next(iter(PLANTED.values()))[2]
    record.attributes.append(_kv("event.name", "claude_code.tool_result"))
    return request.SerializeToString()


def _send(collector: Collector, bodies: list[bytes]) -> None:
    """Alternately over gRPC and HTTP, as clients would; each must be taken."""
    with grpc.insecure_channel(collector.endpoint_url("otlp_grpc")) as channel:
        export = channel.unary_unary(EXPORT)
        for i, body in enumerate(bodies):
            if i % 2:
                export(body, timeout=60)
            else:
                posted = httpx.post(
                    collector.endpoint_url("otlp_http") + "/v1/traces",
                    content=body,
                    headers={"content-type": "application/x-protobuf"},
                    timeout=60,
                )
                assert posted.status_code == 200, posted.text


def _stored(collector: Collector) -> dict[str, list[tuple]]:
    return {
        table: rows(collector, f"SELECT * FROM {{db}}.{table} ORDER BY {order}")
        for table, order in (
            ("otel_traces", "TraceId, SpanId"),
            ("tool_calls", "TraceId, SpanId"),
            ("otel_logs", "Timestamp, Body"),
        )
    }


def _run(tmp_path: Path, chdb_dsn: str, database: str, workers: int) -> dict[str, list[tuple]]:
    settings = make_settings(
        tmp_path / f"w{workers}", chdb_dsn, database + f"_w{workers}", pipeline={"workers": workers}
    )
    with CollectorThread(settings) as collector:
        assert collector.workers is not None and len(collector.workers.pids) == workers
        _send(collector, corpus())
        logs = httpx.post(
            collector.endpoint_url("otlp_http") + "/v1/logs",
            content=_logs_request(),
            headers={"content-type": "application/x-protobuf"},
            timeout=60,
        )
        assert logs.status_code == 200, logs.text
        return _stored(collector)


def test_workers_store_exactly_what_in_process_redaction_stores(tmp_path, chdb_dsn, database):
    in_process = _run(tmp_path, chdb_dsn, database, 0)
    pooled = _run(tmp_path, chdb_dsn, database, 2)
    assert len(in_process["otel_traces"]) == sum(
        len(ExportTraceServiceRequest.FromString(b).resource_spans[0].scope_spans[0].spans) for b in corpus()
    )
    assert in_process["tool_calls"] and in_process["otel_logs"]
    assert pooled == in_process
    stored = repr(pooled)
    assert not [name for name, (_, value, _) in PLANTED.items() if value in stored]  # redacted, not just equal
    assert "[REDACTED:" in stored


def test_a_killed_worker_is_replaced_and_nothing_is_lost(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, pipeline={"workers": 2})
    bodies = corpus()[:6]
    with CollectorThread(settings) as collector:
        workers = collector.workers
        assert workers is not None
        _send(collector, bodies[:1])
        victim = workers.pids[0]
        os.kill(victim, signal.SIGKILL)
        _send(collector, bodies[1:])  # idle workers are taken in turn: the dead one is met within two requests
        assert victim not in workers.pids and len(workers.pids) == 2
        expected = sum(
            len(ExportTraceServiceRequest.FromString(b).resource_spans[0].scope_spans[0].spans) for b in bodies
        )
        assert rows(collector, "SELECT count() FROM {db}.otel_traces") == [(expected,)]


class _BuggyProcessor:
    kind = "traces"

    def process(self, batch: SpanBatch) -> None:
        if any(name.startswith("poison") for name in batch.columns["SpanName"]):
            raise RuntimeError("processor bug")


def test_a_poison_request_is_still_quarantined_redacted(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, pipeline={"workers": 2})
    secret = next(value for _, value, _ in PLANTED.values())
    request = ExportTraceServiceRequest.FromString(corpus()[0])
    request.resource_spans[0].scope_spans[0].spans[0].name = f"poison {secret}"
    with CollectorThread(settings, processors=[_BuggyProcessor()]) as collector:
        _send(collector, [corpus()[1], request.SerializeToString(), corpus()[2]])
        assert collector.pipeline is not None and collector.pipeline.flush(30)
        assert collector.metrics.value(m.SPANS_QUARANTINED, signal="traces") == 8
    (kept,) = (settings.data_dir / "quarantine").glob("*.otlp.pb")
    quarantined = ExportTraceServiceRequest.FromString(kept.read_bytes())
    name = quarantined.resource_spans[0].scope_spans[0].spans[0].name
    assert name.startswith("poison") and secret not in name  # redacted in the worker, before the spool


def test_workers_load_no_chdb_and_end_with_the_collector(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, pipeline={"workers": 2})
    with CollectorThread(settings) as collector:
        assert collector.workers is not None
        _send(collector, corpus()[:2])  # both workers have served: their imports are done
        pids = collector.workers.pids
        for pid in pids:  # chDB's and clickhouse-connect's native libraries are not mapped in a worker
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "chdb" not in maps and "clickhouse" not in maps
    for pid in pids:  # stopped with the collector, and reaped by it
        assert not Path(f"/proc/{pid}").exists()


def test_the_workers_module_imports_no_chdb_in_a_spawned_process():
    """What a worker imports, in a fresh interpreter as 'spawn' starts it: never chDB or clickhouse-connect."""
    probe = (
        "import sys, foothold.collector.processing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('chdb', 'clickhouse_connect')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
