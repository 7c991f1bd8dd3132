"""Self-telemetry: the Prometheus /metrics exposition moves with the traffic, collector_metrics gets rows."""

from __future__ import annotations

import gzip
import hashlib
import os
import re

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector import metrics as m
from foothold.collector.service import CollectorThread
from foothold.collector.store import open_store
from tests.conftest import make_settings, rows

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.e+Inf]+$')


def _request(spans: int, bad: int = 0) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(spans + bad):
        span = scope.spans.add()
        span.trace_id = os.urandom(16) if i < spans else b"\0" * 16  # all-zero trace id: rejected
        span.span_id, span.name = os.urandom(8), f"m{i}"
    return request.SerializeToString()


TRACES = '{}{{signal="traces"}}'  # a pipeline figure's sample key, traces pipeline
LOGS = '{}{{signal="logs"}}'


def _scrape(collector, headers=None) -> dict[str, float]:
    response = httpx.get(collector.endpoint_url("query_api") + "/metrics", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return _scrape_text(response.text)


def _scrape_text(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) foothold_[a-z_]+ ", line), line
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_metrics_endpoint_counts_the_traffic(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, metrics={"enabled": False})
    with CollectorThread(settings) as collector:
        before = _scrape(collector)
        assert before[TRACES.format("foothold_spans_accepted_total")] == 0
        assert before[TRACES.format("foothold_queue_spans")] == 0 and before[TRACES.format("foothold_spool_bytes")] == 0
        assert before['foothold_export_duration_seconds_bucket{le="+Inf",signal="traces"}'] == 0

        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        response = httpx.post(url, content=_request(5, bad=2), headers={"content-type": "application/x-protobuf"})
        assert response.status_code == 200
        assert (
            httpx.post(url, content=b"garbage", headers={"content-type": "application/x-protobuf"}).status_code == 400
        )
        assert collector.pipeline.flush(30)

        after = _scrape(collector)
        assert after['foothold_spans_received_total{receiver="otlp_http"}'] == 7
        assert after['foothold_spans_rejected_total{receiver="otlp_http"}'] == 2
        assert after[TRACES.format("foothold_spans_accepted_total")] == 5
        assert after[TRACES.format("foothold_spans_exported_total")] == 5
        assert after[TRACES.format("foothold_batches_exported_total")] == 1 and after["foothold_chain_links_total"] == 1
        assert after['foothold_requests_total{outcome="ok",receiver="otlp_http"}'] == 1
        assert after['foothold_requests_refused_total{reason="malformed",receiver="otlp_http"}'] == 1
        # The histogram's counts, not its times: one export observed, with some positive duration (no bound on it).
        assert after[TRACES.format("foothold_export_duration_seconds_count")] == 1
        assert after[TRACES.format("foothold_export_duration_seconds_sum")] > 0
        assert after['foothold_export_duration_seconds_bucket{le="+Inf",signal="traces"}'] == 1
        assert after[TRACES.format("foothold_export_failures_total")] == 0
        assert after[TRACES.format("foothold_queue_spans")] == 0
        assert after[LOGS.format("foothold_spans_accepted_total")] == 0  # the logs pipeline counts apart


def test_auth_failures_show_on_metrics_which_needs_a_token_itself(tmp_path, chdb_dsn, database):
    token = "fh_metrics-scraper"
    auth = {"tokens": [{"name": "prometheus", "sha256": hashlib.sha256(token.encode()).hexdigest()}]}
    with CollectorThread(
        make_settings(tmp_path, chdb_dsn, database, auth=auth, metrics={"enabled": False})
    ) as collector:
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        assert (
            httpx.post(url, content=_request(1), headers={"content-type": "application/x-protobuf"}).status_code == 401
        )
        assert httpx.get(collector.endpoint_url("query_api") + "/metrics").status_code == 401
        samples = _scrape(collector, headers={"authorization": f"Bearer {token}"})
    assert samples['foothold_auth_failures_total{listener="otlp_http",reason="missing"}'] == 1
    assert samples['foothold_auth_failures_total{listener="query_api",reason="missing"}'] == 1


def test_collector_metrics_table_gets_periodic_and_final_rows(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, metrics={"interval_seconds": 0.05})
    running = CollectorThread(settings)
    collector = running.__enter__()
    try:
        columns = rows(
            collector,
            "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = "
            "'collector_metrics' ORDER BY position",
        )
        assert columns == [
            ("Timestamp", "DateTime64(3)"),
            ("Name", "LowCardinality(String)"),
            ("Value", "Float64"),
            ("Labels", "Map(LowCardinality(String), String)"),
        ]
        keys = rows(
            collector,
            "SELECT engine, sorting_key FROM system.tables WHERE database = '{db}' AND name = 'collector_metrics'",
        )
        assert keys == [("MergeTree", "Name, Timestamp")]
        assert collector.metrics_recorded.wait(30)  # the periodic writer ran
        assert rows(
            collector, "SELECT count() > 0 FROM {db}.collector_metrics WHERE Name = 'foothold_spans_exported_total'"
        ) == [(1,)]
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        assert (
            httpx.post(url, content=_request(3), headers={"content-type": "application/x-protobuf"}).status_code == 200
        )
    finally:
        assert running.stop() == 0  # stopping writes a final snapshot after the last export
    store = open_store(chdb_dsn, database)
    try:
        client = store.client()
        latest = client.query(
            f"SELECT argMax(Value, Timestamp) FROM {database}.collector_metrics WHERE Name = "
            "'foothold_spans_exported_total' AND Labels = map('signal', 'traces')"
        ).result_rows
        labelled = client.query(
            f"SELECT Labels, argMax(Value, Timestamp) FROM {database}.collector_metrics WHERE Name = "
            "'foothold_spans_received_total' GROUP BY Labels ORDER BY toString(Labels)"
        ).result_rows
    finally:
        store.close()
    assert latest == [(3.0,)]
    assert labelled == [({"receiver": "otlp_grpc"}, 0.0), ({"receiver": "otlp_http"}, 3.0)]


def test_every_declared_metric_is_on_metrics_and_in_collector_metrics(tmp_path, chdb_dsn, database):
    """One declaration (metrics.METRICS) behind /metrics, collector_metrics and /healthz: each declared metric
    has its HELP and TYPE and at least one sample from the start, and each is written to the table."""
    names = [metric.name for metric in m.METRICS]
    assert len(names) == len(set(names)) and all(re.fullmatch(r"foothold_[a-z_]+", name) for name in names)
    settings = make_settings(tmp_path, chdb_dsn, database, metrics={"interval_seconds": 3600})
    running = CollectorThread(settings)
    collector = running.__enter__()
    try:
        text = httpx.get(collector.endpoint_url("query_api") + "/metrics").text
        health = httpx.get(collector.endpoint_url("query_api") + "/healthz").json()
        assert collector.record_metrics() > len(m.METRICS)
    finally:
        running.stop()
    samples = _scrape_text(text)
    stored = rows(collector, "SELECT DISTINCT Name FROM {db}.collector_metrics")
    exposed_names = {name.split("{")[0] for name in samples}
    for metric in m.METRICS:
        assert f"# HELP {metric.name} {metric.help}" in text and f"# TYPE {metric.name} {metric.kind.value}" in text
        sample = metric.name + ("_count" if metric.kind is m.HISTOGRAM else "")
        assert sample in exposed_names, f"{metric.name} has no sample on /metrics"
        assert (sample,) in stored, f"{metric.name} is not in collector_metrics"
    assert set(health["metrics"]) == set(samples)  # /healthz reads the same registry, sample for sample


def test_one_unauthenticated_request_counts_once_with_its_reason(tmp_path, chdb_dsn, database):
    """A 401 is one event: one counter moves by one, and its labels say which listener and why."""
    token = "fh_agent"
    auth = {"tokens": [{"name": "agent", "sha256": hashlib.sha256(token.encode()).hexdigest()}]}
    settings = make_settings(tmp_path, chdb_dsn, database, auth=auth, metrics={"enabled": False})
    with CollectorThread(settings) as collector:
        before = collector.metrics.snapshot()
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        headers = {"content-type": "application/x-protobuf", "authorization": "Bearer wrong"}
        assert httpx.post(url, content=_request(1), headers=headers).status_code == 401
        after = collector.metrics.snapshot()
    changed = {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}
    assert changed == {'foothold_auth_failures_total{listener="otlp_http",reason="invalid"}': 1.0}


def test_a_metric_refuses_labels_it_does_not_declare():
    metrics = m.Metrics()
    with pytest.raises(ValueError, match="takes the labels"):
        metrics.record(m.SPANS_EXPORTED, 1, receiver="otlp_http")
    metrics.record(m.SPANS_EXPORTED, 2, signal="traces")
    metrics.record(m.QUEUE_SPANS, 5, signal="traces")
    metrics.record(m.QUEUE_SPANS, 3, signal="traces")  # a gauge is set, a counter adds
    assert (metrics.value(m.SPANS_EXPORTED, signal="traces"), metrics.value(m.QUEUE_SPANS, signal="traces")) == (2, 3)


def test_every_refusal_is_counted_by_reason_on_metrics_and_in_collector_metrics(tmp_path, chdb_dsn, database):
    token = "fh_agent"
    settings = make_settings(
        tmp_path,
        chdb_dsn,
        database,
        auth={"tokens": [{"name": "agent", "sha256": hashlib.sha256(token.encode()).hexdigest()}]},
        receivers={
            "grpc": {"endpoint": "127.0.0.1:0", "max_message_bytes": 4096},
            "http": {"endpoint": "127.0.0.1:0", "max_body_bytes": 4096},
        },
        limits={
            "max_spans_per_request": 2,
            "max_attributes_per_span": 3,
            "max_attribute_value_bytes": 64,
            "max_nesting_depth": 1,
        },
        metrics={"interval_seconds": 3600},  # only the final snapshot, written at stop
    )
    cut = ExportTraceServiceRequest.FromString(_request(1, bad=1))  # one good span, one rejected
    attributes = cut.resource_spans[0].scope_spans[0].spans[0].attributes
    attributes.add(key="long").value.string_value = "x" * 100  # truncated
    attributes.add(key="deep").value.kvlist_value.values.add(key="a").value.kvlist_value.values.add(key="b")  # nesting
    attributes.add(key="extra").value.int_value = 1  # the limit reached
    attributes.add(key="extra2").value.int_value = 2  # one over: dropped (the sender stamp after it is kept)
    protobuf, bearer = "application/x-protobuf", f"Bearer {token}"
    with CollectorThread(settings) as collector:
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        answers = [
            httpx.post(url, content=body, headers={"content-type": kind, "authorization": auth, **extra}).status_code
            for body, kind, auth, extra in [
                (cut.SerializeToString(), protobuf, bearer, {}),
                (_request(1), protobuf, "", {}),  # unauthenticated
                (os.urandom(5000), protobuf, bearer, {}),  # too_large
                (b"{}", "text/plain", bearer, {}),  # unsupported_media_type
                (gzip.compress(_request(1))[:-6], protobuf, bearer, {"content-encoding": "gzip"}),  # bad_encoding
                (b"garbage", protobuf, bearer, {}),  # malformed
                (_request(3), protobuf, bearer, {}),  # over_limits
            ]
        ]
        assert answers == [200, 401, 413, 415, 400, 400, 400]
        with grpc.insecure_channel(collector.endpoint_url("otlp_grpc")) as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            with pytest.raises(grpc.RpcError) as raised:
                export(os.urandom(5000), metadata=(("authorization", bearer),))  # too_large
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert collector.pipeline.flush(30)
        text = httpx.get(collector.endpoint_url("query_api") + "/metrics", headers={"authorization": bearer}).text
        scraped = _scrape(collector, headers={"authorization": bearer})
    refused = 'foothold_requests_refused_total{{reason="{}",receiver="{}"}}'
    expected = {refused.format(reason, "otlp_http"): 1.0 for reason in m.REFUSAL_REASONS}
    expected |= {
        refused.format("too_large", "otlp_grpc"): 1.0,
        'foothold_auth_failures_total{listener="otlp_http",reason="missing"}': 1.0,
        'foothold_spans_limit_refused_total{receiver="otlp_http"}': 3.0,
        TRACES.format("foothold_attributes_dropped_total"): 1.0,
        TRACES.format("foothold_values_truncated_total"): 1.0,
        TRACES.format("foothold_values_nesting_truncated_total"): 1.0,
        'foothold_spans_rejected_total{receiver="otlp_http"}': 1.0,
        'foothold_requests_total{outcome="ok",receiver="otlp_http"}': 1.0,
    }
    assert {name: scraped[name] for name in expected} == expected
    assert "# TYPE foothold_requests_refused_total counter" in text

    store = open_store(chdb_dsn, database)
    try:
        stored = (
            store.client()
            .query(
                f"SELECT Name, Labels, argMax(Value, Timestamp) FROM {database}.collector_metrics GROUP BY Name, Labels"
            )
            .result_rows
        )
    finally:
        store.close()
    table = {
        name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""): value
        for name, labels, value in stored
    }
    assert {name: table[name] for name in expected} == expected


def test_every_declared_metric_is_documented():
    """docs/reliability.md's self-telemetry table lists each metric of the one declaration."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert [metric.name for metric in m.METRICS if f"`{metric.name}`" not in doc] == []
