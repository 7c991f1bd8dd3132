"""Artifacts (files, processes, connections a tool call left behind) and their child spans."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
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
    note: str | None = None  # why there is no hash (a FIFO, a symlink, over the size cap...)

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
        if self.note is not None:
            attrs[semconv.ARTIFACT_NOTE] = self.note
        return attrs


@dataclass(frozen=True, slots=True)
class FileDigest:
    sha256: str | None
    size: int | None
    note: str | None = None  # set when there is no hash: what the path is, or why it was not read


_KINDS = (
    (stat.S_ISLNK, "a symlink"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)
# Never follow a link, never wait for a writer (a FIFO), never become the controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _special(mode: int) -> str | None:
    return next((name for test, name in _KINDS if test(mode)), None)


def file_digest(path: str, limit: int) -> FileDigest:
    """The sha256 and size of a regular file, read at most ``limit`` bytes; anything else gets a note.

    Hostile paths are the point: a repository can commit ``AGENTS.md -> /dev/zero`` (reading it never ends)
    and ``mkfifo ~/.ssh/authorized_keys`` blocks an ``open``. So the path is ``lstat``-ed first and only a
    regular file is opened, without following a symlink swapped in since (O_NOFOLLOW) and without blocking
    (O_NONBLOCK); ``fstat`` on the open descriptor confirms it is the regular file it claimed to be."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return FileDigest(None, None, f"not hashed: {exc.strerror or exc}")
    special = _special(st.st_mode)
    if special is not None:
        return FileDigest(None, None, f"not hashed: {special}{_link_target(path, st.st_mode)}")
    if st.st_size > limit:
        return FileDigest(None, st.st_size, f"not hashed: over the {limit}-byte hash limit")
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        reason = "a symlink" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        return FileDigest(None, st.st_size, f"not hashed: {reason}")
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # swapped between the lstat and the open
            return FileDigest(None, None, f"not hashed: {_special(opened.st_mode) or 'not a regular file'}")
        digest, read = hashlib.sha256(), 0
        while chunk := os.read(fd, _CHUNK):
            read += len(chunk)
            if read > limit:  # grew while being read
                return FileDigest(None, read, f"not hashed: over the {limit}-byte hash limit")
            digest.update(chunk)
    except OSError as exc:
        return FileDigest(None, st.st_size, f"not hashed: {exc.strerror or exc}")
    finally:
        os.close(fd)
    return FileDigest(digest.hexdigest(), read)


def _link_target(path: str, mode: int) -> str:
    if not stat.S_ISLNK(mode):
        return ""
    try:
        return f" to {os.readlink(path)}, not followed"
    except OSError:
        return ", not followed"


def hash_file(path: str, limit: int) -> tuple[str | None, int | None]:
    """(sha256, size) of a regular file; no hash for anything else or past ``limit`` bytes (see file_digest)."""
    digest = file_digest(path, limit)
    return digest.sha256, digest.size


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
    tracer: trace.Tracer,
    parent: trace.Span,
    artifacts: Iterable[Artifact],
    context_attributes: dict[str, str | int | bool],
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


def _inherited(parent: trace.Span) -> dict[str, str | int | bool]:
    """The session keys of the tool call's span (an SDK span exposes its attributes; others give none)."""
    attributes = getattr(parent, "attributes", None) or {}
    return {key: attributes[key] for key in _INHERITED if isinstance(attributes.get(key), str) and attributes[key]}
