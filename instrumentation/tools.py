"""Tool-call spans: the ``tool_call`` context manager, the ``@tool`` decorator and ``checkpoint``."""

from __future__ import annotations

import functools
import inspect
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from foothold import semconv
from foothold.redact import redact_text

from . import artifacts, audit, runtime
from .content import render, truncate
from .watch import FileState, Snapshot

F = TypeVar("F", bound=Callable[..., Any])
# Calls whose snapshot is open, across threads and tasks: a change the snapshot sees while others run too
# cannot be pinned on one call by the snapshot alone.
_in_flight: set[ToolCall] = set()
_in_flight_lock = threading.Lock()


def render_content(value: Any, rt: runtime.Runtime) -> str:
    """Redacted, size-limited text of a tool's arguments or result (see :func:`.content.render`)."""
    return render(value, rt.key(), rt.max_content_bytes)


class ToolCall:
    """One tool call: ``with tool_call("bash", arguments={...}) as call: ...; call.set_result(out)``.

    Opens ``execute_tool {name}`` (INTERNAL), records what the call did as child ``artifact {kind}``
    spans when it ends, and marks it failed (``error.type``) if the body raises; the exception itself
    propagates unchanged. Instrumentation errors are logged once and never reach the agent.
    """

    def __init__(
        self,
        name: str,
        call_id: str | None = None,
        arguments: Any = None,
        tool_type: str = "function",
        cwd: str | None = None,
    ) -> None:
        self.name = name
        self.call_id = call_id
        self.arguments = arguments
        self.tool_type = tool_type
        self.cwd = cwd
        self.span: trace.Span = INVALID_SPAN
        self.recorder: audit.Recorder | None = None
        self._rt: runtime.Runtime | None = None
        self._snapshot: Snapshot | None = None
        self._parent: ToolCall | None = None
        self._tokens: tuple[Any, Any] | None = None

    def __enter__(self) -> ToolCall:
        rt = runtime.current
        if rt.disabled:
            return self
        try:
            self._start(rt)
        except Exception as exc:
            runtime.report_once("tool_call start", exc)
            self._abandon()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._rt is None:
            return
        try:
            self._finish(self._rt, exc)
        except Exception as error:
            runtime.report_once("tool_call end", error)
            self._abandon()

    def set_result(self, value: Any) -> None:
        """Record the tool's result (only when content capture is on; always redacted)."""
        rt = self._rt
        if rt is None or not rt.capture_content:
            return
        try:
            self.span.set_attribute(semconv.GEN_AI_TOOL_CALL_RESULT, render_content(value, rt))
        except Exception as exc:
            runtime.report_once("tool result", exc)

    def set_exit_code(self, code: int) -> None:
        """Record a shell tool's exit status; a non-zero one marks the call failed (the alerts then say a
        durable write it declared was attempted, not made)."""
        if self._rt is None:
            return
        try:
            self.span.set_attribute(semconv.PROCESS_EXIT_CODE, int(code))
            if code != 0:
                self.span.set_status(Status(StatusCode.ERROR, f"exit code {code}"))
                self.span.set_attribute(semconv.ERROR_TYPE, str(code))  # the conventions' error.type for an exit
        except Exception as exc:
            runtime.report_once("tool exit code", exc)

    def _start(self, rt: runtime.Runtime) -> None:
        self.call_id = self.call_id or f"call_{uuid.uuid4().hex}"
        self.cwd = self.cwd or os.getcwd()
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: self.name,
            semconv.GEN_AI_TOOL_CALL_ID: self.call_id,
            semconv.GEN_AI_TOOL_TYPE: self.tool_type,
            semconv.CWD: self.cwd,
            semconv.HOME: rt.home,
        } | self._context_attributes()
        if rt.capture_content and self.arguments is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = render_content(self.arguments, rt)
        self._rt = rt
        parent = audit.ACTIVE_CALL.get()
        self._parent = parent if isinstance(parent, ToolCall) else None
        if rt.watcher is not None:  # before the span, so baseline hashing is not timed as the call
            self._snapshot = rt.watcher.before(self.cwd)
            with _in_flight_lock:
                _in_flight.add(self)
        self.recorder = audit.Recorder(rt.hash_limit_bytes)
        self._tokens = (otel_context.attach(self._open(rt, attributes)), audit.ACTIVE_CALL.set(self))

    def _context_attributes(self) -> dict[str, Any]:
        """Attributes the span needs beyond the call's own; our spans get session and credential from the
        context span processor, so none here."""
        return {}

    def _open(self, rt: runtime.Runtime, attributes: dict[str, Any]) -> otel_context.Context:
        """Start the call's span; returns the context the tool body runs in."""
        self.span = rt.tracer.start_span(
            semconv.tool_span_name(self.name), kind=SpanKind.INTERNAL, attributes=attributes
        )
        return trace.set_span_in_context(self.span)

    def _finish(self, rt: runtime.Runtime, exc: BaseException | None) -> None:
        self._restore_context()  # first: nothing below is the tool's doing
        if exc is not None:
            description = truncate(redact_text(str(exc), rt.key())[0], 512) if rt.capture_content else None
            self.span.set_status(Status(StatusCode.ERROR, description))
            self.span.set_attribute(semconv.ERROR_TYPE, type(exc).__qualname__)
        snapshot_artifacts: list[artifacts.Artifact] = []
        assert self.recorder is not None and self.cwd is not None  # both set by _start
        if rt.watcher is not None and self._snapshot is not None:
            with _in_flight_lock:  # one call at a time takes its after-state and hands it on
                _in_flight.discard(self)
                snapshot_artifacts, changed = rt.watcher.after(self._snapshot)
                others = [c for c in _in_flight if not self._encloses(c)]
                for other in others:  # each change is reported once: by the first call whose snapshot sees it
                    other._take_after_state(changed)
            self._hand_to_parent(changed)
            snapshot_artifacts = self._attribute(snapshot_artifacts, others)
        observed = self.recorder.artifacts(lambda cmd: truncate(redact_text(cmd, rt.key())[0], rt.max_content_bytes))
        artifacts.emit(
            rt.tracer,
            self.span,
            artifacts.merge(observed, snapshot_artifacts),
            {semconv.CWD: self.cwd, semconv.HOME: rt.home},
        )
        self.span.end()
        self._rt = None

    def _hand_to_parent(self, changed: dict[str, FileState | None]) -> None:
        """An enclosing call would see the same changes again; it takes our after-state as its before."""
        if self._parent is not None:
            self._parent._take_after_state(changed)

    def _take_after_state(self, changed: dict[str, FileState | None]) -> None:
        if self._snapshot is None:
            return
        for path, state in changed.items():
            if state is None:
                self._snapshot.states.pop(path, None)
            else:
                self._snapshot.states[path] = state

    def _encloses(self, other: ToolCall) -> bool:
        """Whether ``other`` is this call or one of the calls it runs inside (they wait for it)."""
        call: ToolCall | None = self
        while call is not None:
            if call is other:
                return True
            call = call._parent
        return False

    def _attribute(self, found: list[artifacts.Artifact], others: list[ToolCall]) -> list[artifacts.Artifact]:
        """Snapshot changes made while other calls ran too. The audit hook knows which call (thread, task,
        context) wrote through Python: a path another call's recorder holds is that call's, and it reports it.
        A change no recorder saw (a subprocess wrote it) is not pinned on this call: it is marked not
        attributable to one call, with the calls that were running."""
        if not others or not found:
            return found
        mine = set(self.recorder.files) if self.recorder is not None else set()
        kept = []
        for artifact in found:
            if artifact.path in mine:
                kept.append(artifact)
            elif any(other.recorder is not None and artifact.path in other.recorder.files for other in others):
                continue
            else:
                candidates = sorted({str(c.call_id) for c in [self, *others]})
                kept.append(replace(artifact, attribution=artifacts.AMBIGUOUS, candidates=tuple(candidates)))
        return kept

    def _restore_context(self) -> None:
        if self._tokens is not None:
            context_token, call_token = self._tokens
            self._tokens = None
            audit.ACTIVE_CALL.reset(call_token)
            otel_context.detach(context_token)

    def _abandon(self) -> None:
        """After an instrumentation error: leave the agent's context as it was and close the span."""
        with _in_flight_lock:
            _in_flight.discard(self)
        try:
            self._restore_context()
        except Exception:  # already reported by the caller; restoring is best effort
            pass
        self.span.end()
        self._rt = None


tool_call = ToolCall


def tool(name: str | Callable[..., Any] | None = None, *, tool_type: str = "function") -> Any:
    """Decorate a sync or async function so each call is a tool call: ``@tool`` or ``@tool("name")``."""
    if callable(name):
        return tool()(name)

    def decorate(fn: F) -> F:
        tool_name = name or fn.__name__
        signature = _signature(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with ToolCall(tool_name, arguments=_arguments(signature, args, kwargs), tool_type=tool_type) as call:
                    result = await fn(*args, **kwargs)
                    call.set_result(result)
                    return result

            return cast(F, async_wrapper)  # functools.wraps kept fn's signature: the wrapper is an F

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with ToolCall(tool_name, arguments=_arguments(signature, args, kwargs), tool_type=tool_type) as call:
                result = fn(*args, **kwargs)
                call.set_result(result)
                return result

        return cast(F, wrapper)

    return decorate


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _arguments(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """Named arguments, built only when content is captured (binding costs more than the span)."""
    if not runtime.current.capture_content or runtime.current.disabled:
        return None
    try:
        if signature is None:
            return {"args": list(args), **kwargs}
        bound = signature.bind_partial(*args, **kwargs).arguments
        return {k: v for k, v in bound.items() if k not in ("self", "cls")}
    except Exception as exc:
        runtime.report_once("tool arguments", exc)
        return None


def checkpoint(approver: str, decision: str = "approved") -> None:
    """Mark on the current tool call that a person confirmed (or denied) the action."""
    if runtime.current.disabled:
        return
    try:
        call = audit.ACTIVE_CALL.get()
        span = call.span if isinstance(call, ToolCall) else trace.get_current_span()
        span.add_event(
            semconv.EVENT_HUMAN_CHECKPOINT,
            {semconv.CHECKPOINT_APPROVER: approver, semconv.CHECKPOINT_DECISION: decision},
        )
    except Exception as exc:
        runtime.report_once("checkpoint", exc)
