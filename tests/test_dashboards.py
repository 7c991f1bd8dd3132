"""Dashboards and Grafana alert rules: every query runs on real data, and the files are well formed.

Demo sessions go through the real pipeline (OpenTelemetry SDK -> collector -> chDB); each panel's and each
alert rule's SQL is then expanded the way Grafana's ClickHouse plugin expands it server-side
(foothold.detections.macros) with the dashboard variables filled in as Grafana formats them, and run
against the test database through the collector's store.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from foothold import semconv
from foothold.collector.metrics import METRICS
from foothold.dashboards import build
from foothold.detections.macros import TimeRange, expand
from foothold.detections.rules import load_alert_rules
from tests.conftest import sdk_agent
from tests.scenarios import Session, artifact, credential_sessions, injected_devops_session

DASHBOARDS = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(build.JSON_DIR.glob("*.json"))}
ALERTS = yaml.safe_load((build.ALERTING_DIR / "foothold-alerts.yaml").read_text(encoding="utf-8"))
CONTACT_POINTS = yaml.safe_load((build.ALERTING_DIR / "contact-points.yaml").read_text(encoding="utf-8"))
PIPELINE_PANEL = "(collector_metrics)"
SELECTED_ALL = "$__all"  # a variable's value when All is selected
TIMELINE, TIMELINE_SESSION = "session-timeline", "injected"

# Session ids that try to break out of a SQL string literal: quote-doubling (sqlstring) alone does not stop
# the backslash ones, since ClickHouse reads \\' as an escaped quote.
HOSTILE_SESSIONS = ("x' OR '1'='1", "x\\' OR 1=1 --", "x\\", "{a,b}%27")

# Panels that may legitimately be empty on the demo data (none besides the pipeline-metric panels).
MAY_BE_EMPTY: set[str] = set()


def panels(names=DASHBOARDS):
    for name in names:
        for panel in build.iter_panels(DASHBOARDS[name]):
            if panel.get("targets"):
                yield pytest.param(name, panel, id=f"{name}:{panel['title']}")


def variable(dashboard: str, name: str) -> dict | None:
    return next((v for v in DASHBOARDS[dashboard]["templating"]["list"] if v["name"] == name), None)


# Dashboards whose session variable has an All option (the timeline always shows one session).
SESSION_DASHBOARDS = [n for n in DASHBOARDS if (variable(n, "session") or {}).get("includeAll")]


# --- seeding -------------------------------------------------------------------------------------------


def seed(tracer) -> None:
    injected_devops_session(tracer)
    Session(tracer, "flaky").call("bash", {"command": "make deploy"}, error=True)  # feeds the error-rate panels

    # Persistence labels set directly on the spans, as an agent-side classifier would.
    cron = Session(tracer, "cron-writer", agent="ops-bot", task="task-9")
    cron.call(
        "write_file",
        {"file_path": "/etc/cron.d/backup"},
        extra={
            semconv.PERSISTENCE_KIND: "cron",
            semconv.PERSISTENCE_TECHNIQUE: "T1053.003",
            semconv.PERSISTENCE_TARGET: "/etc/cron.d/backup",
        },
        artifacts=[
            artifact(
                "/etc/cron.d/backup",
                "create",
                **{semconv.PERSISTENCE_KIND: "cron", semconv.PERSISTENCE_TECHNIQUE: "T1053.003"},
            )
        ],
    )

    credential_sessions(tracer)

    # Attempts that never landed: a key append refused by a policy, and one that failed (outcome denied / failed).
    append = {"command": "echo 'ssh-ed25519 AAAA attacker' >> ~/.ssh/authorized_keys"}
    refused = {semconv.TOOL_DECISION: "reject", semconv.TOOL_DECISION_SOURCE: "policy"}
    Session(tracer, "keys-refused", agent="ops-bot").call("bash", append, extra=refused, error=True)
    Session(tracer, "keys-failed", agent="ops-bot").call("bash", append, extra={semconv.PROCESS_EXIT_CODE: 1})
    # A token declared shared, used in two sessions and tasks: no reuse finding.
    shared = {
        semconv.CREDENTIAL_FINGERPRINT: "fp-shared-ci",
        semconv.CREDENTIAL_KIND: "github_token",
        semconv.CREDENTIAL_SHARED: "true",
    }
    for session in ("ci-1", "ci-2"):
        Session(tracer, session, agent="ci", task=session).call("git_fetch", {"remote": "origin"}, extra=shared)

    # A session id that is itself an injection attempt (ids come from agents, and from link URLs in Grafana).
    for hostile in HOSTILE_SESSIONS:
        Session(tracer, hostile, agent="ops-bot").call("read_file", {"file_path": "README.md"})

    chain = Session(tracer, "long-chain")
    for i in range(14):
        chain.call("read_file", {"file_path": f"src/m{i}.py"})


@pytest.fixture(scope="module")
def module_collector(tmp_path_factory, chdb_dsn):
    """One collector and one seeded database for every query in this module (seeding is the slow part)."""
    import uuid

    from foothold.collector.service import CollectorThread
    from tests.conftest import make_settings

    settings = make_settings(tmp_path_factory.mktemp("dash"), chdb_dsn, f"t_{uuid.uuid4().hex[:12]}")
    with CollectorThread(settings) as running:
        agent = sdk_agent(running, service="agents")
        seed(agent.tracer)
        agent.close()
        assert running.pipeline.flush(30)
        report = running.evaluate_alerts()
        assert report.failed_rules == {}
        yield running


@pytest.fixture(scope="module")
def client(module_collector):
    return module_collector.store.client()


@pytest.fixture(scope="module")
def variables(client) -> dict[str, str]:
    (trace_id,) = client.query("SELECT any(TraceId) FROM tool_calls WHERE SessionId = 'injected'").result_rows[0]
    return {"agent": SELECTED_ALL, "session": SELECTED_ALL, "trace_id": trace_id}


def window() -> TimeRange:
    now = datetime.now(UTC)
    return TimeRange(now - timedelta(hours=2), now + timedelta(minutes=1), interval_seconds=60)


def grafana_sql(sql: str, values: dict[str, str | list[str]], dashboard: str | None = None) -> str:
    """Interpolate ``dashboard``'s variables as Grafana's template service does, then the plugin's macros.

    All ($__all) becomes the variable's custom allValue, inserted as-is (Grafana does not format custom all
    values). Otherwise each format is Grafana's own (grafana/scenes formatRegistry.ts): ``percentencode`` is
    encodeURIComponent plus !'()* (RFC 3986 strict), several values as ``{a,b}`` encoded whole;
    ``sqlstring`` doubles ' and backslash-escapes "; ``singlequote`` backslash-escapes '.
    Without a dashboard (alert rules) any variable is an error.
    """

    def formatted(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2)
        value = values[name]
        if value == SELECTED_ALL:
            all_value = (variable(dashboard, name) or {}).get("allValue") if dashboard else None
            assert all_value, f"${name}: All is selected but the variable has no custom allValue"
            return all_value
        chosen = [value] if isinstance(value, str) else value
        if fmt == "percentencode":
            return quote(value if isinstance(value, str) else "{" + ",".join(value) + "}", safe="-_.~")
        if fmt == "sqlstring":
            return ",".join("'" + v.replace("'", "''").replace('"', '\\"') + "'" for v in chosen)
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in chosen)
        assert fmt is None, f"${{{name}:{fmt}}}: format not modelled here"
        return ",".join(chosen)

    return expand(re.sub(r"\$\{(\w+)(?::(\w+))?\}", formatted, sql), window())


# --- queries on real data ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "panel"), list(panels()))
def test_every_panel_query_runs_and_shows_the_demo_data(name, panel, client, variables):
    may_be_empty = panel["title"] in MAY_BE_EMPTY
    if PIPELINE_PANEL in panel["title"]:
        if not client.query("EXISTS TABLE collector_metrics").result_rows[0][0]:
            pytest.skip("collector_metrics does not exist yet: the collector's self-metrics land in another issue")
        # The collector writes self-metrics on its own schedule; this test does not wait for it (see the
        # stand-in test below for the non-empty check).
        may_be_empty = True
    values = variables | {"session": TIMELINE_SESSION} if name == TIMELINE else variables
    for target in panel["targets"]:
        result = client.query(grafana_sql(target["rawSql"], values, name))
        if not may_be_empty:
            assert result.result_rows, f"{name}: panel {panel['title']!r} is empty on the demo data"


def test_agent_variable_filters_panels(client, variables):
    panel = next(p for p in DASHBOARDS["overview"]["panels"] if p["title"] == "Top agents")
    sql = panel["targets"][0]["rawSql"]
    everyone = {r[0] for r in client.query(grafana_sql(sql, variables, "overview")).result_rows}
    assert {"devops-agent", "ops-bot", "deployer", "helper"} <= everyone
    only = client.query(grafana_sql(sql, variables | {"agent": "ops-bot"}, "overview")).result_rows
    assert [r[0] for r in only] == ["ops-bot"]
    two = client.query(grafana_sql(sql, variables | {"agent": ["ops-bot", "helper"]}, "overview")).result_rows
    assert {r[0] for r in two} == {"ops-bot", "helper"}


def test_per_session_dashboards_filter_every_panel_by_session():
    assert SESSION_DASHBOARDS == ["chained-tools", "credential-reuse", "durable-writes", "overview"]
    for name in SESSION_DASHBOARDS:
        session = variable(name, "session")
        assert session["current"]["value"] == SELECTED_ALL and session["allValue"] == build.ALL
        for param in panels([name]):
            for target in param.values[1]["targets"]:
                assert "${session:percentencode}" in target["rawSql"], param.id


@pytest.mark.parametrize("agent", [SELECTED_ALL, ["helper", "ops-bot"]])
def test_session_variable_lists_the_agents_sessions_recent_first(client, variables, agent):
    sql = variable("overview", "session")["query"]["rawSql"]
    assert sql == variable(TIMELINE, "session")["query"]["rawSql"]
    listed = [r[0] for r in client.query(grafana_sql(sql, variables | {"agent": agent}, "overview")).result_rows]
    where = "" if agent == SELECTED_ALL else f"WHERE AgentName IN {tuple(agent)}"
    expected = client.query(f"SELECT SessionId FROM tool_calls {where} GROUP BY SessionId ORDER BY max(Timestamp) DESC")
    assert len(listed) > 1 and listed == [r[0] for r in expected.result_rows]


@pytest.mark.parametrize(("name", "panel"), list(panels(SESSION_DASHBOARDS)))
def test_session_variable_narrows_every_panel(name, panel, client, variables):
    """One session selected: a panel listing sessions shows only that one, an aggregate shows less than All."""
    (target,) = panel["targets"]
    everyone = client.query(grafana_sql(target["rawSql"], variables, name))
    column = next((c for c in ("SessionId", "session_id") if c in everyone.column_names), None)
    session = everyone.result_rows[0][everyone.column_names.index(column)] if column else TIMELINE_SESSION
    one = client.query(grafana_sql(target["rawSql"], variables | {"session": session}, name))
    if column:
        assert one.result_rows and {r[one.column_names.index(column)] for r in one.result_rows} == {session}
    else:
        assert one.result_rows != everyone.result_rows


def test_session_timeline_shows_the_session_and_its_trace(client, variables):
    variables = variables | {"session": TIMELINE_SESSION}
    by_title = {p["title"]: p for p in DASHBOARDS["session-timeline"]["panels"]}
    calls = client.query(
        grafana_sql(by_title["Tool calls"]["targets"][0]["rawSql"], variables, TIMELINE)
    ).named_results()
    assert [c["ToolName"] for c in calls] == ["web_fetch", "bash", "bash", "bash", "bash", "edit_file"]
    trace = by_title["Trace"]["targets"][0]
    assert trace["queryType"] == "traces" and trace["format"] == build.TRACE
    spans = list(client.query(grafana_sql(trace["rawSql"], variables, TIMELINE)).named_results())
    assert spans and {s["traceID"] for s in spans} == {variables["trace_id"]}
    assert {
        "traceID",
        "spanID",
        "parentSpanID",
        "serviceName",
        "operationName",
        "startTime",
        "duration",
        "tags",
        "serviceTags",
    } <= set(spans[0])


def test_pipeline_panels_read_collector_metrics_samples(module_collector):
    """The pipeline panels' SQL on a stand-in table with the announced columns, in a throwaway database.

    Whether or not the real schema has collector_metrics yet, this checks the panels read counters as rates
    (two samples per series) and gauges as values.
    """
    client = module_collector.store.client()
    pipeline = [p for p in build.iter_panels(DASHBOARDS["collector-health"]) if PIPELINE_PANEL in p["title"]]
    assert len(pipeline) == 5
    names = sorted({n for p in pipeline for n in re.findall(r"'(foothold_\w+)'", p["targets"][0]["rawSql"])})
    declared = {metric.name for metric in METRICS}
    assert [n for n in names if re.sub(r"_(sum|count|bucket)$", "", n) not in declared] == []  # no stale name
    client.command("CREATE DATABASE IF NOT EXISTS cm_standin")
    try:
        client.command(
            "CREATE TABLE cm_standin.collector_metrics (Timestamp DateTime64(3), Name LowCardinality(String), "
            "Value Float64, Labels Map(LowCardinality(String), String)) ENGINE = MergeTree ORDER BY (Name, Timestamp)"
        )
        now = datetime.now(UTC)
        samples = [
            [now - timedelta(seconds=age), name, value, {"receiver": "grpc"} if "requests" in name else {}]
            for name in names
            for age, value in ((30, 10.0), (15, 25.0))
        ]
        client.insert("cm_standin.collector_metrics", samples)
        for panel in pipeline:
            sql = grafana_sql(panel["targets"][0]["rawSql"], {}, "collector-health")
            sql = sql.replace("FROM collector_metrics", "FROM cm_standin.collector_metrics")
            rows = client.query(sql).result_rows
            assert rows and any(v and v > 0 for row in rows for v in row[1:] if isinstance(v, float)), panel["title"]
    finally:
        client.command("DROP DATABASE IF EXISTS cm_standin")


def test_every_alert_rule_query_runs_and_fires_per_session(client):
    fired = {}
    for rule in ALERTS["groups"][0]["rules"]:
        (query,) = [d for d in rule["data"] if d["datasourceUid"] == build.DATASOURCE_UID]
        rows = client.query(grafana_sql(query["model"]["rawSql"], {})).result_rows  # no dashboard variables
        # (session, agent[, outcome, severity], findings): the labels first, the count last
        fired[rule["labels"]["rule_id"]] = {row[0] for row in rows if row[-1] > 0}
    assert fired == {
        "durable_write": {"injected", "cron-writer", "keys-refused", "keys-failed"},
        "credential_multi_session": {"weeks-later"},
        "credential_multi_task": set(),
        "credential_outside_task": {"weeks-later"},
        "credential_after_task_end": {"weeks-later"},
        "credential_expired": {"weeks-later"},
        "credential_foreign_agent": {"weeks-later"},
        "chained_tools_unchecked": {"long-chain"},
        "untrusted_input_to_durable_write": {"injected"},
        "credential_read_then_egress": {"injected"},
        "code_backdoor_signal": {"injected"},
    }


def test_alert_rules_count_the_evaluators_findings(module_collector, client):
    """Grafana's per-session counts agree with what the collector's own evaluator stored."""
    stored = set(client.query("SELECT RuleId, SessionId FROM alerts FINAL").result_rows)
    from_grafana = set()
    for rule in ALERTS["groups"][0]["rules"]:
        query = rule["data"][0]["model"]["rawSql"]
        from_grafana |= {(rule["labels"]["rule_id"], r[0]) for r in client.query(grafana_sql(query, {})).result_rows}
    assert from_grafana == stored


# --- file structure ------------------------------------------------------------------------------------


def test_generated_files_are_up_to_date():
    assert build.stale_files() == [], "run `foothold-audit grafana generate` (python -m foothold.dashboards.build)"


def test_dashboards_are_well_formed():
    assert set(DASHBOARDS) == {
        "overview",
        "durable-writes",
        "credential-reuse",
        "chained-tools",
        "session-timeline",
        "collector-health",
    }
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids) and all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids)
    for name, dashboard in DASHBOARDS.items():
        assert dashboard["title"] and dashboard["schemaVersion"] >= 36 and dashboard["time"]["to"] == "now"
        ids = [p["id"] for p in build.iter_panels(dashboard)]
        assert len(set(ids)) == len(ids), name
        for panel in build.iter_panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, (name, panel["title"])
            if panel["type"] == "text":
                continue
            assert panel["datasource"] == build.DATASOURCE, (name, panel["title"])
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids)
            for target in panel["targets"]:
                assert target["datasource"] == build.DATASOURCE and target["editorType"] == "sql"
                assert target["format"] in (build.TIME_SERIES, build.TABLE, build.TRACE)
                sql = target["rawSql"]
                assert "$__conditionalAll" not in sql and "foothold." not in sql.replace("foothold_", ""), (
                    name,
                    panel["title"],
                )
                if target["format"] == build.TIME_SERIES:
                    assert " AS time" in sql, (name, panel["title"])
        for variable in dashboard["templating"]["list"]:
            assert variable["type"] in ("query", "textbox", "custom")
            if variable["type"] == "query":
                assert variable["datasource"] == build.DATASOURCE
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        used = set(
            re.findall(
                r"\$\{?(\w+)",
                json.dumps([t["rawSql"] for p in build.iter_panels(dashboard) for t in p.get("targets", [])]),
            )
        )
        assert {u for u in used if not u.startswith("__")} <= variables, name


def test_findings_tables_link_to_the_session_timeline():
    timeline = DASHBOARDS["session-timeline"]
    assert timeline["uid"] == build.TIMELINE_UID
    assert {v["name"] for v in timeline["templating"]["list"]} >= {"session", "trace_id", "agent"}
    for name in ("overview", "durable-writes", "credential-reuse", "chained-tools"):
        links = [
            link["url"]
            for p in DASHBOARDS[name]["panels"]
            for o in p.get("fieldConfig", {}).get("overrides", [])
            for prop in o["properties"]
            if prop["id"] == "links"
            for link in prop["value"]
        ]
        assert links and all(u.startswith("/d/foothold-session-timeline?var-session=${__value.raw}") for u in links), (
            name
        )


def test_alert_rule_file_is_well_formed():
    assert ALERTS["apiVersion"] == 1
    (group,) = ALERTS["groups"]
    assert group["folder"] == "Foothold" and re.fullmatch(r"\d+[smh]", group["interval"])
    rules = group["rules"]
    assert [r["labels"]["rule_id"] for r in rules] == [r.id for r in load_alert_rules()]
    uids = [r["uid"] for r in rules]
    assert len(set(uids)) == len(uids) and all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", u) for u in uids)
    for rule, detection in zip(rules, load_alert_rules(), strict=True):
        ref_ids = [d["refId"] for d in rule["data"]]
        assert len(set(ref_ids)) == len(ref_ids) and rule["condition"] in ref_ids
        assert rule["noDataState"] in ("OK", "NoData", "Alerting", "KeepLast")
        assert rule["execErrState"] in ("OK", "Error", "Alerting", "KeepLast")
        assert rule["title"] == detection.title
        if detection.attempted_severity:  # the query labels each instance with the severity its outcome gives
            (query,) = [d for d in rule["data"] if d["datasourceUid"] == build.DATASOURCE_UID]
            assert "severity" not in rule["labels"] and "outcome, severity" in query["model"]["rawSql"]
        else:
            assert rule["labels"]["severity"] == detection.severity
        assert "{{ $labels.session_id }}" in rule["annotations"]["runbook_url"]
        # Absolute: a notification is read outside Grafana (the base is FOOTHOLD_GRAFANA_URL at generation).
        assert rule["annotations"]["runbook_url"].startswith(
            f"http://localhost:3000/d/{build.TIMELINE_UID}?var-session="
        )
        for data in rule["data"]:
            assert set(data) >= {"refId", "relativeTimeRange", "datasourceUid", "model"}
            assert data["model"]["refId"] == data["refId"]
            assert isinstance(data["relativeTimeRange"]["from"], int) and isinstance(
                data["relativeTimeRange"]["to"], int
            )
            if data["datasourceUid"] == build.EXPRESSION_UID:
                assert data["model"]["type"] in ("reduce", "threshold", "math", "classic_conditions")
                assert data["model"]["expression"] in ref_ids
            else:
                assert data["datasourceUid"] == build.DATASOURCE_UID
                assert data["model"]["datasource"] == build.DATASOURCE and data["relativeTimeRange"]["from"] > 0
                sql = data["model"]["rawSql"]
                assert detection.sql.strip() in sql  # the same SQL the evaluator runs
                assert "$__conditionalAll" not in sql and not re.search(r"\$\{?(?!__)\w", sql)  # no dashboard variables
        threshold = next(d["model"] for d in rule["data"] if d["model"].get("type") == "threshold")
        assert threshold["conditions"][0]["evaluator"] == {"type": "gt", "params": [0]}


def test_contact_point_template_is_well_formed():
    assert CONTACT_POINTS["apiVersion"] == 1
    (point,) = CONTACT_POINTS["contactPoints"]
    (receiver,) = point["receivers"]
    assert receiver["type"] == "webhook" and receiver["settings"]["url"] == "${FOOTHOLD_ALERT_WEBHOOK_URL}"
    (policy,) = CONTACT_POINTS["policies"]
    assert policy["receiver"] == point["name"] and "session_id" in policy["group_by"]


def test_generated_files_ship_as_package_data():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapping = setuptools["package-dir"]

    def folder(package: str) -> Path:
        base = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
        return root / mapping[base] / Path(*package[len(base) :].split(".")[1:])

    rules = [(folder(pkg), pattern) for pkg, patterns in setuptools["package-data"].items() for pattern in patterns]
    for path in build.rendered_files():
        assert any(path.is_relative_to(base) and path.relative_to(base).match(pattern) for base, pattern in rules), path


# --- variables cannot be turned against the store --------------------------------------------------------


def _timeline_panel(title: str) -> str:
    return next(p for p in DASHBOARDS[TIMELINE]["panels"] if p["title"] == title)["targets"][0]["rawSql"]


@pytest.mark.parametrize("hostile", HOSTILE_SESSIONS)
@pytest.mark.parametrize("title", ["Session", "Tool calls", "Artifacts", "Alerts for this session"])
def test_a_hostile_session_value_returns_only_its_own_rows(client, variables, hostile, title):
    """The timeline's variables as a link URL can set them: each returns only the session named, verbatim."""
    result = client.query(grafana_sql(_timeline_panel(title), variables | {"session": hostile}, TIMELINE))
    if title == "Tool calls":
        assert len(result.result_rows) == 1 and result.first_row[result.column_names.index("ToolName")] == "read_file"
    if "SessionId" in result.column_names:
        assert {r[result.column_names.index("SessionId")] for r in result.result_rows} <= {hostile}
    everyone = client.query("SELECT count() FROM tool_calls").result_rows[0][0]
    assert len(result.result_rows) < everyone


@pytest.mark.parametrize("hostile", HOSTILE_SESSIONS)
def test_hostile_values_in_multi_value_and_trace_variables_stay_values(client, variables, hostile):
    sql = next(p for p in DASHBOARDS["overview"]["panels"] if p["title"] == "Top agents")["targets"][0]["rawSql"]
    assert (
        client.query(grafana_sql(sql, variables | {"agent": [hostile, "ops-bot' OR '1'='1"]}, "overview")).result_rows
        == []
    )
    trace = client.query(grafana_sql(_timeline_panel("Trace"), variables | {"trace_id": hostile}, TIMELINE))
    assert trace.result_rows == []
    listed = variable(TIMELINE, "trace_id")["query"]["rawSql"]
    traces = client.query(grafana_sql(listed, variables | {"session": hostile}, TIMELINE)).result_rows
    assert len(traces) == 1


def test_grafanas_own_quoting_formats_would_not_have_held(client, variables):
    """Why percentencode: the same panel with Grafana's sqlstring format is broken out of by a backslash."""
    sql = _timeline_panel("Tool calls").replace(
        "decodeURLComponent('${session:percentencode}')", "${session:sqlstring}"
    )
    assert "${session:sqlstring}" in sql
    escaped = client.query(grafana_sql(sql, variables | {"session": "x' OR '1'='1"}, TIMELINE)).result_rows
    assert len(escaped) == 1  # quote doubling holds against a plain quote...
    broken = client.query(grafana_sql(sql, variables | {"session": "x\\' OR 1=1 --"}, TIMELINE)).result_rows
    assert len(broken) > 1  # ...but not against a backslash before it: every session's calls come back


def test_runbook_urls_take_the_configured_grafana_base(monkeypatch):
    monkeypatch.setenv(build.GRAFANA_URL_ENV, "https://grafana.example.org/")
    (rule, *_) = build.alert_rules_document()["groups"][0]["rules"]
    assert rule["annotations"]["runbook_url"].startswith(f"https://grafana.example.org/d/{build.TIMELINE_UID}?")


def test_no_time_or_size_unit_formats_a_count():
    """Units go on the columns they describe: a call count shown as '12 ms' misleads."""
    for name, dashboard in DASHBOARDS.items():
        for panel in build.iter_panels(dashboard):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            sql = " ".join(t["rawSql"] for t in panel.get("targets", []))
            if unit in ("ms", "s", "ns", "bytes") and panel["type"] == "table":
                pytest.fail(f"{name}: table {panel['title']!r} puts {unit} on every column, counts included")
            for override in panel.get("fieldConfig", {}).get("overrides", []):
                column = override["matcher"]["options"]
                if any(p["id"] == "unit" for p in override["properties"]):
                    assert column in sql and not column.startswith(("calls", "count")), (name, column)


def test_the_trace_panel_is_complete(client, variables):
    """Status, kind, scope, events and links reach the trace view, in the field names Grafana's trace frame reads."""
    spans = client.query(grafana_sql(_timeline_panel("Trace"), variables | {"session": TIMELINE_SESSION}, TIMELINE))
    columns = set(spans.column_names)
    assert {
        "statusCode",
        "statusMessage",
        "kind",
        "logs",
        "references",
        "instrumentationLibraryName",
        "traceState",
    } <= columns
    rows = list(spans.named_results())
    assert {r["kind"] for r in rows} <= {"internal", "server", "client", "producer", "consumer"}
    assert {r["statusCode"] for r in rows} <= {0, 1, 2}
