"""SQL expressions over the OpenTelemetry traces table that every reader shares.

The materialized views, the cluster sharding key, dashboards and timelines all derive a span's session,
status and kind the same way, so they are written here once.
"""

from __future__ import annotations

from foothold import semconv

SPAN_ATTRIBUTES = "SpanAttributes"
LOG_ATTRIBUTES = "LogAttributes"


def attr(key: str, column: str = SPAN_ATTRIBUTES) -> str:
    """An attribute lookup (a span's, or a log record's with ``column=LOG_ATTRIBUTES``); missing keys read as ''."""
    return f"{column}['{key}']"


def first_non_empty(*expressions: str) -> str:
    """multiIf keeps the result non-Nullable, unlike coalesce(nullIf(...))."""
    *candidates, fallback = expressions
    branches = ", ".join(f"{e} != '', {e}" for e in candidates)
    return f"multiIf({branches}, {fallback})"


def session_id(column: str = SPAN_ATTRIBUTES) -> str:
    """A session is the conversation id when the agent sets one, else the MCP session, else the trace."""
    return first_non_empty(
        attr(semconv.GEN_AI_CONVERSATION_ID, column),
        attr(semconv.MCP_SESSION_ID, column),
        attr("session.id", column),
        "TraceId",
    )


SESSION_ID = session_id()


# The agent as every view shows it: its name, else its id (many agents set only gen_ai.agent.id), so the
# Agent column, `sessions --agent`, the report and the rules' agent allow-lists all see one identity.
def agent_name(column: str = SPAN_ATTRIBUTES) -> str:
    return first_non_empty(attr(semconv.GEN_AI_AGENT_NAME, column), attr(semconv.GEN_AI_AGENT_ID, column), "''")


AGENT_NAME = agent_name()

# Exporter versions wrote 'Error' or 'STATUS_CODE_ERROR', 'Server' or 'SPAN_KIND_SERVER': read both.
STATUS = (
    "multiIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 'Error', "
    "StatusCode IN ('Ok', 'STATUS_CODE_OK'), 'Ok', 'Unset')"
)
KIND = (
    "multiIf(SpanKind IN ('Server', 'SPAN_KIND_SERVER'), 'Server', "
    "SpanKind IN ('Client', 'SPAN_KIND_CLIENT'), 'Client', "
    "SpanKind IN ('Producer', 'SPAN_KIND_PRODUCER'), 'Producer', "
    "SpanKind IN ('Consumer', 'SPAN_KIND_CONSUMER'), 'Consumer', 'Internal')"
)

# Tool-call spans: the GenAI convention, OpenInference's TOOL spans, or an MCP client's tools/call (so
# agents instrumented by other libraries count too). One MCP call is one row: when the client propagated
# its context, the server's span is its child and the client span is the call of record (the server's
# artifacts still reach it, through the parent link; see timeline.py).
_MCP_TOOLS_CALL = f"{attr(semconv.MCP_METHOD_NAME)} = 'tools/call'"
IS_TOOL_CALL = (
    f"(({attr(semconv.GEN_AI_OPERATION_NAME)} = '{semconv.OPERATION_EXECUTE_TOOL}' "
    f"OR {attr('openinference.span.kind')} = 'TOOL' OR ({_MCP_TOOLS_CALL} AND {KIND} = 'Client')) "
    f"AND NOT ({_MCP_TOOLS_CALL} AND {KIND} = 'Server' AND ParentSpanId != '') "
    f"AND {attr(semconv.TOOL_CALL_DUPLICATE_OF)} = '')"
)
# A native agent event (otel_logs) is a tool call once the collector normalised it (processors/native.py).
IS_LOGGED_TOOL_CALL = (
    f"({attr(semconv.GEN_AI_OPERATION_NAME, LOG_ATTRIBUTES)} = '{semconv.OPERATION_EXECUTE_TOOL}' "
    f"AND {attr(semconv.TOOL_CALL_DUPLICATE_OF, LOG_ATTRIBUTES)} = '')"
)
TOOL_NAME = first_non_empty(attr(semconv.GEN_AI_TOOL_NAME), attr("tool.name"), "SpanName")
TOOL_ARGUMENTS = first_non_empty(attr(semconv.GEN_AI_TOOL_CALL_ARGUMENTS), attr("input.value"), "''")
TOOL_RESULT = first_non_empty(attr(semconv.GEN_AI_TOOL_CALL_RESULT), attr("output.value"), "''")
IS_ARTIFACT = f"{attr(semconv.ARTIFACT_KIND)} != ''"
# A person approved the call: a checkpoint event whose decision is not `denied` (no decision: approved).
HAS_HUMAN_CHECKPOINT = (
    f"arrayExists((n, a) -> n = '{semconv.EVENT_HUMAN_CHECKPOINT}' "
    f"AND a['{semconv.CHECKPOINT_DECISION}'] != 'denied', Events.Name, Events.Attributes)"
)

# A person refused the call: a checkpoint event whose decision is `denied`; and who (its approver).
HAS_DENIED_CHECKPOINT = (
    f"arrayExists((n, a) -> n = '{semconv.EVENT_HUMAN_CHECKPOINT}' "
    f"AND a['{semconv.CHECKPOINT_DECISION}'] = 'denied', Events.Name, Events.Attributes)"
)
DENYING_APPROVER = (
    f"arrayFirst(a -> a['{semconv.CHECKPOINT_DECISION}'] = 'denied', "
    f"arrayFilter((a, n) -> n = '{semconv.EVENT_HUMAN_CHECKPOINT}', Events.Attributes, Events.Name))"
    f"['{semconv.CHECKPOINT_APPROVER}']"
)


def decision(column: str) -> str:
    """accept | reject as the agent reported it; on a span without one, a person's denying checkpoint is a
    reject (log records have no events)."""
    reported = attr(semconv.TOOL_DECISION, column)
    if column != SPAN_ATTRIBUTES:
        return reported
    return f"multiIf({reported} != '', {reported}, {HAS_DENIED_CHECKPOINT}, 'reject', '')"


def decision_source(column: str) -> str:
    """Who decided, in the agent's words; for a person's denying checkpoint, that person (its approver)."""
    reported = attr(semconv.TOOL_DECISION_SOURCE, column)
    if column != SPAN_ATTRIBUTES:
        return reported
    return f"multiIf({reported} != '', {reported}, {attr(semconv.TOOL_DECISION)} = '', {DENYING_APPROVER}, '')"


def outcome(column: str, status: str) -> str:
    """What became of a call, for alerts to say: ``denied`` (refused: see :func:`decision`), ``failed`` (error
    status or a non-zero exit code), else ``ok``. A refusal wins over the error status a refused call also
    carries."""
    failed = f"{status} = 'Error' OR {attr(semconv.PROCESS_EXIT_CODE, column)} NOT IN ('', '0')"
    return f"multiIf({decision(column)} = 'reject', 'denied', {failed}, 'failed', 'ok')"


# A credential seen, not only declared: the first redaction marker in the arguments
# (``[REDACTED:kind:fp=FINGERPRINT]``, foothold/redact.py) stands for a use of that credential when the call
# declares none, so a stolen token typed into a command counts for the reuse rules.
# (braces doubled: the view's SELECT goes through str.format)
_MARKER = r"'\\[REDACTED:([a-z0-9_]+):fp=([0-9a-f]{{16}})\\]'"


def seen_credential(arguments: str, group: int) -> str:
    """The first redaction marker's kind (group 1) or fingerprint (group 2) in a call's arguments."""
    return f"extractGroups({arguments}, {_MARKER})[{group}]"
