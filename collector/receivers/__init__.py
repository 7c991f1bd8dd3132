"""OTLP receivers. Both decode, validate and hand over to the pipeline through :func:`ingest`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from foothold.collector.auth import Decoded
from foothold.collector.otlp import Accepted, BadRequest, LimitExceeded
from foothold.collector.pipeline import Pipeline, Submitted

RETRY_AFTER_FULL_SECONDS = 1
RETRY_AFTER_CLOSED_SECONDS = 5


class Verdict(Enum):
    OK = "ok"
    BAD_REQUEST = "bad_request"
    FULL = "full"
    CLOSED = "closed"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    message: str = ""
    accepted: Accepted | None = None


def ingest(pipeline: Pipeline, decode: Callable[[bytes], Decoded], body: bytes) -> Outcome:
    stats = pipeline.stats
    try:
        request, wire = decode(body)
        accepted = pipeline.signal.validate(request, pipeline.limits)  # traces or logs: the pipeline's signal
    except LimitExceeded as exc:
        stats.count_refusal("over_limits")
        stats.limit_refused_spans += exc.spans
        return Outcome(Verdict.BAD_REQUEST, str(exc))
    except BadRequest as exc:
        stats.count_refusal("malformed")
        return Outcome(Verdict.BAD_REQUEST, str(exc))
    stats.rejected_spans += accepted.rejected
    stats.clamped_spans += accepted.clamped
    if wire is not None and not accepted.changed:
        accepted = replace(accepted, payload=wire)  # the request is the received protobuf: spool it as is
    if accepted.spans == 0:  # nothing to keep: answer at once, even while full or closing
        return Outcome(Verdict.OK, accepted=accepted)
    submitted = pipeline.submit(accepted)
    if submitted is Submitted.FULL:
        return Outcome(Verdict.FULL, "collector queue is full; retry later")
    if submitted is Submitted.TOO_LARGE:
        return Outcome(Verdict.BAD_REQUEST, "request is larger than the whole spool (spool.max_bytes); split it")
    if submitted is Submitted.CLOSED:
        return Outcome(Verdict.CLOSED, "collector is shutting down; retry later")
    return Outcome(Verdict.OK, accepted=accepted)
