"""Session and credential context: contextvars copied onto spans by a SpanProcessor, so every span
started inside a session (artifact spans and third-party spans included) carries the session ids."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor

from foothold import semconv
from foothold.redact import fingerprint

from . import runtime

_SESSION: ContextVar[dict[str, str] | None] = ContextVar("foothold_session", default=None)
_CREDENTIAL: ContextVar[dict[str, str] | None] = ContextVar("foothold_credential", default=None)


@contextmanager
def session(
    conversation_id: str | None = None,
    agent_id: str | None = None,
    agent_name: str | None = None,
    task_id: str | None = None,
    ends_task: bool = False,
) -> Iterator[None]:
    """Tag every span started inside with these ids; nested sessions override only what they set.

    ``ends_task=True`` says the block is the whole of task ``task_id``: leaving it (normally or by an
    exception) records the task's end (:func:`end_task`), so a credential issued for the task and used
    afterwards is flagged. Leave it off when a task spans several blocks (e.g. one per turn).
    """
    if runtime.current.disabled:
        yield
        return
    given = {
        semconv.GEN_AI_CONVERSATION_ID: conversation_id,
        semconv.GEN_AI_AGENT_ID: agent_id,
        semconv.GEN_AI_AGENT_NAME: agent_name,
        semconv.TASK_ID: task_id,
    }
    values = {**(_SESSION.get() or {}), **{k: str(v) for k, v in given.items() if v is not None}}
    token = _SESSION.set(values)
    try:
        yield
    finally:
        if ends_task and task_id is not None:
            end_task(task_id)  # still inside the session, so the marker carries its ids
        _SESSION.reset(token)


def end_task(task_id: str | None = None) -> None:
    """Record that a task ended (default: the current session's task) as a ``foothold.task.end`` span.

    Only an explicit end counts: a task nobody ended has no known end, and nothing is flagged for it.
    """
    if runtime.current.disabled:
        return
    try:
        task = task_id if task_id is not None else (_SESSION.get() or {}).get(semconv.TASK_ID)
        if not task:
            return
        span = runtime.current.tracer.start_span(semconv.TASK_END_SPAN)
        span.set_attribute(semconv.TASK_ID, str(task))  # after start: the session processor set the current task
        span.end()
    except Exception as exc:  # never break the agent
        runtime.report_once("end_task", exc)


@dataclass(frozen=True, slots=True)
class Credential:
    """What is recorded about a declared credential: never the value."""

    fingerprint: str
    kind: str
    scope: str | None = None
    task_id: str | None = None
    issued_to: str | None = None
    expires_at: str | None = None
    shared: bool = False

    def attributes(self) -> dict[str, str]:
        pairs = {
            semconv.CREDENTIAL_FINGERPRINT: self.fingerprint,
            semconv.CREDENTIAL_KIND: self.kind,
            semconv.CREDENTIAL_SCOPE: self.scope,
            semconv.CREDENTIAL_TASK_ID: self.task_id,
            semconv.CREDENTIAL_ISSUED_TO: self.issued_to,
            semconv.CREDENTIAL_EXPIRES_AT: self.expires_at,
            semconv.CREDENTIAL_SHARED: "true" if self.shared else None,
        }
        return {k: v for k, v in pairs.items() if v is not None}


@contextmanager
def credential(
    value: str | bytes,
    kind: str,
    scope: str | None = None,
    task_id: str | None = None,
    issued_to: str | None = None,
    expires_at: datetime | str | None = None,
    shared: bool = False,
) -> Iterator[Credential | None]:
    """Declare the credential the enclosed tool calls use; their spans get its keyed fingerprint.

    ``shared=True`` says the credential is meant to serve many tasks and sessions (a read-only CI token, a
    team's package-registry token): the reuse rules leave it alone, as they do a fingerprint listed in a
    rule's ``allow.fingerprints``. A ``task_id`` still bounds it: used after that task ended, it is flagged.
    """
    if runtime.current.disabled:
        yield None
        return
    declared = Credential(
        fingerprint=fingerprint(value, runtime.current.key()),
        kind=kind,
        scope=scope,
        task_id=task_id,
        issued_to=issued_to,
        expires_at=expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at,
        shared=shared,
    )
    token = _CREDENTIAL.set(declared.attributes())
    try:
        yield declared
    finally:
        _CREDENTIAL.reset(token)


class ContextSpanProcessor(SpanProcessor):
    """Copies the session onto every span, and the declared credential onto tool-call spans."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            values = _SESSION.get()
            if values:
                span.set_attributes(values)
            declared = _CREDENTIAL.get()
            attributes = span.attributes or {}
            if declared and attributes.get(semconv.GEN_AI_OPERATION_NAME) == semconv.OPERATION_EXECUTE_TOOL:
                span.set_attributes(declared)
        except Exception as exc:  # a processor error would surface in the agent's start_span
            runtime.report_once("session processor", exc)
