"""Artifacts (files, processes, connections a tool call left behind) and their child spans."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from foothold import semconv

if TYPE_CHECKING:  # OpenTelemetry loads with emit(): the Claude Code hook uses this module without it
    from opentelemetry import trace

SOURCE_AUDIT_HOOK = "audit_hook"
SOURCE_SNAPSHOT = "snapshot"
AMBIGUOUS = "ambiguous"  # seen while several calls ran, written by none the audit hook could name
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Artifact:
    kind: str  # file | process | connection
    action: str  # create | modify | delete | rename | chmod | exec | connect
    path: str
    source: str
    durable: bool
    sha256: str | None = None
    sha256_before: str | None = None
    size: int | None = None
    time_ns: int | None = None  # when it was observed; the span starts there
    attribution: str | None = None  # None: this call's; AMBIGUOUS: one of ``candidates`` (call ids)
    candidates: tuple[str, ...] = ()

    def attributes(self) -> dict[str, str | int | bool]:
        attrs: dict[str, str | int | bool] = {
            semconv.ARTIFACT_KIND: self.kind,
            semconv.ARTIFACT_ACTION: self.action,
            semconv.ARTIFACT_PATH: self.path,
            semconv.ARTIFACT_SOURCE: self.source,
            semconv.ARTIFACT_DURABLE: self.durable,
        }
        if self.sha256 is not None:
            attrs[semconv.ARTIFACT_SHA256] = self.sha256
        if self.sha256_before is not None:
            attrs[semconv.ARTIFACT_SHA256_BEFORE] = self.sha256_before
        if self.size is not None:
            attrs[semconv.ARTIFACT_SIZE] = self.size
        if self.attribution is not None:
            attrs[semconv.ARTIFACT_ATTRIBUTION] = self.attribution
            attrs[semconv.ARTIFACT_CANDIDATE_CALLS] = ",".join(self.candidates)
        return attrs


def hash_file(path: str, limit: int) -> tuple[str | None, int | None]:
    """(sha256, size) of a regular file; no hash past ``limit`` bytes or when unreadable."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return None, None
    if size > limit:
        return None, size
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None, size
    return digest.hexdigest(), size


def merge(observed: list[Artifact], snapshot: list[Artifact]) -> list[Artifact]:
    """One artifact per file path: the in-process observation wins (it names this process as the
    writer), taking the snapshot's last known before-hash when it has none of its own."""
    by_path = {a.path: a for a in snapshot}
    merged: list[Artifact] = []
    for artifact in observed:
        seen = by_path.pop(artifact.path, None) if artifact.kind == "file" else None
        if seen is not None and artifact.sha256_before is None and seen.sha256_before is not None:
            artifact = replace(artifact, sha256_before=seen.sha256_before)
        merged.append(artifact)
    merged.extend(by_path.values())
    return merged


def emit(
    tracer: trace.Tracer, parent: trace.Span, artifacts: Iterable[Artifact], context_attributes: dict[str, str]
) -> None:
    """One ``artifact {kind}`` span per artifact, a child of the tool call that produced it.

    ``context_attributes`` (cwd, home) let the collector resolve what the artifact's path means; the parent's
    session and agent attributes are copied too, so the collector files the artifact under the call's session
    (without them it would key it by trace id: a phantom session no timeline shows)."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    context = trace.set_span_in_context(parent)
    inherited = _inherited(parent)
    now = time.time_ns()
    for artifact in artifacts:
        span = tracer.start_span(
            semconv.ARTIFACT_SPAN_PREFIX + artifact.kind,
            context=context,
            kind=SpanKind.INTERNAL,
            attributes=artifact.attributes() | inherited | context_attributes,
            start_time=artifact.time_ns or now,
        )
        span.end(end_time=max(now, artifact.time_ns or now))


_INHERITED = (
    semconv.GEN_AI_CONVERSATION_ID,
    semconv.MCP_SESSION_ID,
    semconv.GEN_AI_AGENT_ID,
    semconv.GEN_AI_AGENT_NAME,
    semconv.TASK_ID,
)


def _inherited(parent: trace.Span) -> dict[str, str]:
    """The session keys of the tool call's span (an SDK span exposes its attributes; others give none)."""
    attributes = getattr(parent, "attributes", None) or {}
    return {key: attributes[key] for key in _INHERITED if isinstance(attributes.get(key), str) and attributes[key]}
