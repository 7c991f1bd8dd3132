"""Session timelines for incident response: what a session did, in order, what it left, what fired.

Every query filters on ``SessionId``, the first key of the audit tables' sort order, so a timeline
reads one contiguous range however large the store grows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from foothold.collector.access import Reader

_CALLS = """
SELECT Timestamp, AgentName, TaskId, ToolName, ToolCallId, Status, ErrorType, DurationNs, Arguments,
       PersistenceKind, Technique, Evidence, HumanCheckpoint, CredentialKind, CredentialFingerprint, TraceId, SpanId
FROM tool_calls FINAL WHERE SessionId = {session:String} ORDER BY Timestamp, SpanId
"""
_ARTIFACTS = """
SELECT Timestamp, Kind, Action, Path, Sha256, Durable, Source, PersistenceKind, Technique, ToolSpanId, SpanId, TraceId
FROM artifacts FINAL WHERE SessionId = {session:String} ORDER BY Timestamp, SpanId
"""
# Artifacts made under a span that is not itself a call of record (an MCP server's tools/call span, whose
# client span is the call) belong to that span's parent.
_PARENTS = """
SELECT SpanId, ParentSpanId FROM otel_traces
WHERE TraceId IN {traces:Array(String)} AND SpanId IN {spans:Array(String)}
"""
_ALERTS = """
SELECT RuleId, Severity, Title, SpanId, SeenAt, Technique, Evidence
FROM alerts FINAL WHERE SessionId = {session:String} ORDER BY SeenAt, RuleId
"""
_SESSIONS = """
SELECT t.SessionId AS Session, any(t.AgentName) AS Agent, min(t.Timestamp) AS Started, max(t.Timestamp) AS Last,
       count() AS Calls, countIf(t.Status = 'Error') AS Errors, countIf(t.PersistenceKind != '') AS DurableIntents,
       any(a.Raised) AS Alerts
FROM tool_calls AS t FINAL
GLOBAL LEFT JOIN (SELECT SessionId, count() AS Raised FROM alerts FINAL GROUP BY SessionId) AS a
    ON a.SessionId = t.SessionId
WHERE {filters}
GROUP BY t.SessionId {having} ORDER BY Last DESC LIMIT {{limit:UInt32}}
"""

# Each filter picks sessions on its own (a session matches "agent X" and "tool Y" if any call is by X and
# any call uses Y); the subqueries read SessionId, the tables' first sort key.
_SESSION_FILTERS = {
    "agent": "t.SessionId GLOBAL IN (SELECT SessionId FROM tool_calls WHERE AgentName = {agent:String})",
    "tool": "t.SessionId GLOBAL IN (SELECT SessionId FROM tool_calls WHERE ToolName = {tool:String})",
    "fingerprint": "t.SessionId GLOBAL IN "
    "(SELECT SessionId FROM tool_calls WHERE CredentialFingerprint = {fingerprint:String})",
    "path": "(t.SessionId GLOBAL IN (SELECT SessionId FROM artifacts WHERE position(Path, {path:String}) > 0) "
    "OR t.SessionId GLOBAL IN (SELECT SessionId FROM tool_calls WHERE position(PersistenceTarget, {path:String}) > 0 "
    "OR position(Arguments, {path:String}) > 0))",
    "since": "t.SessionId GLOBAL IN (SELECT SessionId FROM tool_calls WHERE Timestamp >= {since:DateTime64(3)})",
    "until": "t.SessionId GLOBAL IN (SELECT SessionId FROM tool_calls WHERE Timestamp <= {until:DateTime64(3)})",
}


@dataclass(frozen=True)
class SessionFilter:
    agent: str = ""
    tool: str = ""
    fingerprint: str = ""
    path: str = ""
    since: Any = None
    until: Any = None
    has_alerts: bool = False

    def sql(self) -> tuple[str, dict[str, Any]]:
        values = {k: v for k, v in asdict(self).items() if k in _SESSION_FILTERS and v not in ("", None)}
        where = " AND ".join(_SESSION_FILTERS[k] for k in values) or "1"
        having = "HAVING any(a.Raised) > 0" if self.has_alerts else ""
        return _SESSIONS.format(filters=where, having=having), values


@dataclass
class ArtifactEntry:
    timestamp: Any
    kind: str
    action: str
    path: str
    sha256: str
    durable: bool
    source: str
    persistence_kind: str
    technique: str
    span_id: str


@dataclass
class AlertEntry:
    rule_id: str
    severity: str
    title: str
    span_id: str
    seen_at: Any
    technique: str
    evidence: str


@dataclass
class CallEntry:
    timestamp: Any
    agent: str
    task: str
    tool: str
    call_id: str
    status: str
    error_type: str
    duration_ms: float
    arguments: str
    persistence_kind: str
    technique: str
    evidence: str
    human_checkpoint: bool
    credential_kind: str
    credential_fingerprint: str
    trace_id: str
    span_id: str
    artifacts: list[ArtifactEntry] = field(default_factory=list)
    alerts: list[AlertEntry] = field(default_factory=list)


@dataclass
class Timeline:
    session_id: str
    calls: list[CallEntry]
    unattached_alerts: list[AlertEntry]  # session-wide findings (chains, credential reuse)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def session_timeline(reader: Reader, session_id: str) -> Timeline:
    params = {"session": session_id}
    calls = []
    for row in reader.query(_CALLS, params).rows:
        (
            ts,
            agent,
            task,
            tool,
            call_id,
            status,
            error_type,
            duration_ns,
            arguments,
            kind,
            technique,
            evidence,
            checkpoint,
            cred_kind,
            fingerprint,
            trace_id,
            span_id,
        ) = row
        calls.append(
            CallEntry(
                ts,
                agent,
                task,
                tool,
                call_id,
                status,
                error_type,
                duration_ns / 1e6,
                arguments,
                kind,
                technique,
                evidence,
                bool(checkpoint),
                cred_kind,
                fingerprint,
                trace_id,
                span_id,
            )
        )
    by_span = {call.span_id: call for call in calls}
    artifact_owner: dict[str, CallEntry] = {}
    artifact_rows = reader.query(_ARTIFACTS, params).rows
    parents = _parents_of_non_calls(reader, artifact_rows, by_span)
    for row in artifact_rows:
        ts, kind, action, path, sha, durable, source, pkind, technique, tool_span, span_id, _ = row
        entry = ArtifactEntry(ts, kind, action, path, sha, bool(durable), source, pkind, technique, span_id)
        owner = by_span.get(tool_span) or by_span.get(parents.get(tool_span, ""))
        if owner is not None:
            owner.artifacts.append(entry)
            artifact_owner[span_id] = owner
    unattached = []
    for row in reader.query(_ALERTS, params).rows:
        alert = AlertEntry(*row)
        owner = by_span.get(alert.span_id) or artifact_owner.get(alert.span_id)
        (owner.alerts if owner else unattached).append(alert)
    return Timeline(session_id, calls, unattached)


def _parents_of_non_calls(reader: Reader, artifact_rows: list, calls: dict[str, CallEntry]) -> dict[str, str]:
    missing = {(row[11], row[9]) for row in artifact_rows if row[9] not in calls}
    if not missing:
        return {}
    traces, spans = sorted({t for t, _ in missing}), sorted({s for _, s in missing})
    return dict(reader.query(_PARENTS, {"traces": traces, "spans": spans}).rows)


def find_sessions(
    reader: Reader, where: SessionFilter | None = None, limit: int = 20
) -> tuple[list[str], list[list[Any]]]:
    sql, params = (where or SessionFilter()).sql()
    result = reader.query(sql, params | {"limit": limit})
    return result.columns, result.rows
