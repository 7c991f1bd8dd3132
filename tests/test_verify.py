"""Tamper evidence: `foothold-audit verify` passes on a clean store and names the batch of every changed row."""

from __future__ import annotations

import os

import httpx
import orjson
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from typer.testing import CliRunner

from foothold.cli import app
from foothold.collector import metrics as m
from foothold.collector.chain import ChainStore
from foothold.collector.service import CollectorThread
from tests.conftest import make_settings, rows

KEY = bytes(range(32))


def _request(prefix: str, spans: int) -> bytes:
    """Spans that exercise the exact round trip: ns times, unordered maps, unicode, events and links."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    kv = resource.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "verify-agent"
    scope = resource.scope_spans.add()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"{prefix}-{i} é✓"
        span.start_time_unix_nano = 1_790_000_000_123_456_789 + i
        span.end_time_unix_nano = span.start_time_unix_nano + 987_654_321
        for key in ("zeta", "alpha", "mid"):
            attribute = span.attributes.add()
            attribute.key, attribute.value.string_value = key, f"{key}-{i}"
        number = span.attributes.add()
        number.key, number.value.double_value = "ratio", 0.1 + i
        event = span.events.add()
        event.name, event.time_unix_nano = "checkpoint", span.start_time_unix_nano + 1
        event_attribute = event.attributes.add()
        event_attribute.key, event_attribute.value.int_value = "n", i
        link = span.links.add()
        link.trace_id, link.span_id = os.urandom(16), os.urandom(8)
    return request.SerializeToString()


def _send_batches(collector, batches: int = 3, spans: int = 4) -> None:
    url = collector.endpoint_url("otlp_http") + "/v1/traces"
    for b in range(batches):
        response = httpx.post(url, content=_request(f"b{b}", spans), headers={"content-type": "application/x-protobuf"})
        assert response.status_code == 200
        assert collector.pipeline.flush(30)  # one batch (one chain link) per request


def _config(tmp_path, settings) -> str:
    path = tmp_path / "foothold.yaml"
    values = {
        "data_dir": str(settings.data_dir),
        "store": {"dsn": settings.store_dsn, "database": settings.store.database},
        "chain": {
            "name": settings.chain.name,
            "mirror_file": str(settings.chain.mirror_file) if settings.chain.mirror_file else None,
        },
    }
    path.write_text(yaml.safe_dump(values))
    return str(path)


def _verify(config: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["verify", "-c", config, "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, orjson.loads(result.stdout)


def _span_ids(client, db: str, where: str) -> list[tuple[str, str]]:
    return client.query(f"SELECT TraceId, SpanId FROM {db}.otel_traces WHERE {where} ORDER BY SpanName").result_rows


def test_verify_passes_clean_then_names_deleted_altered_and_inserted_rows(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, chain={"name": "collector-a"}, metrics={"enabled": False})
    with CollectorThread(settings) as collector:
        _send_batches(collector)
        links = rows(
            collector, "SELECT Sequence, Rows FROM {db}.export_chain WHERE Chain = 'collector-a' ORDER BY Sequence"
        )
        assert links == [(1, 4), (2, 4), (3, 4)]
    config = _config(tmp_path, settings)

    code, report = _verify(config)  # no collector runs: verify opens the store itself
    assert code == 0 and report["ok"] and report["rows"] == 12 and report["chains"] == {"collector-a": 3}
    text = CliRunner().invoke(app, ["verify", "-c", config])
    assert text.exit_code == 0 and "OK" in text.stderr

    from foothold.collector.store import open_store

    store = open_store(settings.store_dsn, database)
    try:
        client, db = store.client(), database
        (deleted,) = _span_ids(client, db, "SpanName LIKE 'b1-2 %'")
        (altered,) = _span_ids(client, db, "SpanName LIKE 'b2-0 %'")
        client.command(f"DELETE FROM {db}.otel_traces WHERE SpanId = '{deleted[1]}'")  # lightweight delete
        client.command(
            f"ALTER TABLE {db}.otel_traces UPDATE StatusMessage = 'all good' WHERE SpanId = '{altered[1]}'",
            settings={"mutations_sync": 2},
        )
        client.command(
            f"INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, SpanName) VALUES (now64(9), "
            "'ab', 'cd', 'forged')"
        )
    finally:
        store.close()

    code, report = _verify(config)
    assert code == 1 and not report["ok"]
    found = {(f["kind"], f["chain"], f["sequence"], f["trace_id"], f["span_id"]) for f in report["findings"]}
    assert found == {
        ("deleted", "collector-a", 2, *deleted),
        ("altered", "collector-a", 3, *altered),
        ("inserted", "", None, "ab", "cd"),
    }
    text = CliRunner().invoke(app, ["verify", "-c", config])
    assert text.exit_code == 1 and "1 altered, 1 deleted, 1 inserted" in " ".join(text.stderr.split())


def test_verify_through_the_running_collector_that_owns_the_store(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, metrics={"enabled": False})
    config = _config(tmp_path, settings)
    with CollectorThread(settings) as collector:
        _send_batches(collector, batches=2)
        code, report = _verify(config)
        assert code == 0 and report["links"] == 2 and report["rows"] == 8
        (target,) = _span_ids(collector.store.client(), database, "SpanName LIKE 'b0-1 %'")
        collector.store.client().command(
            f"ALTER TABLE {database}.otel_traces UPDATE SpanAttributes = mapUpdate(SpanAttributes, "
            "map('alpha', 'changed')) "
            f"WHERE SpanId = '{target[1]}'",
            settings={"mutations_sync": 2},
        )
        code, report = _verify(config)
        assert code == 1
        assert [(f["kind"], f["sequence"], f["span_id"]) for f in report["findings"]] == [("altered", 1, target[1])]


def test_rewriting_the_chain_itself_is_caught_by_the_chain_and_the_mirror(tmp_path, chdb_dsn, database):
    mirror = tmp_path / "chain.jsonl"
    settings = make_settings(
        tmp_path, chdb_dsn, database, chain={"name": "c", "mirror_file": str(mirror)}, metrics={"enabled": False}
    )
    with CollectorThread(settings) as collector:
        _send_batches(collector, batches=3, spans=2)
        assert [orjson.loads(line)["sequence"] for line in mirror.read_bytes().splitlines()] == [1, 2, 3]
        client = collector.store.client()
        # drop the newest link and its rows: consistent in the table, but the mirror remembers link 3
        (link3,) = client.query(f"SELECT SpanIds FROM {database}.export_chain WHERE Sequence = 3").result_rows[0]
        for span_id in link3:
            client.command(f"DELETE FROM {database}.otel_traces WHERE SpanId = '{span_id}'")
        client.command(f"DELETE FROM {database}.export_chain WHERE Sequence = 3")
        # and doctor link 1's recorded digests to match an edited row
        client.command(
            f"ALTER TABLE {database}.export_chain UPDATE RowDigests = arrayMap(d -> reverse(d), RowDigests) "
            "WHERE Sequence = 1",
            settings={"mutations_sync": 2},
        )
        code, report = _verify(_config(tmp_path, settings))
    kinds = {(f["kind"], f["sequence"]) for f in report["findings"]}
    assert code == 1
    assert ("mirror_missing", 3) in kinds and ("link_altered", 1) in kinds
    assert ("altered", 1) in kinds  # the rows no longer match the doctored digests


def test_a_failed_link_write_is_retried_without_writing_the_rows_twice(tmp_path, chdb_dsn, database, monkeypatch):
    settings = make_settings(tmp_path, chdb_dsn, database, batch={"retry_max_seconds": 0.2}, metrics={"enabled": False})
    original = ChainStore.record
    failures = []

    def flaky_record(self, link):
        if not failures:
            failures.append(link.sequence)
            raise ConnectionError("injected: export_chain unreachable")
        original(self, link)

    monkeypatch.setattr(ChainStore, "record", flaky_record)
    with CollectorThread(settings) as collector:
        _send_batches(collector, batches=1, spans=3)
        assert failures == [1] and collector.metrics.value(m.EXPORT_FAILURES, signal="traces") == 1
        assert rows(collector, "SELECT count() FROM {db}.otel_traces") == [(3,)]
        assert rows(collector, "SELECT Sequence, Rows FROM {db}.export_chain") == [(1, 3)]
        assert collector.verify_chain().ok


def test_chain_continues_across_restarts(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, chain={"name": "c"}, metrics={"enabled": False})
    for _ in range(2):
        with CollectorThread(settings) as collector:
            _send_batches(collector, batches=1, spans=1)
            report = collector.verify_chain()
    assert report.ok and report.chains == {"c": 2}


@pytest.mark.parametrize("other_writers", [False, True])
def test_unchained_rows_from_other_writers(tmp_path, chdb_dsn, database, other_writers):
    settings = make_settings(
        tmp_path, chdb_dsn, database, chain={"other_writers": other_writers}, metrics={"enabled": False}
    )
    with CollectorThread(settings) as collector:
        _send_batches(collector, batches=1, spans=1)
        client = collector.store.client()
        client.command(
            f"INSERT INTO {database}.otel_traces (Timestamp, TraceId, SpanId, SpanName) VALUES "
            "(now64(9), 'a1', 'b1', 'otelcol')"
        )
        client.command(
            f"INSERT INTO {database}.otel_traces (Timestamp, TraceId, SpanId, SpanName, SpanAttributes) "
            f"VALUES (now64(9), 'a2', 'b2', 'claims', map('foothold.sender', 'agent-fleet-a'))"
        )
        report = collector.verify_chain()
    inserted = sorted(f.span_id for f in report.findings if f.kind == "inserted")
    assert inserted == (["b2"] if other_writers else ["b1", "b2"])


def test_a_batch_replayed_after_a_crash_is_no_deleted_row(chdb_dsn, database):
    """A crash between a batch's chain link and its spool checkpoint replays the batch: the insert is
    deduplicated, a second link records the same rows. Verify passes; a row then deleted is still caught."""
    from foothold.collector.chain import ChainingExporter
    from foothold.collector.exporter import ClickHouseExporter
    from foothold.collector.rows import to_batch
    from foothold.collector.store import open_store
    from foothold.collector.verify import verify

    store = open_store(chdb_dsn, database)
    try:
        batch = to_batch([ExportTraceServiceRequest.FromString(_request("replayed", 3))])
        batch.dedup_token = "foothold-spool:test:7-8"
        for _ in range(2):  # the first run, then the restarted collector's replay of the same spool range
            ChainingExporter(ClickHouseExporter(store), ChainStore(store, "collector-a", KEY)).export(batch)
        client, db = store.client(), store.database
        assert client.query(f"SELECT count() FROM {db}.otel_traces").result_rows == [(3,)]
        assert client.query(f"SELECT Sequence FROM {db}.export_chain ORDER BY Sequence").result_rows == [(1,), (2,)]

        def query(sql: str) -> list:  # as the collector's /v1/verify runs it: unqualified, in the store's database
            return client.query(sql).result_rows

        assert verify(query, KEY).findings == []
        client.command(
            f"ALTER TABLE {db}.otel_traces DELETE WHERE SpanName = 'replayed-1 é✓' SETTINGS mutations_sync = 1"
        )
        found = verify(query, KEY).findings
        assert {(f.kind, f.sequence) for f in found} == {("deleted", 1), ("deleted", 2)}
    finally:
        store.close()
