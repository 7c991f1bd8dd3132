"""Self-telemetry: every metric the collector keeps is declared once below, and recorded through
:meth:`Metrics.record`. ``/metrics`` (Prometheus text), the ``collector_metrics`` table, ``/healthz`` and the
tests all read the same registry, so a figure cannot be counted in one place and missed in another.

Labels say where a figure comes from: ``receiver`` (``otlp_grpc``, ``otlp_http``) for what the receivers
count per request, ``signal`` (``traces``, ``logs``) for what a pipeline counts, ``listener`` for what every
listener (the query API included) counts. Written by hand (no prometheus_client dependency): a few counters,
three gauges and one histogram.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum


class Kind(Enum):
    COUNTER = "counter"  # recorded amounts add up
    GAUGE = "gauge"  # the recorded value replaces the last one
    HISTOGRAM = "histogram"  # each recorded value is one observation


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


COUNTER, GAUGE, HISTOGRAM = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM

# --- the declaration ----------------------------------------------------------------------------------------
# Requests: each one a receiver answers is counted exactly once, in one of these three.
REQUESTS = Metric(
    "foothold_requests_total",
    COUNTER,
    "OTLP export requests taken by a receiver, by outcome (ok; full: 429; closed: 503)",
    ("receiver", "outcome"),
)
REQUESTS_REFUSED = Metric(
    "foothold_requests_refused_total",
    COUNTER,
    "OTLP export requests refused whole, by receiver and reason (see REFUSAL_REASONS)",
    ("receiver", "reason"),
)
AUTH_FAILURES = Metric(
    "foothold_auth_failures_total",
    COUNTER,
    "requests refused for a missing or invalid token (401 / UNAUTHENTICATED), by listener and reason",
    ("listener", "reason"),
)
# Spans (log records, for the logs signal) at the receivers
SPANS_RECEIVED = Metric(
    "foothold_spans_received_total", COUNTER, "spans in decodable OTLP requests, by receiver", ("receiver",)
)
SPANS_REJECTED = Metric(
    "foothold_spans_rejected_total",
    COUNTER,
    "spans dropped for invalid ids or times (partial success), by receiver",
    ("receiver",),
)
SPANS_LIMIT_REFUSED = Metric(
    "foothold_spans_limit_refused_total",
    COUNTER,
    "spans in requests over limits.max_spans_per_request",
    ("receiver",),
)
SPANS_TIME_CLAMPED = Metric(
    "foothold_spans_time_clamped_total",
    COUNTER,
    "spans whose start time was outside the accepted window, moved to the receive time",
    ("receiver",),
)
# The pipeline of each signal: spool, batches, processors, exporter
SPANS_ACCEPTED = Metric("foothold_spans_accepted_total", COUNTER, "spans accepted into the pipeline", ("signal",))
SPANS_REFUSED = Metric(
    "foothold_spans_refused_total", COUNTER, "spans refused with 429/RESOURCE_EXHAUSTED (queue full)", ("signal",)
)
SPANS_EXPORTED = Metric("foothold_spans_exported_total", COUNTER, "spans written to the store", ("signal",))
BATCHES_EXPORTED = Metric("foothold_batches_exported_total", COUNTER, "batches written to the store", ("signal",))
EXPORT_FAILURES = Metric(
    "foothold_export_failures_total", COUNTER, "failed store writes (each is retried with back-off)", ("signal",)
)
DATA_REJECTIONS = Metric(
    "foothold_store_data_rejections_total",
    COUNTER,
    "inserts the store refused for their content (split until the offending request is quarantined)",
    ("signal",),
)
SPANS_LOST = Metric("foothold_spans_lost_total", COUNTER, "accepted spans that could not be stored", ("signal",))
SPANS_QUARANTINED = Metric(
    "foothold_spans_quarantined_total",
    COUNTER,
    "spans of requests the processors or the store failed on, kept in data_dir/quarantine",
    ("signal",),
)
ATTRIBUTES_DROPPED = Metric(
    "foothold_attributes_dropped_total",
    COUNTER,
    "attributes dropped beyond limits.max_attributes_per_span",
    ("signal",),
)
VALUES_TRUNCATED = Metric(
    "foothold_values_truncated_total", COUNTER, "values cut at limits.max_attribute_value_bytes", ("signal",)
)
VALUES_NESTING_TRUNCATED = Metric(
    "foothold_values_nesting_truncated_total",
    COUNTER,
    "values nested deeper than limits.max_nesting_depth",
    ("signal",),
)
SPANS_REPLAYED = Metric("foothold_spans_replayed_total", COUNTER, "spans found in the spool at start", ("signal",))
SPOOL_TRUNCATED_BYTES = Metric(
    "foothold_spool_truncated_bytes_total", COUNTER, "torn or corrupt spool bytes cut at start", ("signal",)
)
SPOOL_WRITE_ERRORS = Metric(
    "foothold_spool_write_errors_total", COUNTER, "failed spool writes or fsyncs (answered 429)", ("signal",)
)
QUEUE_SPANS = Metric("foothold_queue_spans", GAUGE, "spans accepted and not yet stored", ("signal",))
SPOOL_BYTES = Metric("foothold_spool_bytes", GAUGE, "bytes held in the on-disk spool", ("signal",))
EXPORT_DURATION = Metric(
    "foothold_export_duration_seconds",
    HISTOGRAM,
    "duration of successful store writes (chain link included)",
    ("signal",),
)
# The store, the listeners, the query API, the chain
STORE_UP = Metric("foothold_store_up", GAUGE, "1 while the store is reachable, 0 while spans wait in the spool")
CONNECTIONS_CLOSED = Metric(
    "foothold_connections_closed_total",
    COUNTER,
    "connections closed by the listener bounds, by listener and reason (connections config)",
    ("listener", "reason"),
)
QUERIES_REFUSED = Metric(
    "foothold_queries_refused_total", COUNTER, "query API statements refused (not one read of the database)"
)
CHAIN_LINKS = Metric("foothold_chain_links_total", COUNTER, "hash-chain links recorded in export_chain")
CHAIN_MIRROR_FAILURES = Metric(
    "foothold_chain_mirror_failures_total", COUNTER, "chain links that could not be appended to chain.mirror_file"
)

METRICS: tuple[Metric, ...] = tuple(value for value in dict(globals()).values() if isinstance(value, Metric))

# The reason label of REQUESTS_REFUSED (a 401 is AUTH_FAILURES: it carries the token's reason instead)
REFUSAL_REASONS = ("malformed", "over_limits", "too_large", "unsupported_media_type", "bad_encoding")
AUTH_FAILURE_REASONS = ("missing", "invalid")
REQUEST_OUTCOMES = ("ok", "full", "closed")

# Export latency buckets, seconds: an embedded insert takes milliseconds, a remote one under load seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    """One exposed value: a counter's or gauge's, or a histogram's ``_bucket``/``_sum``/``_count``."""

    name: str
    labels: dict[str, str]
    value: float

    @property
    def key(self) -> str:
        """``name{label="value",...}``, as the Prometheus text format writes it."""
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{rendered}}}" if rendered else self.name


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0


class Metrics:
    """The collector's registry of :data:`METRICS`. Thread-safe: receivers run on the event loop, pipelines on
    their worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Metric, dict[Labels, float]] = {m: {} for m in METRICS if m.kind is not HISTOGRAM}
        self._histograms: dict[Metric, dict[Labels, _Histogram]] = {m: {} for m in METRICS if m.kind is HISTOGRAM}
        for metric in METRICS:
            if not metric.labels:
                self.start_series(metric)

    def record(self, metric: Metric, value: float = 1.0, **labels: str) -> None:
        """The one way to record: a counter adds ``value``, a gauge is set to it, a histogram observes it."""
        key = _labels(metric, labels)
        with self._lock:
            if metric.kind is COUNTER:
                series = self._values[metric]
                series[key] = series.get(key, 0.0) + value
            elif metric.kind is GAUGE:
                self._values[metric][key] = value
            else:
                histogram = self._histograms[metric].setdefault(key, _Histogram())
                histogram.buckets[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
                histogram.total += value
                histogram.count += 1

    def start_series(self, metric: Metric, **labels: str) -> None:
        """Expose a series at zero before anything is recorded in it, so dashboards see 0 rather than nothing."""
        key = _labels(metric, labels)
        with self._lock:
            if metric.kind is HISTOGRAM:
                self._histograms[metric].setdefault(key, _Histogram())
            else:
                self._values[metric].setdefault(key, 0.0)

    def value(self, metric: Metric, **labels: str) -> float:
        """A counter's or gauge's current value (a histogram's observation count), 0 if never recorded."""
        key = _labels(metric, labels)
        with self._lock:
            if metric.kind is HISTOGRAM:
                histogram = self._histograms[metric].get(key)
                return float(histogram.count) if histogram else 0.0
            return self._values[metric].get(key, 0.0)

    # --- collection -------------------------------------------------------------------------------------

    def _snapshot(self) -> list[tuple[Metric, list[Sample]]]:
        with self._lock:
            out = []
            for metric in METRICS:
                if metric.kind is HISTOGRAM:
                    samples = [s for key, h in self._histograms[metric].items() for s in _histogram(metric, key, h)]
                else:
                    samples = [Sample(metric.name, dict(key), v) for key, v in self._values[metric].items()]
                out.append((metric, samples))
        return out

    def samples(self) -> Iterator[Sample]:
        """Flat samples (histograms as ``_bucket``/``_sum``/``_count``), the rows of ``collector_metrics``."""
        for _metric, samples in self._snapshot():
            yield from samples

    def snapshot(self) -> dict[str, float]:
        """Every sample by its Prometheus key (``name{label="value"}``): ``/healthz`` and tests read this."""
        return {sample.key: sample.value for sample in self.samples()}

    def exposition(self) -> str:
        """The Prometheus text exposition format, version 0.0.4."""
        lines: list[str] = []
        for metric, samples in self._snapshot():
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.append(f"# TYPE {metric.name} {metric.kind.value}")
            lines += [f"{sample.key} {_number(sample.value)}" for sample in samples]
        return "\n".join(lines) + "\n"


def _labels(metric: Metric, labels: dict[str, str]) -> Labels:
    if len(labels) != len(metric.labels) or not all(name in labels for name in metric.labels):
        raise ValueError(f"{metric.name} takes the labels {list(metric.labels)}, got {sorted(labels)}")
    return tuple((name, labels[name]) for name in metric.labels)


def _histogram(metric: Metric, key: Labels, histogram: _Histogram) -> Iterator[Sample]:
    cumulative = 0
    for bound, n in zip((*LATENCY_BUCKETS, math.inf), histogram.buckets, strict=True):
        cumulative += n
        yield Sample(metric.name + "_bucket", dict(key) | {"le": _number(bound)}, float(cumulative))
    yield Sample(metric.name + "_sum", dict(key), histogram.total)
    yield Sample(metric.name + "_count", dict(key), float(histogram.count))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
