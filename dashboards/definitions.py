"""Foothold's Grafana dashboards, built with :mod:`foothold.dashboards.builder` on the shared SQL of
:mod:`foothold.dashboards.queries`."""

from __future__ import annotations

from collections.abc import Iterable

from foothold.collector.schema import sql
from foothold.dashboards.builder import (
    TIMELINE_UID,
    TRACE,
    Dashboard,
    Panel,
    Query,
    session_link,
    table,
    trace_link,
    ts,
)
from foothold.dashboards.queries import (
    AGENT,
    CHAIN_RUNS,
    DURABLE_WRITES,
    SESSION,
    SESSION_OR_ALL,
    TOOL_CALLS_IN_RANGE,
    TRACE_ID,
    findings,
    outcome_of,
    rules_by_id,
    scope,
    value_of,
)
from foothold.detections.rules import AlertRule

_STAT_OPTIONS = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"}


def _stat(title: str, sql: str, unit: str | None = None) -> Panel:
    """One number over the whole range, a quarter of the width: the row across the top of a dashboard."""
    return Panel(title, "stat", table(sql), unit=unit, width=6, height=4, options=_STAT_OPTIONS)


def _tool_calls_over_time(values: str, series: str = "", *, where: str = "") -> Query:
    """Tool calls in the range and scope per time bucket, one line per ``series`` (a column or ``expr AS name``)."""
    group = "time, " + series.rsplit(" AS ", 1)[-1] if series else "time"
    columns = f"{series}, {values}" if series else values
    condition = f" AND {where}" if where else ""
    return ts(f"""
SELECT $__timeInterval(Timestamp) AS time, {columns}
{TOOL_CALLS_IN_RANGE}{condition}
GROUP BY {group} ORDER BY time""")


def _rule_findings(title: str, rule: AlertRule) -> Panel:
    """A detection rule's findings, newest first, each linking to its session's timeline."""
    return Panel(
        title,
        "table",
        table(findings(rule) + "\nORDER BY seen_at DESC"),
        description=rule.description,
        links=(session_link("session_id"),),
    )


def overview() -> Dashboard:
    return Dashboard(
        uid="foothold-overview",
        title="Foothold / Overview",
        description="Tool-call volume, errors and latency by tool; the busiest agents and sessions; recent alerts.",
        variables=(AGENT, SESSION_OR_ALL),
        panels=(
            _stat("Tool calls", f"SELECT count() AS calls {TOOL_CALLS_IN_RANGE}"),
            _stat(
                "Error rate",
                f"SELECT countIf(Status = 'Error') / greatest(count(), 1) AS error_rate {TOOL_CALLS_IN_RANGE}",
                unit="percentunit",
            ),
            _stat("Sessions", f"SELECT uniqExact(SessionId) AS sessions {TOOL_CALLS_IN_RANGE}"),
            _stat(
                "Alerts raised",
                f"SELECT count() AS alerts FROM alerts FINAL WHERE $__timeFilter(RaisedAt) AND {scope()}",
            ),
            Panel(
                "Tool-call rate by tool",
                "timeseries",
                _tool_calls_over_time("count() / $__interval_s AS calls_per_second", "ToolName"),
                unit="reqps",
            ),
            Panel(
                "Error rate",
                "timeseries",
                _tool_calls_over_time("countIf(Status = 'Error') / count() AS error_rate"),
                unit="percentunit",
            ),
            Panel(
                "Latency percentiles by tool",
                "table",
                table(f"""
SELECT ToolName, count() AS calls,
       quantile(0.5)(DurationNs) / 1e6 AS p50_ms, quantile(0.95)(DurationNs) / 1e6 AS p95_ms,
       quantile(0.99)(DurationNs) / 1e6 AS p99_ms, max(DurationNs) / 1e6 AS max_ms
{TOOL_CALLS_IN_RANGE}
GROUP BY ToolName ORDER BY p95_ms DESC"""),
                description="DurationNs is the span duration in nanoseconds.",
                column_units=tuple((c, "ms") for c in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            ),
            Panel(
                "p95 latency by tool",
                "timeseries",
                _tool_calls_over_time("quantile(0.95)(DurationNs) / 1e6 AS p95_ms", "ToolName"),
                unit="ms",
            ),
            Panel(
                "Top agents",
                "table",
                table(f"""
SELECT AgentName, count() AS calls, uniqExact(SessionId) AS sessions, countIf(Status = 'Error') AS errors,
       countIf(PersistenceKind != '') AS declared_durable_writes, max(Timestamp) AS last_seen
{TOOL_CALLS_IN_RANGE}
GROUP BY AgentName ORDER BY calls DESC LIMIT 20"""),
            ),
            Panel(
                "Top sessions",
                "table",
                table(f"""
SELECT SessionId, any(AgentName) AS agent_name, count() AS calls, countIf(Status = 'Error') AS errors,
       min(Timestamp) AS started, max(Timestamp) AS last_call
{TOOL_CALLS_IN_RANGE}
GROUP BY SessionId ORDER BY calls DESC LIMIT 20"""),
                links=(session_link("SessionId"),),
            ),
            Panel(
                "Recent alerts",
                "table",
                table(f"""
SELECT RaisedAt, Severity, RuleId, Title, SessionId, AgentName, Technique, Evidence
FROM alerts FINAL
WHERE $__timeFilter(RaisedAt) AND {scope()}
ORDER BY RaisedAt DESC LIMIT 100"""),
                width=24,
                links=(session_link("SessionId"),),
            ),
        ),
    )


def durable_writes() -> Dashboard:
    rule = rules_by_id()["durable_write"]
    return Dashboard(
        uid="foothold-durable-writes",
        title="Foothold / Durable writes",
        description="Writes (observed or declared) to locations that survive the session: persistence candidates.",
        variables=(AGENT, SESSION_OR_ALL),
        panels=(
            Panel(
                "Durable writes by technique",
                "timeseries",
                ts(f"""
SELECT $__timeInterval(Timestamp) AS time, if(Technique = '', PersistenceKind, Technique) AS technique,
       count() AS writes
FROM {DURABLE_WRITES}
GROUP BY time, technique ORDER BY time"""),
            ),
            Panel(
                "Durable writes by agent",
                "timeseries",
                ts(f"""
SELECT $__timeInterval(Timestamp) AS time, AgentName, count() AS writes
FROM {DURABLE_WRITES}
GROUP BY time, AgentName ORDER BY time"""),
            ),
            Panel(
                "Durable writes by kind",
                "barchart",
                table(f"""
SELECT PersistenceKind, count() AS writes FROM {DURABLE_WRITES}
GROUP BY PersistenceKind ORDER BY writes DESC"""),
                options={"xField": "PersistenceKind", "orientation": "horizontal"},
            ),
            _rule_findings("Durable-write findings (rule durable_write)", rule),
            Panel(
                "Paths written",
                "table",
                table(f"""
SELECT Timestamp, SessionId, AgentName, PersistenceKind, Technique, Target, Source, Outcome, TraceId
FROM {DURABLE_WRITES}
ORDER BY Timestamp DESC LIMIT 500"""),
                width=24,
                height=10,
                links=(session_link("SessionId"),),
            ),
        ),
    )


def credential_reuse() -> Dashboard:
    rules = rules_by_id()
    panels = [
        Panel(
            "Credential fingerprints across tasks and sessions",
            "table",
            table(f"""
SELECT CredentialFingerprint, any(CredentialKind) AS kind, max(CredentialShared) AS shared,
       uniqExact(SessionId) AS sessions, uniqExact(TaskId) AS tasks, uniqExact(AgentName) AS agents, count() AS uses,
       arrayStringConcat(groupUniqArray(5)(TaskId), ', ') AS task_ids,
       min(Timestamp) AS first_use, max(Timestamp) AS last_use
{TOOL_CALLS_IN_RANGE} AND CredentialFingerprint != ''
GROUP BY CredentialFingerprint ORDER BY sessions DESC, uses DESC"""),
            width=24,
            description=(
                "Fingerprints are keyed HMACs: the same credential has the same fingerprint, its value is never stored."
            ),
        ),
        Panel(
            "Credential uses by session",
            "table",
            table(f"""
SELECT CredentialFingerprint, SessionId, TaskId, AgentName, any(CredentialTaskId) AS issued_for_task,
       any(CredentialIssuedTo) AS issued_to, count() AS uses, min(Timestamp) AS first_use, max(Timestamp) AS last_use
{TOOL_CALLS_IN_RANGE} AND CredentialFingerprint != ''
GROUP BY CredentialFingerprint, SessionId, TaskId, AgentName ORDER BY last_use DESC LIMIT 500"""),
            width=24,
            links=(session_link("SessionId"),),
        ),
        Panel(
            "Credential uses over time by kind",
            "timeseries",
            _tool_calls_over_time("count() AS uses", "CredentialKind", where="CredentialFingerprint != ''"),
        ),
    ]
    for rule_id, title in (
        ("credential_multi_session", "Reused across sessions"),
        ("credential_expired", "Used after expiry"),
        ("credential_outside_task", "Used outside its task"),
        ("credential_foreign_agent", "Used by a foreign agent"),
    ):
        panels.append(_rule_findings(f"{title} (rule {rule_id})", rules[rule_id]))
    return Dashboard(
        uid="foothold-credential-reuse",
        title="Foothold / Credential reuse",
        description="Which credentials (by fingerprint) were used where, and the credential detections' findings.",
        variables=(AGENT, SESSION_OR_ALL),
        panels=tuple(panels),
    )


def chained_tools() -> Dashboard:
    rules = rules_by_id()
    flow = ("chained_tools_unchecked", "untrusted_input_to_durable_write", "credential_read_then_egress")
    risky = "\nUNION ALL\n".join(
        findings(
            rules[r], f"'{r}' AS rule, seen_at, session_id, agent_name, technique, evidence, {outcome_of(rules[r])}"
        )
        for r in flow
    )
    max_calls = rules["chained_tools_unchecked"].params["max_unchecked_calls"]
    return Dashboard(
        uid="foothold-chained-tools",
        title="Foothold / Chained tools",
        description="Runs of tool calls with no human checkpoint between them, and the flow rules' findings.",
        variables=(AGENT, SESSION_OR_ALL),
        panels=(
            Panel(
                "Longest unchecked runs",
                "table",
                table(f"SELECT * FROM ({CHAIN_RUNS}\n)\nORDER BY length DESC LIMIT 100"),
                description=(
                    f"A run ends at a call carrying a human checkpoint; the rule fires above {max_calls} calls."
                ),
                links=(session_link("SessionId"),),
            ),
            Panel(
                "Run length distribution",
                "barchart",
                table(f"""
SELECT toString(length) AS run_length, count() AS runs FROM ({CHAIN_RUNS}
)
GROUP BY length ORDER BY length"""),
                options={"xField": "run_length"},
            ),
            Panel(
                "Calls by tool category",
                "timeseries",
                _tool_calls_over_time("count() AS calls", "arrayJoin(ToolCategories) AS category"),
            ),
            Panel(
                "Human checkpoints",
                "timeseries",
                _tool_calls_over_time("countIf(HumanCheckpoint) AS checkpoints, count() AS calls"),
            ),
            Panel(
                "Risky chains (flow rule findings)",
                "table",
                table(f"SELECT * FROM (\n{risky}\n)\nORDER BY seen_at DESC"),
                width=24,
                height=10,
                links=(session_link("session_id"),),
            ),
        ),
    )


def session_timeline() -> Dashboard:
    session = f"SessionId = {value_of('session')}"
    return Dashboard(
        uid=TIMELINE_UID,
        title="Foothold / Session timeline",
        description="One session's tool calls, artifacts and alerts in order, and the trace view of one of its traces.",
        variables=(AGENT, SESSION, TRACE_ID),
        time_from="now-7d",
        panels=(
            Panel(
                "Session",
                "table",
                table(f"""
SELECT SessionId, any(AgentName) AS agent_name, arrayStringConcat(groupUniqArray(TaskId), ', ') AS tasks,
       count() AS calls, countIf(Status = 'Error') AS errors, countIf(PersistenceKind != '') AS declared_durable_writes,
       countIf(HumanCheckpoint) AS checkpoints, min(Timestamp) AS started, max(Timestamp) AS last_call
FROM tool_calls WHERE {session}
GROUP BY SessionId"""),
                width=24,
                height=4,
                description="The session is looked up by id whatever the time range: tool_calls is sorted by session.",
            ),
            Panel(
                "Tool calls",
                "table",
                table(f"""
SELECT Timestamp, ToolName, Status, Outcome, Decision, DecisionSource, DurationNs / 1e6 AS duration_ms, TaskId,
       AgentName, arrayStringConcat(ToolCategories, ',') AS categories, HumanCheckpoint, PersistenceKind, Technique,
       PersistenceTarget, CredentialFingerprint, Arguments, TraceId, SpanId
FROM tool_calls WHERE {session}
ORDER BY Timestamp, SpanId"""),
                width=24,
                height=12,
                links=(trace_link("TraceId"),),
            ),
            Panel(
                "Artifacts",
                "table",
                table(f"""
SELECT Timestamp, Kind, Action, Path, Durable, Source, PersistenceKind, Technique, Sha256, Size, TraceId
FROM artifacts WHERE {session}
ORDER BY Timestamp, SpanId"""),
                links=(trace_link("TraceId"),),
            ),
            Panel(
                "Alerts for this session",
                "table",
                table(f"""
SELECT RaisedAt, Severity, RuleId, Title, Technique, Evidence, TraceId
FROM alerts FINAL WHERE {session}
ORDER BY RaisedAt"""),
                links=(trace_link("TraceId"),),
            ),
            Panel(
                "Trace",
                "traces",
                Query(
                    f"""
WITH {value_of("trace_id")} AS trace_id,
     (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
     (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,
       SpanName AS operationName, multiply(toUnixTimestamp64Nano(Timestamp), 0.000001) AS startTime,
       multiply(Duration, 0.000001) AS duration,
       arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
       arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
       multiIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2,
               StatusCode IN ('Ok', 'STATUS_CODE_OK'), 1, 0) AS statusCode,
       StatusMessage AS statusMessage, lower({sql.KIND}) AS kind,
       ScopeName AS instrumentationLibraryName, ScopeVersion AS instrumentationLibraryVersion, TraceState AS traceState,
       arrayMap((name, at, attributes) -> tuple(toUnixTimestamp64Milli(at),
                    arrayConcat([map('key', 'event', 'value', name)],
                                 arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes))))
                    ::Tuple(timestamp Int64, fields Array(Map(String, String))),
                Events.Name, Events.Timestamp, Events.Attributes) AS logs,
       arrayMap((trace, span, attributes) -> tuple(trace, span,
                    arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))
                    ::Tuple(traceID String, spanID String, tags Array(Map(String, String))),
                Links.TraceId, Links.SpanId, Links.Attributes) AS references
FROM otel_traces
WHERE TraceId = trace_id AND Timestamp >= trace_start AND Timestamp <= trace_end
ORDER BY startTime""",
                    TRACE,
                ),
                width=24,
                height=14,
                description="The plugin's trace view (standard OTel columns, durations in ns converted to ms): "
                "status, kind, scope, span events (as logs) and links (as references); the trace's time window "
                "comes from otel_traces_trace_id_ts first.",
            ),
        ),
    )


def collector_health() -> Dashboard:
    pipeline_note = (
        "Collector self-telemetry from collector_metrics (Timestamp, Name, Value, Labels), written every "
        "metrics.interval_seconds; counters are cumulative, so rates are computed from successive samples."
    )

    def series(names: Iterable[str]) -> str:
        """Per-sample increase of cumulative counters (a restart's reset counts as 0), per name and label set."""
        quoted = ", ".join(f"'{n}'" for n in names)
        return f"""(
    SELECT Timestamp, Name, Labels, Value,
           greatest(Value - lagInFrame(Value, 1, Value) OVER (PARTITION BY Name, toString(Labels) ORDER BY Timestamp
               ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), 0) AS delta
    FROM collector_metrics
    WHERE $__timeFilter(Timestamp) AND Name IN ({quoted})
)"""

    def rate(title: str, names: Iterable[str], unit: str = "reqps") -> Panel:
        return Panel(
            f"Pipeline: {title} (collector_metrics)",
            "timeseries",
            ts(f"""
SELECT $__timeInterval(Timestamp) AS time,
       concat(Name, if(empty(Labels), '', concat(' ', toString(Labels)))) AS series,
       sum(delta) / $__interval_s AS per_second
FROM {series(names)}
GROUP BY time, series ORDER BY time"""),
            description=pipeline_note,
            unit=unit,
            width=8,
        )

    def gauge(title: str, names: Iterable[str], unit: str | None = None) -> Panel:
        quoted = ", ".join(f"'{n}'" for n in names)
        return Panel(
            f"Pipeline: {title} (collector_metrics)",
            "timeseries",
            ts(f"""
SELECT $__timeInterval(Timestamp) AS time, Name, max(Value) AS value
FROM collector_metrics
WHERE $__timeFilter(Timestamp) AND Name IN ({quoted})
GROUP BY time, Name ORDER BY time"""),
            description=pipeline_note,
            unit=unit,
            width=8,
        )

    latency = Panel(
        "Pipeline: batch export latency (collector_metrics)",
        "timeseries",
        ts(f"""
SELECT $__timeInterval(Timestamp) AS time,
       sumIf(delta, Name = 'foothold_export_duration_seconds_sum')
           / nullIf(sumIf(delta, Name = 'foothold_export_duration_seconds_count'), 0) AS mean_export_seconds
FROM {series(["foothold_export_duration_seconds_sum", "foothold_export_duration_seconds_count"])}
GROUP BY time ORDER BY time"""),
        description=pipeline_note,
        unit="s",
        width=8,
    )

    pipeline = (
        rate("ingest rate", ["foothold_spans_accepted_total", "foothold_spans_exported_total"]),
        latency,
        gauge("queue", ["foothold_queue_spans", "foothold_spool_bytes"]),
        rate(
            "drops",
            [
                "foothold_spans_lost_total",
                "foothold_spans_rejected_total",
                "foothold_spans_refused_total",
                "foothold_export_failures_total",
            ],
        ),
        rate(
            "requests by outcome, refusals, auth failures",
            ["foothold_requests_total", "foothold_requests_refused_total", "foothold_auth_failures_total"],
        ),
    )
    return Dashboard(
        uid="foothold-collector-health",
        title="Foothold / Collector health",
        description=(
            "What the collector stored (from the tables), plus pipeline self-metrics once collector_metrics exists."
        ),
        panels=(
            Panel(
                "Spans ingested per second by service",
                "timeseries",
                ts("""
SELECT $__timeInterval(Timestamp) AS time, ServiceName, count() / $__interval_s AS spans_per_second
FROM otel_traces WHERE $__timeFilter(Timestamp)
GROUP BY time, ServiceName ORDER BY time"""),
                unit="reqps",
            ),
            Panel(
                "Tool calls and artifacts stored",
                "timeseries",
                ts("""
SELECT time, sum(tool_calls) AS tool_calls, sum(artifacts) AS artifacts FROM (
    SELECT $__timeInterval(Timestamp) AS time, count() AS tool_calls, 0 AS artifacts
    FROM tool_calls WHERE $__timeFilter(Timestamp) GROUP BY time
    UNION ALL
    SELECT $__timeInterval(Timestamp) AS time, 0 AS tool_calls, count() AS artifacts
    FROM artifacts WHERE $__timeFilter(Timestamp) GROUP BY time
)
GROUP BY time ORDER BY time"""),
            ),
            Panel(
                "Alerts raised by rule",
                "timeseries",
                ts("""
SELECT $__timeInterval(RaisedAt) AS time, RuleId, count() AS alerts
FROM alerts FINAL WHERE $__timeFilter(RaisedAt)
GROUP BY time, RuleId ORDER BY time"""),
            ),
            Panel(
                "Alert deliveries by sink",
                "table",
                table("""
SELECT Sink, count() AS delivered, max(DeliveredAt) AS last_delivery
FROM alert_deliveries FINAL WHERE $__timeFilter(DeliveredAt)
GROUP BY Sink ORDER BY Sink"""),
            ),
            Panel(
                "Newest span by service",
                "table",
                table("""
SELECT ServiceName, count() AS spans, max(Timestamp) AS newest_span,
       dateDiff('second', max(Timestamp), now64(9)) AS seconds_since_newest
FROM otel_traces WHERE $__timeFilter(Timestamp)
GROUP BY ServiceName ORDER BY spans DESC"""),
                width=24,
                height=6,
            ),
            *pipeline,
        ),
    )


def dashboards() -> list[Dashboard]:
    return [overview(), durable_writes(), credential_reuse(), chained_tools(), session_timeline(), collector_health()]
