"""What every integration shares: a tool call recorded on a span the SDK opened (and will close), and the
persistence verdict of the pure-Python classifier as span attributes.

Each SDK adapter is thin: it finds the tool name, call id, arguments and result where its SDK keeps them and
hands them to :class:`SpanToolCall` (when the SDK already emits a span for the call) or to the core's
:class:`~foothold.instrumentation.ToolCall` (when it does not), so a call looks the same in ClickHouse
whichever SDK made it: same attributes, same redaction, same artifacts from the audit hook and the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanContext, Status
from opentelemetry.util.types import AnyValue, Attributes

from foothold import semconv

from .. import runtime
from ..context import _CREDENTIAL, _SESSION
from ..tools import ToolCall

# Session attributes carried to a remote tool server as W3C baggage (the MCP SDK injects the global
# propagator's fields, tracecontext and baggage by default, into params._meta).
SESSION_BAGGAGE = (semconv.GEN_AI_CONVERSATION_ID, semconv.GEN_AI_AGENT_ID, semconv.GEN_AI_AGENT_NAME, semconv.TASK_ID)


class BorrowedSpan(Span):
    """A span someone else owns: everything passes through except ``end``, which stays the owner's."""

    def __init__(self, inner: Span) -> None:
        self.inner = inner

    def end(self, end_time: int | None = None) -> None:  # the owner ends it
        pass

    def get_span_context(self) -> SpanContext:
        return self.inner.get_span_context()

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        self.inner.set_attributes(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self.inner.set_attribute(key, value)

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        self.inner.add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        self.inner.add_link(context, attributes)

    def update_name(self, name: str) -> None:
        self.inner.update_name(name)

    def is_recording(self) -> bool:
        return self.inner.is_recording()

    def set_status(self, status: Status | Any, description: str | None = None) -> None:
        self.inner.set_status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        self.inner.record_exception(exception, attributes, timestamp, escaped)


class SpanToolCall(ToolCall):
    """A :class:`ToolCall` recorded on a span the SDK opened: the same attributes, redacted arguments and
    result, credential, and artifact child spans, but no second span.

    The span may be given at once or adopted later (``adopt``), when the SDK opens it after the call began
    (the MCP client opens its span deep inside the request); the snapshot and the audit recorder start at
    ``__enter__`` either way. The owner ends the span; this never does.
    """

    def __init__(
        self,
        name: str,
        span: Span | None = None,
        *,
        call_id: str | None = None,
        arguments: Any = None,
        tool_type: str = "extension",
        cwd: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, call_id=call_id, arguments=arguments, tool_type=tool_type, cwd=cwd)
        self._given = span
        self._extra = extra or {}
        self._attributes: dict[str, Any] = {}

    def _context_attributes(self) -> dict[str, Any]:
        # The SDK's span was started outside our context processor: session and credential go on here.
        return {**(_CREDENTIAL.get() or {}), **(_SESSION.get() or {}), **self._extra}

    def _open(self, rt: runtime.Runtime, attributes: dict[str, Any]) -> otel_context.Context:
        """No span of our own: the SDK's span is adopted now or when it appears."""
        self._attributes = attributes
        if self._given is not None:
            self.adopt(self._given)
        return otel_context.get_current()

    def adopt(self, span: Span) -> None:
        """Record this call on ``span`` (set at once: the arguments, session and credential)."""
        if self._rt is None:
            return
        try:
            self.span = BorrowedSpan(span)
            span.set_attributes(self._attributes)
        except Exception as exc:
            runtime.report_once("adopt span", exc)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        try:
            self._attributes.update(attributes)
            self.span.set_attributes(attributes)
        except Exception as exc:
            runtime.report_once("span attributes", exc)


def verdict_attributes(findings: Sequence[Any]) -> dict[str, str]:
    """The classifier's first finding as ``foothold.persistence.*`` (the collector re-judges on ingest)."""
    if not findings:
        return {}
    first = findings[0]
    return {
        semconv.PERSISTENCE_KIND: first.kind,
        semconv.PERSISTENCE_TECHNIQUE: first.technique,
        semconv.PERSISTENCE_TARGET: first.target,
        semconv.PERSISTENCE_EVIDENCE: "; ".join(f.evidence for f in findings[:3]),
    }


def classify(tool_name: str, arguments: Any, cwd: str | None, home: str | None) -> list[Any]:
    try:
        from foothold.detections.classify import classify_tool_call

        return classify_tool_call(tool_name, arguments, cwd=cwd, home=home)
    except Exception as exc:  # the classifier never raises, but an import problem must not reach the agent
        runtime.report_once("classify", exc)
        return []


def session_baggage_context() -> otel_context.Context | None:
    """The current context with the Foothold session attached as baggage (None when there is no session)."""
    values = _SESSION.get()
    if not values:
        return None
    from opentelemetry import baggage

    ctx = otel_context.get_current()
    for key in SESSION_BAGGAGE:
        if values.get(key):
            ctx = baggage.set_baggage(key, values[key], ctx)
    return ctx
