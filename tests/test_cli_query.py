"""`foothold-audit sql` and the query API: through a running collector, or straight to the store."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import orjson

from foothold.investigation.access import open_reader
from tests.conftest import sdk_agent


def _env(settings) -> dict[str, str]:
    return os.environ | {
        "FOOTHOLD_DATA_DIR": str(settings.data_dir),
        "FOOTHOLD_STORE__DSN": settings.store_dsn,
        "FOOTHOLD_STORE__DATABASE": settings.store.database,
    }


def _emit(collector, n: int) -> None:
    agent = sdk_agent(collector)
    for i in range(n):
        with agent.tracer.start_as_current_span(f"span-{i}"):
            pass
    agent.close()


def test_sql_from_another_process_goes_through_the_collector_that_owns_the_store(collector, settings):
    _emit(collector, 3)
    assert collector.pipeline.flush(30)
    command = [sys.executable, "-m", "foothold", "sql", "SELECT count() AS spans FROM otel_traces", "--format", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(settings), timeout=120)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout) == [{"spans": 3}]


def test_reader_prefers_the_query_api_when_a_collector_runs(collector, settings):
    with open_reader(settings) as reader:
        assert "query API" in reader.via
        assert reader.query("SELECT 41 + 1 AS answer").rows == [[42]]


def test_reader_opens_the_store_directly_when_no_collector_runs(settings):
    with open_reader(settings) as reader:
        assert reader.via.startswith("store chdb://")
        assert reader.query("SELECT count() FROM tool_calls").rows == [[0]]


def test_query_api_is_read_only_and_explains_bad_requests(collector):
    base = collector.endpoint_url("query_api")
    refused = httpx.post(base + "/v1/query", json={"sql": "DROP TABLE otel_traces"})
    assert refused.status_code == 400 and "DROP statement" in refused.json()["error"]
    assert httpx.post(base + "/v1/query", content=b"{not json").status_code == 400
    assert "sql" in httpx.post(base + "/v1/query", json={"query": "SELECT 1"}).json()["error"]
    assert httpx.post(base + "/v1/query", json={"sql": "SELECT 1", "parameters": [1]}).status_code == 400
    health = httpx.get(base + "/healthz").json()
    assert health["status"] == "ok" and 'foothold_spans_accepted_total{signal="traces"}' in health["metrics"]
    still = httpx.post(base + "/v1/query", json={"sql": "SELECT {n:UInt8} AS n", "parameters": {"n": 7}})
    assert still.json()["rows"] == [[7]]


def test_cli_reports_a_broken_config_with_the_fix(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("batch:\n  max_spans: lots\n")
    result = subprocess.run(
        [sys.executable, "-m", "foothold", "sql", "SELECT 1", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "batch.max_spans" in result.stderr and "FOOTHOLD_BATCH__MAX_SPANS" in result.stderr
