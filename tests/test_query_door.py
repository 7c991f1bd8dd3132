"""The query door reads only what Foothold owns (issue 13): each attack tried against a running collector.

The counterpart is the real one: chDB's embedded ClickHouse 26.9 (the engine a deployment without a server
runs), reached over a real HTTP socket on 127.0.0.1. Every refusal here succeeded on the code before the
door: ``readonly=1`` alone let ``DESCRIBE TABLE file(…)`` echo a file's head, ``url(…)`` fetch, the scalar
``file()`` read, ``INTO OUTFILE`` write, ``KILL QUERY`` kill, and chDB ran ``SELECT 1; KILL …`` as two.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import orjson
import pytest

from foothold.collector.service import CollectorThread
from foothold.collector.store import StoreError
from foothold.investigation.access import open_reader
from tests.conftest import make_settings, rows, sdk_agent

CANARY = "fingerprint_key: CANARY-d41d8cd98f00b204"
# 10^12 rows from a cross join of two in-query arrays: runs until a limit or a KILL stops it, little memory
ENDLESS = (
    "SELECT count() FROM (SELECT arrayJoin(range(1000000)) AS a) AS x, (SELECT arrayJoin(range(1000000)) AS b) AS y"
)


def _query(collector, sql: str, **kwargs) -> httpx.Response:
    return httpx.post(collector.endpoint_url("query_api") + "/v1/query", json={"sql": sql}, timeout=60, **kwargs)


class _Listener:
    """A TCP listener that counts connections: proves the collector made no request to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0)

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "foothold.yaml"
    path.write_text(f"{CANARY}\nstore:\n  dsn: chdb:///x\n")
    return path


def test_describe_of_file_and_url_table_functions_is_refused_without_reading_or_fetching(collector, secret_file):
    for fmt in ("JSONEachRow", "CSV", "LineAsString"):
        answer = _query(collector, f"DESCRIBE TABLE file('{secret_file}', '{fmt}')")
        assert answer.status_code == 400 and "refused" in answer.json()["error"]
        assert "CANARY" not in answer.text
    listener = _Listener()
    try:
        for sql in (
            f"DESCRIBE TABLE url('http://127.0.0.1:{listener.port}/', 'JSONEachRow')",
            f"SELECT * FROM url('http://127.0.0.1:{listener.port}/', 'LineAsString')",
        ):
            answer = _query(collector, sql)
            assert answer.status_code == 400 and "refused" in answer.json()["error"], answer.text
        assert listener.connections() == 0, "the collector connected to the URL"
    finally:
        listener.sock.close()


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT file('{secret}')", "function file()"),
        ("SELECT * FROM file('{secret}', 'LineAsString')", "table function file()"),
        ("SELECT * FROM numbers(10)", "table function numbers()"),
        ("SELECT * FROM remote('127.0.0.1', system.one)", "table function remote()"),
        ("SELECT * FROM (EXPLAIN AST SELECT 1)", "table function viewExplain()"),
        ("SELECT 1 INTO OUTFILE '{out}'", "INTO OUTFILE"),
        ("KILL QUERY WHERE 1", "KILL statement"),
        ("SYSTEM FLUSH LOGS", "SYSTEM statement"),
        ("SELECT 1; KILL QUERY WHERE 1", "Multi-statements are not allowed"),
        ("SELECT 1; SELECT 2", "Multi-statements are not allowed"),
        ("SELECT name FROM system.tables", "table system.tables"),
        ("SELECT 1 IN system.one", "table system.one"),
        ("SELECT count() FROM tool_calls SETTINGS max_execution_time = 30", "SETTINGS clause"),
        ("SELECT 1 FORMAT JSON", "FORMAT JSON"),
        ("INSERT INTO alerts (RuleId) VALUES ('x')", "INSERT statement"),
        ("SELECT sleepEachRow(3) FROM tool_calls", "function sleepEachRow()"),
    ],
)
def test_everything_but_one_read_of_the_database_is_refused_with_a_clear_error(collector, tmp_path, sql, named):
    out = tmp_path / "out.txt"
    answer = _query(collector, sql.format(secret=tmp_path / "foothold.yaml", out=out))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert named in error, error
    assert not out.exists()


def test_reads_of_the_database_still_work(collector):
    sdk = sdk_agent(collector)
    with sdk.tracer.start_as_current_span("tool"):
        pass
    sdk.close()
    assert collector.pipeline.flush(30)
    database = collector.store.database
    for sql in (
        "SELECT count() FROM otel_traces",
        f"SELECT count() FROM {database}.otel_traces",
        "WITH t AS (SELECT SpanName FROM otel_traces) SELECT count() FROM t "
        "WHERE SpanName IN (SELECT SpanName FROM otel_traces UNION ALL SELECT RuleId FROM alerts)",
        "SELECT count() FROM otel_traces WHERE TraceId IN (SELECT TraceId FROM otel_traces) -- a comment",
    ):
        answer = _query(collector, sql)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"][0] == [1]


def test_engine_limits_are_always_set_and_cannot_be_lifted(tmp_path, chdb_dsn, database):
    settings = make_settings(
        tmp_path, chdb_dsn, database, query_api={"max_rows": 10, "max_seconds": 0.5, "max_memory_bytes": 1 << 30}
    )
    with CollectorThread(settings) as collector:
        answer = _query(
            collector,
            "SELECT getSetting('readonly'), getSetting('max_execution_time'), getSetting('max_result_rows'), "
            "getSetting('result_overflow_mode'), getSetting('max_memory_usage'), getSetting('max_result_bytes')",
        )
        assert answer.json()["rows"] == [[1, 0.5, 11, "break", 1 << 30, 256 << 20]]
        lifted = _query(collector, "SELECT 1 SETTINGS max_execution_time = 0")
        assert lifted.status_code == 400 and "readonly" in lifted.json()["error"]
        timed_out = _query(collector, ENDLESS)
        assert timed_out.status_code == 400 and "TIMEOUT_EXCEEDED" in timed_out.json()["error"]
        many = _query(collector, "SELECT arrayJoin(range(100000)) AS n")
        assert many.status_code == 200 and len(many.json()["rows"]) == 10 and many.json()["truncated"]


def _running(collector, marker: str) -> int:
    client = collector.store.client()
    try:
        found = client.query(
            "SELECT count() FROM system.processes WHERE query LIKE concat('%', {m:String}, '%') "
            "AND query NOT LIKE '%system.processes%'",
            parameters={"m": marker},
        )
        return found.result_rows[0][0]
    finally:
        client.close()


def _wait_for(condition, what: str, deadline_s: float = 60.0) -> None:
    """Poll a condition on the store (not a sleep as synchronisation: it returns as soon as it holds)."""
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _send_and_hold(collector, sql: str) -> socket.socket:
    """A raw HTTP request whose client then stays connected until the caller closes the socket."""
    port = collector.ports["query_api"]
    body = orjson.dumps({"sql": sql})
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def test_a_client_that_goes_away_has_its_query_killed_and_queries_never_delay_ingest(tmp_path, chdb_dsn, database):
    settings = make_settings(
        tmp_path, chdb_dsn, database, query_api={"workers": 1, "max_waiting": 0, "max_seconds": 600}
    )
    with CollectorThread(settings) as collector:
        marker = "arrayJoin(range(1000000)) AS b"
        held = _send_and_hold(collector, ENDLESS)
        _wait_for(lambda: _running(collector, marker) == 1, "the endless query to start")
        # the one worker is busy: the next query is told so at once instead of queueing behind it
        busy = _query(collector, "SELECT 1")
        assert busy.status_code == 503 and "query_api.workers" in busy.json()["error"]
        # ingest does not share the door's threads: an OTLP/HTTP export is stored meanwhile
        sdk = sdk_agent(collector, protocol="http")
        with sdk.tracer.start_as_current_span("during-query"):
            pass
        sdk.close()
        assert rows(collector, "SELECT count() FROM {db}.otel_traces WHERE SpanName = 'during-query'") == [(1,)]
        held.close()  # the client goes away: the query must stop long before its 600 s limit
        _wait_for(lambda: _running(collector, marker) == 0, "the abandoned query to be killed")
        assert _query(collector, "SELECT 1").json()["rows"] == [[1]]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "attacker.example:4319"}, 403),  # DNS rebinding: the page's own name in Host
        ({"Origin": "http://attacker.example"}, 403),  # a web page posting to localhost
        ({"Origin": "null"}, 403),
        ({"Host": "localhost"}, 200),
        ({}, 200),
    ],
)
def test_host_and_origin_are_checked(collector, headers, status):
    answer = _query(collector, "SELECT 1", headers=headers)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert "query_api.allowed" in answer.json()["error"]
        for path in ("/metrics", "/v1/flush"):
            method = httpx.get if path == "/metrics" else httpx.post
            assert method(collector.endpoint_url("query_api") + path, headers=headers).status_code == 403
        # liveness probes address the listener by IP: /healthz answers, and says only "ok" without a token
        health = httpx.get(collector.endpoint_url("query_api") + "/healthz", headers=headers)
        assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_allowed_hosts_extend_the_loopback_names(tmp_path, chdb_dsn, database):
    settings = make_settings(tmp_path, chdb_dsn, database, query_api={"allowed_hosts": ["collector"]})
    with CollectorThread(settings) as collector:
        assert _query(collector, "SELECT 1", headers={"Host": "collector:4319"}).status_code == 200
        assert _query(collector, "SELECT 1", headers={"Host": "other:4319"}).status_code == 403


def test_the_cli_reading_the_store_directly_goes_through_the_same_door(settings, secret_file):
    with open_reader(settings) as reader:
        assert reader.via.startswith("store chdb://")
        with pytest.raises(StoreError, match="refused") as refused:
            reader.query(f"DESCRIBE TABLE file('{secret_file}', 'JSONEachRow')")
        assert "CANARY" not in str(refused.value)
        with pytest.raises(StoreError, match="function file"):
            reader.query(f"SELECT file('{secret_file}')")
        assert reader.query("SELECT count() FROM tool_calls").rows == [[0]]


def test_a_refused_query_leaves_the_door_serving(collector):
    """Bad input gets a clear error and the process keeps serving: many refusals, then a good read."""
    threads = [threading.Thread(target=_query, args=(collector, "KILL QUERY WHERE 1")) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _query(collector, "SELECT 41 + 1").json()["rows"] == [[42]]


def test_the_compose_read_only_user_holds_the_same_limits_and_reads_only_the_database():
    """On a server ClickHouse enforces the door with a settings profile; it must match the chDB limits."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from foothold.collector.config import QueryApiConfig
    from foothold.collector.query_door import engine_limits

    root = ET.parse(Path(__file__).parents[1] / "compose" / "clickhouse" / "users.d" / "foothold-query.xml").getroot()
    profile = {child.tag: child.text for child in root.find("profiles/foothold_query")}
    expected = {k: str(v) for k, v in engine_limits(QueryApiConfig()).items()}
    assert profile["readonly"] == "1"
    assert {k: profile[k].rstrip("0").rstrip(".") if "." in profile[k] else profile[k] for k in expected} == {
        k: v.removesuffix(".0") for k, v in expected.items()
    }
    assert [q.text for q in root.findall("users/foothold_query/grants/query")] == ["GRANT SELECT ON foothold.*"]
