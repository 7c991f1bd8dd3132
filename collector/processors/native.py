"""Agents' own telemetry, normalised into Foothold's one notion of a tool call; and one record per call.

``NativeToolCalls`` (first in the chain) rewrites each native tool record into the GenAI tool-call
attributes every other stage reads (``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name``,
``gen_ai.tool.call.id``, ``gen_ai.tool.call.arguments``, ``gen_ai.conversation.id``) plus the decision,
who decided, the duration and the reporting telemetry. The original attributes stay as they came, so
``otel_logs`` keeps the vendor's record and otelcol-contrib queries still work. Redaction then covers the
arguments, the same classifier judges them, and the ``tool_calls`` views project them: what a tool call
is stays decided in one place whatever reported it. Vendor names (checked against each vendor's source,
see tests/test_native_telemetry.py):

- Claude Code logs: ``claude_code.tool_result`` (``tool_name``, ``tool_use_id``, ``success``,
  ``duration_ms``, ``decision``/``decision_type``, ``source``/``decision_source``, ``error``,
  ``tool_parameters`` JSON with ``full_command``/``bash_command``/``file_path``, ``tool_input`` JSON) and
  ``claude_code.tool_decision`` (``decision`` accept|reject, ``source``); ``session.id`` on every event.
  A rejected decision is the record of a call that never ran; an accepted one is followed by its result,
  which is the record.
- Claude Code beta traces: ``claude_code.tool`` spans with ``gen_ai.tool.call.id`` and no
  ``gen_ai.operation.name``.
- Codex CLI logs: ``codex.tool_result`` (``tool_name``, ``call_id``, ``arguments`` as the model sent them,
  e.g. ``exec_command`` ``{"cmd": …}``, ``duration_ms``, ``success``, ``output``) and
  ``codex.tool_decision`` (``decision`` approved|approved_for_session|denied|abort, ``source``);
  ``conversation.id`` is the session. A denied decision is the record of a call that never ran; an accepted
  one goes onto the result that follows (which carries none of its own). The name is in the ``event.name``
  attribute (the record's EventName field holds a tracing callsite). Checked against the 0.171.0 binary
  (tests/test_codex_cli_real.py).
- Gemini CLI logs: ``gemini_cli.tool_call`` (``function_name``, ``function_args``, ``duration_ms``,
  ``success``, ``decision`` accept|reject|modify|auto_accept, ``error_type``); ``session.id``. Its
  ``gemini_cli.file_operation`` describes the same call again (no path, only line counts and a language),
  so it is not a second call.
- OpenLLMetry: spans with ``traceloop.span.kind=tool`` (``traceloop.entity.name``/``input``/``output``).

``CallOfRecord`` (last) keeps one row per call when several telemetries report the same one (a Claude
Code hook span and the native events, a proxied MCP server that is also instrumented, a LangChain tool
seen by Foothold and OpenInference): records are keyed by (session, call id); the first one the collector
sees is the call of record, later ones get ``foothold.tool.call.duplicate_of`` and stay in
``otel_traces``/``otel_logs`` but not in ``tool_calls``. The index is in memory (bounded, LRU): two
records of one call that straddle a collector restart, or reach two collector replicas, can both count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from foothold import semconv
from foothold.collector.log_rows import LogBatch
from foothold.collector.rows import SpanBatch
from foothold.detections.toolcall import TOOL_NAME_KEYS, is_tool_call_span

_EXECUTE_TOOL = {semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL}
_TRUE = ("true", "1", "True")
# Each agent's decision words -> accept | reject.
_DECISIONS = {
    "accept": "accept",
    "reject": "reject",
    "approved": "accept",
    "approved_for_session": "accept",
    "denied": "reject",
    "abort": "reject",
    "modify": "accept",
    "auto_accept": "accept",
}


def _json(value: str) -> object:
    try:
        return orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None


def _ms_to_ns(value: str) -> str:
    try:
        return str(max(0, int(float(value) * 1_000_000)))
    except (TypeError, ValueError):
        return ""


def _common(attrs: dict[str, str], source: str, agent: str, session_key: str, call_key: str, tool_key: str) -> None:
    attrs.update(_EXECUTE_TOOL)
    attrs[semconv.TOOL_CALL_SOURCE] = source
    attrs.setdefault(semconv.GEN_AI_AGENT_NAME, agent)
    if attrs.get(session_key) and not attrs.get(semconv.GEN_AI_CONVERSATION_ID):
        attrs[semconv.GEN_AI_CONVERSATION_ID] = attrs[session_key]
    if attrs.get(call_key):
        attrs[semconv.GEN_AI_TOOL_CALL_ID] = attrs[call_key]
    attrs[semconv.GEN_AI_TOOL_NAME] = attrs.get(tool_key) or "unknown"
    if attrs.get("duration_ms"):
        attrs[semconv.DURATION_NS] = _ms_to_ns(attrs["duration_ms"])


def _decision(attrs: dict[str, str], decision: str, source: str) -> None:
    if decision:
        attrs[semconv.TOOL_DECISION] = _DECISIONS.get(decision.lower(), decision.lower())
    if source:
        attrs[semconv.TOOL_DECISION_SOURCE] = source


def _failed(attrs: dict[str, str], success: str, error: str) -> None:
    if success and success not in _TRUE:
        attrs[semconv.ERROR_TYPE] = error or "tool_error"


# --- Claude Code ---------------------------------------------------------------------------------------


def _claude_arguments(attrs: dict[str, str]) -> str:
    """The call's input: ``tool_input`` when present, else the command or path from ``tool_parameters``."""
    tool_input = attrs.get("tool_input", "")
    if isinstance(_json(tool_input), dict):
        return tool_input
    parameters = _json(attrs.get("tool_parameters", ""))
    if not isinstance(parameters, dict):
        return ""
    command = parameters.get("full_command") or parameters.get("bash_command")
    if isinstance(command, str) and command:
        return orjson.dumps({"command": command}).decode()
    path = parameters.get("file_path")
    if isinstance(path, str) and path:
        return orjson.dumps({"file_path": path}).decode()
    return ""


def _claude_common(attrs: dict[str, str], source: str) -> None:
    _common(attrs, source, "claude-code", "session.id", "tool_use_id", "tool_name")
    arguments = _claude_arguments(attrs)
    if arguments:
        attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments


def claude_tool_result(attrs: dict[str, str]) -> None:
    _claude_common(attrs, "claude_code.logs")
    _decision(
        attrs,
        attrs.get("decision") or attrs.get("decision_type", ""),
        attrs.get("source") or attrs.get("decision_source", ""),
    )
    _failed(attrs, attrs.get("success", ""), attrs.get("error_type") or attrs.get("error", ""))


def claude_tool_decision(attrs: dict[str, str]) -> None:
    decision = _DECISIONS.get(attrs.get("decision", "").lower(), "")
    if decision != "reject":
        return  # an accepted call is recorded by its tool_result
    _claude_common(attrs, "claude_code.logs")
    _decision(attrs, "reject", attrs.get("source") or attrs.get("decision_source", ""))


def claude_tool_span(attrs: dict[str, str]) -> None:
    _common(attrs, "claude_code.traces", "claude-code", "session.id", "tool_use_id", "tool_name")


# --- Codex CLI -----------------------------------------------------------------------------------------


def _codex_common(attrs: dict[str, str]) -> None:
    _common(attrs, "codex.logs", "codex", "conversation.id", "call_id", "tool_name")
    if attrs.get("arguments"):
        attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = attrs["arguments"]


def codex_tool_result(attrs: dict[str, str]) -> None:
    _codex_common(attrs)
    _failed(attrs, attrs.get("success", ""), "")


def codex_tool_decision(attrs: dict[str, str]) -> None:
    decision = _DECISIONS.get(attrs.get("decision", "").lower(), "")
    if decision != "reject":
        return
    _codex_common(attrs)
    _decision(attrs, "reject", attrs.get("source", ""))


class CodexDecisions:
    """Puts Codex's accepted decision on the result it precedes: unlike Claude Code's, Codex's ``tool_result``
    carries no decision, and its ``tool_decision`` (who approved: ``Config`` under a bypass, ``User``) comes as a
    record of its own just before. Bounded: a decision whose result never comes is forgotten after the others."""

    def __init__(self, entries: int = 10_000) -> None:
        self._pending: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._entries = entries
        self._lock = threading.Lock()  # the traces and logs pipelines share the processor

    def see(self, mapper: Callable[[dict[str, str]], None], attrs: dict[str, str]) -> None:
        key = (attrs.get("conversation.id", ""), attrs.get("call_id", ""))
        if not key[1]:
            return
        if mapper is codex_tool_decision and _DECISIONS.get(attrs.get("decision", "").lower()) == "accept":
            with self._lock:
                self._pending[key] = (attrs["decision"], attrs.get("source", ""))
                if len(self._pending) > self._entries:
                    self._pending.popitem(last=False)
        elif mapper is codex_tool_result:
            with self._lock:
                decided = self._pending.pop(key, None)
            if decided is not None:
                _decision(attrs, *decided)


# --- Gemini CLI ----------------------------------------------------------------------------------------


def gemini_tool_call(attrs: dict[str, str]) -> None:
    _common(attrs, "gemini_cli.logs", "gemini-cli", "session.id", "call_id", "function_name")
    arguments = attrs.get("function_args", "")
    if arguments:
        attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments
    decision = attrs.get("decision", "")
    # Gemini says who decided through the word itself: auto_accept is its policy, the rest a person.
    who = {"auto_accept": "policy", "accept": "user", "modify": "user"}.get(decision, "")
    _decision(attrs, decision, who)
    _failed(attrs, attrs.get("success", ""), attrs.get("error_type", ""))


# --- OpenLLMetry ---------------------------------------------------------------------------------------


def traceloop_tool(attrs: dict[str, str]) -> None:
    attrs.update(_EXECUTE_TOOL)
    attrs[semconv.TOOL_CALL_SOURCE] = "openllmetry"
    attrs.setdefault(semconv.GEN_AI_TOOL_NAME, attrs.get("traceloop.entity.name") or "unknown")
    if attrs.get("traceloop.entity.input") and not attrs.get(semconv.GEN_AI_TOOL_CALL_ARGUMENTS):
        attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = attrs["traceloop.entity.input"]
    if attrs.get("traceloop.entity.output") and not attrs.get(semconv.GEN_AI_TOOL_CALL_RESULT):
        attrs[semconv.GEN_AI_TOOL_CALL_RESULT] = attrs["traceloop.entity.output"]
    session = attrs.get("traceloop.association.properties.session_id")
    if session and not attrs.get(semconv.GEN_AI_CONVERSATION_ID):
        attrs[semconv.GEN_AI_CONVERSATION_ID] = session


LOG_EVENTS: dict[str, Callable[[dict[str, str]], None]] = {
    "claude_code.tool_result": claude_tool_result,
    "claude_code.tool_decision": claude_tool_decision,
    "codex.tool_result": codex_tool_result,
    "codex.tool_decision": codex_tool_decision,
    "gemini_cli.tool_call": gemini_tool_call,
}
CLAUDE_TOOL_SPAN = "claude_code.tool"


def _log_event(event_name: str, body: str, attrs: dict[str, str]) -> Callable[[dict[str, str]], None] | None:
    """The mapper for a record, whichever place its SDK put the event name in."""
    for name in (event_name, attrs.get("event.name", ""), body):
        mapper = LOG_EVENTS.get(name)
        if mapper is not None:
            return mapper
    return None


class NativeToolCalls:
    """Normalises native tool events (logs) and vendor tool spans into GenAI tool-call attributes."""

    def __init__(self) -> None:
        self._codex = CodexDecisions()

    def process(self, batch: SpanBatch | LogBatch) -> None:
        columns = batch.columns
        if "EventName" in columns:  # a logs batch
            for attrs, event_name, body in zip(
                columns["LogAttributes"], columns["EventName"], columns["Body"], strict=True
            ):
                if attrs.get(semconv.GEN_AI_OPERATION_NAME):
                    continue  # already a tool call in the GenAI sense
                mapper = _log_event(event_name, body, attrs)
                if mapper is not None:
                    mapper(attrs)
                    self._codex.see(mapper, attrs)
            return
        for attrs, span_name in zip(columns["SpanAttributes"], columns["SpanName"], strict=True):
            if attrs.get(semconv.GEN_AI_OPERATION_NAME):
                continue
            if span_name == CLAUDE_TOOL_SPAN:
                claude_tool_span(attrs)
            elif attrs.get("traceloop.span.kind") == "tool":
                traceloop_tool(attrs)


# --- one call, one row ---------------------------------------------------------------------------------

LOG_ROW_PREFIX = "call:"  # a log-derived tool_calls row's SpanId (schema/ddl.py), e.g. call:toolu_01
K = TypeVar("K")  # an index key: a span id, or a (session, call id) pair
_INDEX_ENTRIES = 200_000  # calls remembered; a duplicate arrives seconds to minutes after its record


class CallOfRecordConfig(BaseModel):
    """``processors.call_of_record`` in the collector config."""

    model_config = ConfigDict(extra="forbid")

    # a duplicate arrives seconds to minutes after its record; ~200 bytes of index per call
    index_entries: int = Field(200_000, gt=0, description="tool calls remembered to recognise later records of them")


def call_key(attrs: dict[str, str], trace_id: str) -> tuple[str, str] | None:
    """(session, call id) of a tool-call record, or None when it carries no call id to match on.

    The session follows the tool_calls view (conversation, MCP session, ``session.id``, trace), except for
    an MCP call, whose JSON-RPC id is only unique within its MCP session: there the MCP session comes first
    (the proxy and the server it fronts both record it). The call id is the GenAI one, OpenInference's
    ``tool_call.id``, else an MCP call's JSON-RPC id.
    """
    mcp_session = attrs.get(semconv.MCP_SESSION_ID, "") if attrs.get(semconv.MCP_METHOD_NAME) == "tools/call" else ""
    call_id = attrs.get(semconv.GEN_AI_TOOL_CALL_ID) or attrs.get("tool_call.id") or ""
    if mcp_session:
        call_id = attrs.get(semconv.JSONRPC_REQUEST_ID) or call_id
    if not call_id:
        return None
    session = (
        mcp_session
        or attrs.get(semconv.GEN_AI_CONVERSATION_ID)
        or attrs.get(semconv.MCP_SESSION_ID)
        or attrs.get("session.id")
        or trace_id
    )
    return session, call_id


def _tool_name(attrs: dict[str, str]) -> str:
    return next((attrs[key] for key in TOOL_NAME_KEYS if attrs.get(key)), "")


def _is_tool_call(attrs: dict[str, str], kind: str, parent: str) -> bool:
    """sql.IS_TOOL_CALL in Python: the normalised view's tool-call span, except an MCP server span under its
    client's span, which is never the call of record (even when it says execute_tool)."""
    if attrs.get(semconv.MCP_METHOD_NAME) == "tools/call" and kind.rsplit("_", 1)[-1].lower() == "server" and parent:
        return False
    return is_tool_call_span(attrs, kind, parent)


class CallOfRecord:
    """Marks every record of a call after the first as ``foothold.tool.call.duplicate_of`` that first one.

    Two records are one call when they share (session, call id), or when one is the other's child span and
    names the same tool (two instrumentations of one framework nest their spans: OpenInference's TOOL span
    inside Foothold's ``execute_tool``, which carries the call id the other lacks). For the second rule the
    parent is the record; spans exported in one request (an SDK's batch) are always resolved, a child that
    reached an earlier batch than its parent is not.

    A span outranks a native log record of the same call (it carries the arguments, the artifacts and the
    refusal detail): when the log came first, the span becomes the record and the batch lists the log's row
    in ``superseded`` for the exporter to delete from ``tool_calls`` (ClickHouseExporter).
    """

    def __init__(self, config: CallOfRecordConfig | None = None) -> None:
        entries = (config or CallOfRecordConfig()).index_entries
        self._seen: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._spans: OrderedDict[str, str] = OrderedDict()  # tool-call span id -> tool name
        self._entries = entries
        self._lock = threading.Lock()  # the traces and logs pipelines share this index

    def process(self, batch: SpanBatch | LogBatch) -> None:
        columns = batch.columns
        attributes = batch.span_attributes
        ids = columns["SpanId"]
        is_span = "EventName" not in columns
        kinds = columns.get("SpanKind") or [""] * len(attributes)  # logs have no kind or parent
        parents = columns.get("ParentSpanId") or kinds
        calls = [
            i
            for i, attrs in enumerate(attributes)
            if _is_tool_call(attrs, kinds[i], parents[i]) and not attrs.get(semconv.TOOL_CALL_DUPLICATE_OF)
        ]
        superseded: list[tuple[str, str]] = []
        with self._lock:
            for i in calls:  # this batch's tool spans first: a parent may come after its child in a request
                if ids[i] and is_span:
                    self._remember(self._spans, ids[i], _tool_name(attributes[i]))
            for i in calls:
                attrs = attributes[i]
                name = _tool_name(attrs)
                if parents[i] and name and self._spans.get(parents[i]) == name:
                    attrs[semconv.TOOL_CALL_DUPLICATE_OF] = parents[i]
                    continue
                key = call_key(attrs, columns["TraceId"][i])
                if key is None:
                    continue
                record = self._seen.get(key)
                if record is None:
                    self._remember(self._seen, key, ids[i] if is_span else f"{LOG_ROW_PREFIX}{key[1]}")
                elif is_span and record.startswith(LOG_ROW_PREFIX):
                    superseded.append((key[0], record))  # the log's row gives way to the span
                    self._remember(self._seen, key, ids[i])
                else:
                    attrs[semconv.TOOL_CALL_DUPLICATE_OF] = record
        if superseded and isinstance(batch, SpanBatch):  # only spans supersede (is_span above)
            batch.superseded = superseded

    def _remember(self, index: OrderedDict[K, str], key: K, value: str) -> None:
        index[key] = value
        index.move_to_end(key)
        if len(index) > self._entries:
            index.popitem(last=False)
