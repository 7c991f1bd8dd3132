"""SQL the dashboards share: Grafana variables turned into safe ClickHouse filters, the agent / session /
trace variables, a detection rule's findings, and the durable-write and chain-run subqueries."""

from __future__ import annotations

from dataclasses import replace

from foothold.dashboards.builder import Variable
from foothold.detections.rules import AlertRule, load_alert_rules

# `agent` and `session` have the custom All value __all, which Grafana inserts as-is (custom all values are
# not formatted); otherwise ${agent:percentencode} renders the selection as %7Ba%2Cb%7D ({a,b}). Grafana
# interpolates the SQL before the plugin gets it.
ALL = "__all"


def value_of(variable: str) -> str:
    """A single-valued variable as a safe SQL string.

    Grafana's quoting formats cannot protect a ClickHouse string literal: ``:sqlstring`` doubles ' but leaves
    a backslash alone, and ClickHouse reads ``\\'`` as an escaped quote, so ``x\\' OR 1=1 --`` still closes
    the literal. ``:percentencode`` (RFC 3986 strict: only A-Z a-z 0-9 - _ . ~ and %XX remain) cannot
    contain a quote or a backslash, and decodeURLComponent gives the value back exactly.
    """
    return f"decodeURLComponent('${{{variable}:percentencode}}')"


def values_of(variable: str) -> str:
    """A multi-valued variable as an array of strings (percentencode renders several values as {a,b})."""
    return f"splitByChar(',', trim(BOTH '{{}}' FROM {value_of(variable)}))"


def any_of(variable: str, column: str) -> str:
    """``column`` is one of the variable's values, or anything when All is selected."""
    return f"(has({values_of(variable)}, '{ALL}') OR has({values_of(variable)}, {column}))"


def scope(agent: str = "AgentName", session: str = "SessionId") -> str:
    """The agent and session variables' filter, for dashboards that have both."""
    return f"{any_of('agent', agent)} AND {any_of('session', session)}"


AGENT = Variable(
    "agent",
    "Agent",
    multi=True,
    include_all=True,
    all_value=ALL,
    sql=(
        "SELECT DISTINCT AgentName FROM tool_calls WHERE $__timeFilter(Timestamp) AND AgentName != '' "
        "ORDER BY AgentName"
    ),
)
# The selected agents' sessions in the time range, most recent first (re-queried when `agent` changes).
SESSION = Variable(
    "session",
    "Session",
    sql=f"""
SELECT SessionId FROM tool_calls
WHERE $__timeFilter(Timestamp) AND {any_of("agent", "AgentName")}
GROUP BY SessionId ORDER BY max(Timestamp) DESC LIMIT 500""",
)
SESSION_OR_ALL = replace(SESSION, include_all=True, all_value=ALL)
TRACE_ID = Variable(
    "trace_id",
    "Trace",
    sql=(
        f"SELECT TraceId FROM tool_calls WHERE SessionId = {value_of('session')} "
        "GROUP BY TraceId ORDER BY min(Timestamp)"
    ),
)


def findings(rule: AlertRule, columns: str | None = None) -> str:
    """A detection rule's own SQL; every rule returns its ``columns`` (the evaluator enforces it). By default
    the finding's time, session, agent, technique, evidence, and its outcome and severity where it has them."""
    if columns is None:
        columns = "seen_at, session_id, agent_name, technique, evidence"
        columns += ", outcome, severity" if rule.attempted_severity else ""
    return f"SELECT {columns} FROM (\n{rule.sql.strip()}\n) AS finding\nWHERE {scope('agent_name', 'session_id')}"


def outcome_of(rule: AlertRule) -> str:
    """The finding's outcome column, or an empty one for rules that have none (for a UNION of rules)."""
    return "outcome" if rule.attempted_severity else "'' AS outcome"


def rules_by_id() -> dict[str, AlertRule]:
    return {rule.id: rule for rule in load_alert_rules()}


DURABLE_WRITES = f"""(
SELECT Timestamp, SessionId, AgentName, PersistenceKind, Technique, Target, Source, Result AS Outcome, TraceId FROM (
    SELECT Timestamp, SessionId, AgentName, PersistenceKind, Technique,
           if(PersistenceTarget != '', PersistenceTarget, Path) AS Target,
           concat('observed (', Source, ' ', Action, ')') AS Source, 'written' AS Result, TraceId
    FROM artifacts
    WHERE $__timeFilter(Timestamp) AND PersistenceKind != '' AND Action != 'read' AND {scope()}
    UNION ALL
    SELECT Timestamp, SessionId, AgentName, PersistenceKind, Technique, PersistenceTarget AS Target,
           concat('declared by ', ToolName) AS Source,
           if(Outcome IN ('denied', 'failed'),
              concat(Outcome, if(DecisionSource = '', '', concat(' by ', DecisionSource))), 'ran') AS Result, TraceId
    FROM tool_calls
    WHERE $__timeFilter(Timestamp) AND PersistenceKind != '' AND {scope()}
)
)"""

CHAIN_RUNS = f"""
SELECT SessionId, any(AgentName) AS agent_name, Run, count() AS length,
       min(Timestamp) AS started, max(Timestamp) AS ended
FROM (
    SELECT SessionId, AgentName, Timestamp,
           sum(toUInt32(HumanCheckpoint)) OVER (PARTITION BY SessionId ORDER BY Timestamp, SpanId
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS Run
    FROM tool_calls
    WHERE SessionId GLOBAL IN (SELECT SessionId FROM tool_calls WHERE $__timeFilter(Timestamp)) AND {scope()}
)
GROUP BY SessionId, Run"""

TOOL_CALLS_IN_RANGE = f"FROM tool_calls WHERE $__timeFilter(Timestamp) AND {scope()}"
