"""Session timelines for incident response: what a session did, in order, what it left, what fired.

Every query filters on ``SessionId``, the first key of the audit tables' sort order, so a timeline
reads one contiguous range however large the store grows.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from foothold.collector.schema import sql as expr
from foothold.investigation.access import Reader

# A result is evidence (the injected page itself), kept whole up to this many characters per call; the
# collector already capped it at limits.max_attribute_value_bytes.
RESULT_CHARS = 16384

_CALLS = """
SELECT Timestamp, AgentName, TaskId, ToolName, ToolCallId, Status, ErrorType, DurationNs, Arguments,
       PersistenceKind, Technique, Evidence, HumanCheckpoint, CredentialKind, CredentialFingerprint, TraceId, SpanId
FROM tool_calls FINAL WHERE SessionId = {session:String} ORDER BY Timestamp, SpanId
"""
_ARTIFACTS = """
SELECT Timestamp, Kind, Action, Path, Sha256, Durable, Source, PersistenceKind, Technique, ToolSpanId, SpanId, TraceId
FROM artifacts FINAL WHERE SessionId = {session:String} ORDER BY Timestamp, SpanId
"""
# Results live on the span only (tool_calls keeps arguments): read them by trace and span id, a bloom-indexed
# lookup on otel_traces.
_RESULTS = f"""
SELECT SpanId, leftUTF8({expr.TOOL_RESULT}, {RESULT_CHARS}) AS Result, lengthUTF8({expr.TOOL_RESULT}) AS Chars
FROM otel_traces
WHERE TraceId IN {{traces:Array(String)}} AND SpanId IN {{spans:Array(String)}} AND Chars > 0
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
       count() AS Calls, countIf(t.Status = 'Error') AS Errors, any(w.Writes) AS DurableWrites, any(a.Raised) AS Alerts
FROM tool_calls AS t FINAL
GLOBAL LEFT JOIN (SELECT SessionId, count() AS Raised FROM alerts FINAL GROUP BY SessionId) AS a
    ON a.SessionId = t.SessionId
GLOBAL LEFT JOIN (
    SELECT SessionId, uniqExact(PersistenceKind, Target) AS Writes FROM (
        SELECT SessionId, PersistenceKind, {durable_target_observed} AS Target
        FROM artifacts FINAL WHERE PersistenceKind != '' AND Action != 'read'
        UNION ALL
        SELECT SessionId, PersistenceKind, {durable_target_declared} AS Target
        FROM tool_calls FINAL WHERE PersistenceKind != ''
    ) GROUP BY SessionId
) AS w ON w.SessionId = t.SessionId
WHERE {filters}
GROUP BY t.SessionId {having} ORDER BY Last DESC LIMIT {{limit:UInt32}}
"""

# Durable writes counted as the durable_write rule groups its findings (alerts.yaml): one per persistence kind
# and target, observed or declared, home directories folded to ~; allow-listed writes still count here.
_HOME_FOLD = "replaceRegexpOne({}, '^(/home/[^/]+|/root)/', '~/')"
_DURABLE_TARGETS = {
    "durable_target_observed": _HOME_FOLD.format("if(PersistenceTarget != '', PersistenceTarget, Path)"),
    "durable_target_declared": _HOME_FOLD.format("PersistenceTarget"),
}
_KNOWN_SESSIONS = (
    "SELECT SessionId FROM tool_calls GROUP BY SessionId ORDER BY max(Timestamp) DESC LIMIT {limit:UInt32}"
)
_SESSION_EXISTS = (
    "SELECT (SELECT count() FROM tool_calls WHERE SessionId = {session:String}) "
    "+ (SELECT count() FROM alerts WHERE SessionId = {session:String})"
)

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
        return _SESSIONS.format(filters=where, having=having, **_DURABLE_TARGETS), values


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
    result: str = ""  # redacted at ingest; the first RESULT_CHARS characters
    result_chars: int = 0  # its full length, so a reader knows what was cut


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
    _attach_results(reader, calls, by_span)
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
    unattached: list[AlertEntry] = []
    for row in reader.query(_ALERTS, params).rows:
        alert = AlertEntry(*row)
        owner = by_span.get(alert.span_id) or artifact_owner.get(alert.span_id)
        (owner.alerts if owner else unattached).append(alert)
    return Timeline(session_id, calls, unattached)


def _attach_results(reader: Reader, calls: list[CallEntry], by_span: dict[str, CallEntry]) -> None:
    if not calls:
        return
    traces, spans = sorted({c.trace_id for c in calls}), sorted(by_span)
    for span_id, result, chars in reader.query(_RESULTS, {"traces": traces, "spans": spans}).rows:
        if span_id in by_span:
            by_span[span_id].result, by_span[span_id].result_chars = result, chars


def session_exists(reader: Reader, session_id: str) -> bool:
    """Any call or alert stored for this session id."""
    return bool(reader.query(_SESSION_EXISTS, {"session": session_id}).rows[0][0])


def similar_sessions(reader: Reader, session_id: str, limit: int = 10000) -> tuple[list[str], int]:
    """The stored session ids closest to a mistyped one (among the most recent ``limit``), and how many there are."""
    known = [row[0] for row in reader.query(_KNOWN_SESSIONS, {"limit": limit}).rows]
    return difflib.get_close_matches(session_id, known, n=5, cutoff=0.6), len(known)


def _parents_of_non_calls(
    reader: Reader, artifact_rows: list[list[Any]], calls: dict[str, CallEntry]
) -> dict[str, str]:
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
