"""Self-telemetry: counters the receivers and exporter update, exposed in the Prometheus text format on
the query API's ``/metrics`` and written every ``metrics.interval_seconds`` to ``collector_metrics``.

Written by hand (no prometheus_client dependency): a few counters with labels, two gauges and one
histogram. Pipeline figures are read from :class:`PipelineStats` at collection time, so the pipeline
needs no knowledge of this module.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from foothold.collector.pipeline import Batch, Exporter, Pipeline, PipelineStats

# Export latency buckets, seconds: an embedded insert takes milliseconds, a remote one under load seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]

# PipelineStats fields as metrics: (field, name, type, help). With PipelineStats.REFUSALS (one labelled
# counter) this is the one list behind /metrics and collector_metrics. rejected_spans is the receivers'
# foothold_spans_rejected_total; last_export_seconds is in foothold_export_duration_seconds.
PIPELINE_FIGURES = (
    ("accepted_spans", "foothold_spans_accepted_total", "counter", "spans accepted into the pipeline"),
    (
        "refused_spans",
        "foothold_spans_refused_total",
        "counter",
        "spans refused with 429/RESOURCE_EXHAUSTED (queue full)",
    ),
    ("exported_spans", "foothold_spans_exported_total", "counter", "spans written to the store"),
    ("exported_batches", "foothold_batches_exported_total", "counter", "batches written to the store"),
    (
        "export_failures",
        "foothold_export_failures_total",
        "counter",
        "failed store writes (each is retried with back-off)",
    ),
    ("lost_spans", "foothold_spans_lost_total", "counter", "accepted spans that could not be stored"),
    (
        "quarantined_spans",
        "foothold_spans_quarantined_total",
        "counter",
        "spans of requests the processors or the store failed on, kept in data_dir/quarantine",
    ),
    (
        "data_rejections",
        "foothold_store_data_rejections_total",
        "counter",
        "inserts the store refused for their content (split until the offending request is quarantined)",
    ),
    (
        "limit_refused_spans",
        "foothold_spans_limit_refused_total",
        "counter",
        "spans in requests over limits.max_spans_per_request",
    ),
    (
        "dropped_attributes",
        "foothold_attributes_dropped_total",
        "counter",
        "attributes dropped beyond limits.max_attributes_per_span",
    ),
    (
        "truncated_values",
        "foothold_values_truncated_total",
        "counter",
        "values cut at limits.max_attribute_value_bytes",
    ),
    (
        "truncated_nesting",
        "foothold_values_nesting_truncated_total",
        "counter",
        "values nested deeper than limits.max_nesting_depth",
    ),
    (
        "clamped_spans",
        "foothold_spans_time_clamped_total",
        "counter",
        "spans whose start time was outside the accepted window, moved to the receive time",
    ),
    ("replayed_spans", "foothold_spans_replayed_total", "counter", "spans found in the spool at start"),
    (
        "spool_truncated_bytes",
        "foothold_spool_truncated_bytes_total",
        "counter",
        "torn or corrupt spool bytes cut at start",
    ),
    (
        "spool_write_errors",
        "foothold_spool_write_errors_total",
        "counter",
        "failed spool writes or fsyncs (answered 429)",
    ),
    ("spool_bytes", "foothold_spool_bytes", "gauge", "bytes held in the on-disk spool"),
    ("store_up", "foothold_store_up", "gauge", "1 while the store is reachable, 0 while spans wait in the spool"),
)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class _Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    values: dict[Labels, float] = field(default_factory=dict)


class Metrics:
    """Thread-safe: receivers run on the event loop, the exporter on the pipeline's worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0
        self.pipeline: Pipeline | None = None
        for name, kind, text in (
            ("foothold_requests_total", "counter", "OTLP export requests by receiver and outcome"),
            ("foothold_spans_received_total", "counter", "spans in decodable OTLP requests, by receiver"),
            (
                "foothold_spans_rejected_total",
                "counter",
                "spans dropped for invalid ids (partial success), by receiver",
            ),
            ("foothold_auth_failures_total", "counter", "requests refused for a missing or invalid token, by listener"),
            (
                "foothold_queries_refused_total",
                "counter",
                "query API statements refused (not one read of the database)",
            ),
            ("foothold_export_attempts_total", "counter", "store writes attempted, by result"),
            (
                "foothold_connections_closed_total",
                "counter",
                "connections closed by the listener bounds, by listener and reason (connections config)",
            ),
            ("foothold_chain_links_total", "counter", "hash-chain links recorded in export_chain"),
            (
                "foothold_chain_mirror_failures_total",
                "counter",
                "chain links that could not be appended to chain.mirror_file",
            ),
        ):
            self._families[name] = _Family(name, kind, text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            values = self._families[name].values
            values[key] = values.get(key, 0.0) + amount

    def observe_export(self, seconds: float) -> None:
        with self._lock:
            self._bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds
            self._latency_count += 1

    # --- collection -------------------------------------------------------------------------------------

    def families(self) -> list[_Family]:
        """A consistent snapshot of every family, pipeline figures included."""
        with self._lock:
            out = [_Family(f.name, f.kind, f.help, dict(f.values)) for f in self._families.values()]
            buckets, total, count = list(self._bucket_counts), self._latency_sum, self._latency_count
        stats = self.pipeline.stats if self.pipeline is not None else None

        def stat(attr: str) -> float:
            return float(getattr(stats, attr, 0) or 0) if stats is not None else 0.0

        for attr, name, kind, text in PIPELINE_FIGURES:
            out.append(_Family(name, kind, text, {(): stat(attr)}))
        refused: dict[Labels, float] = {
            (("reason", reason),): stat(attr) for reason, attr in PipelineStats.REFUSALS.items()
        }
        out.append(_Family("foothold_requests_refused_total", "counter", "requests refused whole, by reason", refused))
        queued = float(self.pipeline.queued_spans) if self.pipeline is not None else 0.0
        out.append(_Family("foothold_queue_spans", "gauge", "spans accepted and not yet stored", {(): queued}))
        histogram = _Family("foothold_export_duration_seconds", "histogram", "duration of successful store writes")
        cumulative = 0
        for bound, n in zip((*LATENCY_BUCKETS, math.inf), buckets, strict=True):
            cumulative += n
            histogram.values[(("le", _number(bound)),)] = float(cumulative)
        histogram.values[(("__sum", ""),)] = total
        histogram.values[(("__count", ""),)] = float(count)
        out.append(histogram)
        return out

    def samples(self) -> Iterable[Sample]:
        """Flat samples (histograms as ``_bucket``/``_sum``/``_count``), the rows of ``collector_metrics``."""
        for family in self.families():
            for labels, value in family.values.items():
                yield Sample(*_sample_name(family, labels), value)

    def exposition(self) -> str:
        """The Prometheus text exposition format, version 0.0.4."""
        lines: list[str] = []
        for family in self.families():
            lines.append(f"# HELP {family.name} {family.help}")
            lines.append(f"# TYPE {family.name} {family.kind}")
            if not family.values and family.kind == "counter":
                continue
            for labels, value in family.values.items():
                name, label_map = _sample_name(family, labels)
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in label_map.items())
                lines.append(f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"


def _sample_name(family: _Family, labels: Labels) -> tuple[str, dict[str, str]]:
    if family.kind != "histogram":
        return family.name, dict(labels)
    key = labels[0][0]
    if key == "__sum":
        return family.name + "_sum", {}
    if key == "__count":
        return family.name + "_count", {}
    return family.name + "_bucket", dict(labels)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class TimedExporter:
    """Wraps the exporter: export latency histogram and attempts by result."""

    def __init__(self, inner: Exporter, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def export(self, batch: Batch) -> None:
        started = time.perf_counter()
        try:
            self._inner.export(batch)
        except Exception:
            self._metrics.inc("foothold_export_attempts_total", result="failure")
            raise
        self._metrics.observe_export(time.perf_counter() - started)
        self._metrics.inc("foothold_export_attempts_total", result="success")

    def __getattr__(self, name: str) -> object:  # tests reach through wrappers to the exporter they built
        return getattr(self._inner, name)
