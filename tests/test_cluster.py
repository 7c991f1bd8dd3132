"""Every rule, dashboard query and CLI query on a two-shard Distributed cluster, against the single-node answers.

The counterpart is ClickHouse's own distributed query planner, in the chDB engine this process runs
(conftest.py gives it a ``remote_servers`` cluster whose two shards are both local): the schema is the
project's cluster DDL (`foothold-audit schema --cluster`, with ``store.replicated: false`` so nothing needs
Keeper: plain MergeTree engines, no ON CLUSTER), data arrives through the real collector writing into the
Distributed tables, and every query is planned and run as on a real cluster. A plain ``IN (SELECT …)`` or
``JOIN`` over two Distributed tables fails here with Code 288 exactly as on a server cluster. What the local
topology cannot reproduce is disjoint shards: both shards read the same local tables, so a Distributed read
sees every row twice. Counts may therefore be larger; identities (sessions, findings, tools, paths) may not
differ, and nothing may fail.

One SDK agent exports every span to both collectors (single node and cluster), so both stores hold the same
spans, ids and timestamps.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from foothold.collector.chain import load_chain_key
from foothold.collector.schema.ddl import Topology
from foothold.collector.schema.migrations import render_all
from foothold.collector.service import Collector, CollectorThread
from foothold.collector.verify import verify
from foothold.dashboards import build
from foothold.detections.macros import expand
from foothold.detections.rules import FINDING_COLUMNS, load_alert_rules
from foothold.investigation import inventory, timeline
from foothold.investigation.access import QueryResult
from tests.conftest import TEST_CLUSTER, make_settings
from tests.test_dashboards import DASHBOARDS, SELECTED_ALL, TIMELINE, TIMELINE_SESSION, grafana_sql, seed, window

SINGLE, CLUSTER = "single", "cluster"


class ClientReader:
    """The CLI's direct read path (foothold/investigation/access.py DirectReader): read-only queries on the store."""

    via = "test"

    def __init__(self, client) -> None:
        self._client = client

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        result = self._client.query(sql, parameters=parameters, settings={"readonly": 1})
        return QueryResult(list(result.column_names), [], [list(r) for r in result.result_rows])

    def rows(self, sql: str) -> list[tuple]:
        return self._client.query(sql, settings={"readonly": 1}).result_rows

    def flush(self) -> None:
        pass


@pytest.fixture(scope="module")
def stores(tmp_path_factory, chdb_dsn) -> Iterator[dict[str, Collector]]:
    """Two collectors on the one engine, a single-node database and a cluster one, fed the same spans."""
    suffix = uuid.uuid4().hex[:10]
    single = make_settings(tmp_path_factory.mktemp("single"), chdb_dsn, f"t_{suffix}_single")
    cluster = make_settings(
        tmp_path_factory.mktemp("cluster"),
        chdb_dsn,
        f"t_{suffix}_cluster",
        store={"cluster": TEST_CLUSTER, "replicated": False},
    )
    with CollectorThread(single) as one, CollectorThread(cluster) as many:
        provider = TracerProvider(resource=Resource.create({"service.name": "agents"}))
        for running in (one, many):
            exporter = OTLPSpanExporter(endpoint=running.endpoint_url("otlp_grpc"), insecure=True)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        seed(provider.get_tracer("foothold.tests"))
        provider.shutdown()
        for running in (one, many):
            assert running.pipeline.flush(30)
        yield {SINGLE: one, CLUSTER: many}


@pytest.fixture(scope="module")
def clients(stores):
    return {name: running.store.client() for name, running in stores.items()}


def _identities(rows: list, columns: list[str], ignore: frozenset[str] = frozenset()) -> set:
    """The non-numeric cells of a result: who and what, not how many (the local topology doubles counts)."""
    out = set()
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            if isinstance(value, (int, float)) or column in _NOT_COMPARED | ignore:
                continue
            if isinstance(value, str):  # groupUniqArray lists come in any order: compare their members
                value = tuple(sorted(value.split(", ")))
            out.add((column, value if isinstance(value, (tuple, bool, datetime)) else repr(value)))
    return out


# Text that embeds a count (evidence like "used in 3 sessions"), and the times each store's own evaluator
# raised and delivered its alerts (two evaluators, two clocks).
_NOT_COMPARED = {"evidence", "Evidence", "RaisedAt", "last_delivery"}


def run_both(clients, sql_for) -> tuple[Any, Any]:
    results = {}
    for name, client in clients.items():
        results[name] = client.query(sql_for(name))
    return results[SINGLE], results[CLUSTER]


def assert_same_answer(single, cluster, what: str, ignore: frozenset[str] = frozenset()) -> None:
    assert bool(single.result_rows) == bool(cluster.result_rows), f"{what}: one side is empty"
    assert list(single.column_names) == list(cluster.column_names), what
    columns = list(single.column_names)
    assert _identities(cluster.result_rows, columns, ignore) == _identities(single.result_rows, columns, ignore), what


def test_the_cluster_store_is_distributed_over_two_shards(clients):
    """The premise: the collector created Distributed tables over two shards, and wrote through them."""
    client = clients[CLUSTER]
    shards = client.query(
        "SELECT shard_num, is_local FROM system.clusters WHERE cluster = {c:String}", parameters={"c": TEST_CLUSTER}
    ).result_rows
    assert shards == [(1, 1), (2, 1)]
    engines = dict(
        client.query(
            "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name LIKE 'tool_calls%'"
        ).result_rows
    )
    assert engines == {
        "tool_calls": "Distributed",
        "tool_calls_local": "ReplacingMergeTree",
        "tool_calls_mv": "MaterializedView",
        "tool_calls_from_logs_mv": "MaterializedView",  # native agent events (otel_logs) into the same table
    }
    (local,) = client.query("SELECT count() FROM tool_calls_local").result_rows[0]
    (distributed,) = client.query("SELECT count() FROM tool_calls").result_rows[0]
    (single,) = clients[SINGLE].query("SELECT count() FROM tool_calls").result_rows[0]
    assert local == single > 0 and distributed == 2 * single  # each shard reads the one local table


def test_the_collector_applied_the_rendered_cluster_ddl(clients):
    """What `foothold-audit schema --cluster` prints (minus Keeper) is what the cluster store holds."""
    rendered = render_all(Topology(database="x", cluster=TEST_CLUSTER, replicated=False))
    assert not any("ON CLUSTER" in s or "Replicated" in s for s in rendered)
    created = {s.split(" IF NOT EXISTS x.")[1].split()[0] for s in rendered if s.startswith("CREATE TABLE")}
    tables = {r[0] for r in clients[CLUSTER].query("SHOW TABLES").result_rows}
    assert created <= tables
    # Dropping only what needs Keeper: the replicated rendering minus ON CLUSTER and the Keeper engine
    # arguments is, statement for statement, what ran here.
    replicated = render_all(Topology(database="x", cluster=TEST_CLUSTER))
    assert all("ON CLUSTER" in s for s in replicated)
    without_keeper = [
        re.sub(
            r"Replicated(\w+)\('/clickhouse/tables/\{shard\}/[^']*', '\{replica\}'(?:, )?([^)]*)\)",
            r"\1(\2)",
            s.replace(f" ON CLUSTER '{TEST_CLUSTER}'", ""),
        )
        for s in replicated
    ]
    assert without_keeper == rendered


# --- alert rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", load_alert_rules(), ids=lambda r: r.id)
def test_every_rule_finds_the_same_findings_on_the_cluster(rule, clients):
    span = window()
    single, cluster = run_both(clients, lambda _: expand(rule.sql, span))
    # the finding key, and what became of the call with the severity that follows (rules that say so)
    extra = len(rule.columns) - len(FINDING_COLUMNS)
    keys = lambda result: {(r[0], *r[len(r) - extra :]) for r in result.result_rows}  # noqa: E731 (a local helper)
    assert keys(cluster) == keys(single), rule.id
    if rule.id == "durable_write":  # the seed's attempts are on both, low, and the made writes keep critical
        assert {(k.split(":")[1], o, s) for k, o, s in keys(cluster) if o in ("denied", "failed")} == {
            ("keys-refused", "denied", "low"),
            ("keys-failed", "failed", "low"),
        }
        assert {s for _k, o, s in keys(cluster) if o not in ("denied", "failed")} == {"critical"}


@pytest.mark.parametrize("rule", load_alert_rules(), ids=lambda r: r.id)
def test_every_grafana_alert_query_runs_on_the_cluster(rule, clients):
    """The query Grafana's alert rule runs (the rule's SQL counted per session), no variables."""
    span = window()
    single, cluster = run_both(clients, lambda _: expand(build.alert_query(rule), span))
    assert {r[:2] for r in cluster.result_rows} == {r[:2] for r in single.result_rows}, rule.id


def test_the_evaluator_raises_and_delivers_the_same_alerts(stores):
    reports = {name: running.evaluate_alerts() for name, running in stores.items()}
    for name, report in reports.items():
        assert report.failed_rules == {} and report.failed_sinks == {}, name
    raised = {name: {(a.rule_id, a.finding_key) for a in report.raised} for name, report in reports.items()}
    assert raised[SINGLE] and raised[CLUSTER] == raised[SINGLE]
    assert reports[CLUSTER].delivered["stdout"] >= len(raised[SINGLE])
    # A second pass raises and delivers nothing new: the delivery query (GLOBAL NOT IN) saw the deliveries.
    again = stores[CLUSTER].evaluate_alerts()
    assert again.raised == [] and again.delivered.get("stdout", 0) == 0 and again.failed_rules == {}


# --- dashboards ---------------------------------------------------------------------------------------


def _panel_queries() -> Iterator[Any]:
    for name, dashboard in DASHBOARDS.items():
        for panel in build.iter_panels(dashboard):
            for target in panel.get("targets", []):
                yield pytest.param(name, target["rawSql"], id=f"{name}:{panel['title']}:{target['refId']}")
        for variable in dashboard["templating"]["list"]:
            if variable.get("type") == "query":
                yield pytest.param(name, variable["query"]["rawSql"], id=f"{name}:${variable['name']}")


@pytest.mark.parametrize(("name", "sql"), list(_panel_queries()))
def test_every_panel_and_variable_query_gives_the_single_node_answer(name, sql, clients):
    def values(which: str) -> dict[str, str]:
        (trace_id,) = (
            clients[which]
            .query(
                "SELECT any(TraceId) FROM tool_calls WHERE SessionId = {s:String}", parameters={"s": TIMELINE_SESSION}
            )
            .result_rows[0]
        )
        chosen = {"agent": SELECTED_ALL, "session": SELECTED_ALL, "trace_id": trace_id}
        return chosen | {"session": TIMELINE_SESSION} if name == TIMELINE else chosen

    single, cluster = run_both(clients, lambda which: grafana_sql(sql, values(which), name))
    if "collector_metrics" in sql:
        # Each collector's own telemetry, sampled on its own timer: the query must run on the cluster, but two
        # collectors' queues and counters are not the same facts.
        return
    if ") AS Run" in sql:
        # Run boundaries are a running count of checkpoints over the session's calls: with every row read
        # twice the runs themselves change, so only "runs and shows the same sessions" can hold here.
        assert bool(single.result_rows) == bool(cluster.result_rows)
        return
    # Time buckets of when each store's evaluator raised or delivered: two evaluators, two clocks.
    evaluation_time = frozenset({"time"}) if "(RaisedAt)" in sql or "(DeliveredAt)" in sql else frozenset()
    assert_same_answer(single, cluster, f"{name}: {sql[:80]}", evaluation_time)


# --- the CLI's queries ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def readers(clients):
    return {name: ClientReader(client) for name, client in clients.items()}


def _sessions(reader, **filters) -> set:
    _, rows = timeline.find_sessions(reader, timeline.SessionFilter(**filters), limit=100)
    return {row[0] for row in rows}


@pytest.mark.parametrize(
    "filters",
    [{}, {"agent": "ops-bot"}, {"tool": "bash"}, {"path": "/etc/cron.d"}, {"since": datetime(2020, 1, 1)}],
    ids=lambda f: ",".join(f) or "all",
)
def test_sessions_lists_the_same_sessions(filters, readers):
    single, cluster = _sessions(readers[SINGLE], **filters), _sessions(readers[CLUSTER], **filters)
    assert single and cluster == single


def test_timeline_shows_the_same_calls_and_artifacts(readers):
    one = timeline.session_timeline(readers[SINGLE], TIMELINE_SESSION)
    many = timeline.session_timeline(readers[CLUSTER], TIMELINE_SESSION)
    calls = lambda t: sorted({(c.call_id, c.tool, c.arguments) for c in t.calls})  # noqa: E731 (a one-line local helper)
    assert calls(one) and calls(many) == calls(one)


def test_inventory_credentials_and_report_give_the_same_answers(readers):
    paths = lambda r: {(a.path, a.kind) for a in inventory.artifact_inventory(r, include_all=True)}  # noqa: E731 (a one-line local helper)
    assert paths(readers[SINGLE]) and paths(readers[CLUSTER]) == paths(readers[SINGLE])
    fingerprints = lambda r: {row[0] for row in inventory.credential_usage(r)[1]}  # noqa: E731 (a one-line local helper)
    assert fingerprints(readers[SINGLE]) and fingerprints(readers[CLUSTER]) == fingerprints(readers[SINGLE])
    steps = lambda r: {s.path for s in inventory.remediation_report(r).remove}  # noqa: E731 (a one-line local helper)
    assert steps(readers[SINGLE]) and steps(readers[CLUSTER]) == steps(readers[SINGLE])


def test_verify_reads_the_chain_on_the_cluster(readers, stores):
    """`foothold-audit verify` runs; on the doubled local topology the chain itself is intact."""
    report = verify(readers[CLUSTER].rows, load_chain_key(stores[CLUSTER].settings.chain_key_path))
    kinds = {f.kind for f in report.findings}
    assert not kinds & {"altered", "deleted", "link_altered", "chain_broken", "chain_gap"}, kinds
