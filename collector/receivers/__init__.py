"""OTLP receivers. Both decode, validate and hand over to the pipeline through :func:`ingest`, and count each
request they answer exactly once (:func:`count_answer`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from foothold.collector import metrics as m
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
    reason: str = ""  # BAD_REQUEST: a metrics.REFUSAL_REASONS entry


def ingest(
    pipeline: Pipeline, decode: Callable[[bytes], Decoded], body: bytes, metrics: m.Metrics, receiver: str
) -> Outcome:
    try:
        request, wire = decode(body)
        accepted = pipeline.signal.validate(request, pipeline.limits)  # traces or logs: the pipeline's signal
    except LimitExceeded as exc:
        metrics.record(m.SPANS_LIMIT_REFUSED, exc.spans, receiver=receiver)
        return Outcome(Verdict.BAD_REQUEST, str(exc), reason="over_limits")
    except BadRequest as exc:
        return Outcome(Verdict.BAD_REQUEST, str(exc), reason="malformed")
    if accepted.rejected:
        metrics.record(m.SPANS_REJECTED, accepted.rejected, receiver=receiver)
    if accepted.clamped:
        metrics.record(m.SPANS_TIME_CLAMPED, accepted.clamped, receiver=receiver)
    if wire is not None and not accepted.changed:
        accepted = replace(accepted, payload=wire)  # the request is the received protobuf: spool it as is
    if accepted.spans == 0:  # nothing to keep: answer at once, even while full or closing
        return Outcome(Verdict.OK, accepted=accepted)
    submitted = pipeline.submit(accepted)
    if submitted is Submitted.FULL:
        return Outcome(Verdict.FULL, "collector queue is full; retry later")
    if submitted is Submitted.TOO_LARGE:
        message = "request is larger than the whole spool (spool.max_bytes); split it"
        return Outcome(Verdict.BAD_REQUEST, message, reason="too_large")
    if submitted is Submitted.CLOSED:
        return Outcome(Verdict.CLOSED, "collector is shutting down; retry later")
    if submitted is Submitted.UNAVAILABLE:
        return Outcome(Verdict.CLOSED, "collector's redaction workers failed on this request; retry later")
    return Outcome(Verdict.OK, accepted=accepted)


def count_answer(metrics: m.Metrics, receiver: str, outcome: Outcome) -> None:
    """One count per answered request: refused whole (by reason), or taken (by outcome)."""
    if outcome.verdict is Verdict.BAD_REQUEST:
        metrics.record(m.REQUESTS_REFUSED, receiver=receiver, reason=outcome.reason)
    else:
        metrics.record(m.REQUESTS, receiver=receiver, outcome=outcome.verdict.value)


def start_receiver_series(metrics: m.Metrics, receiver: str) -> None:
    """Every series a receiver counts, at zero from its start."""
    for metric in (m.SPANS_RECEIVED, m.SPANS_REJECTED, m.SPANS_LIMIT_REFUSED, m.SPANS_TIME_CLAMPED):
        metrics.start_series(metric, receiver=receiver)
    for outcome in m.REQUEST_OUTCOMES:
        metrics.start_series(m.REQUESTS, receiver=receiver, outcome=outcome)
    for reason in m.REFUSAL_REASONS:
        metrics.start_series(m.REQUESTS_REFUSED, receiver=receiver, reason=reason)
    for reason in m.AUTH_FAILURE_REASONS:
        metrics.start_series(m.AUTH_FAILURES, listener=receiver, reason=reason)
