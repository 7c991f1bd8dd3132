"""The batching stage between receivers and the exporter.

Receivers hand over validated requests; the pipeline appends each one to the durable spool
(:mod:`foothold.collector.spool`) and answers the client only once its bytes are on disk. One worker
thread gathers the spooled requests into batches (by spans, bytes or age), flattens them to columns, runs the
processors and exports; the spool checkpoint then moves past the batch. A store that is slow or down is
retried with back-off while the batch is held; the spool (and ``batch.max_queued_spans``) then fills and
receivers answer 429 with Retry-After, so clients keep the data instead of it being dropped here.

Memory stays bounded: queued requests are kept as their protobuf bytes (decoded only when a batch is formed),
in memory up to ``batch.max_queued_spans`` and ``batch.max_queued_memory_bytes``; records beyond that, and
everything found in the spool at start, are read back from disk one batch at a time.
Each batch is a fixed range of spool records, written to the checkpoint before the insert, and carries an
insert deduplication token derived from it: after a crash the same range is re-formed, and a re-insert of
a batch that had already been stored is dropped by ClickHouse instead of duplicated.

With ``spool.enabled: false`` the pipeline is memory-only (the queue is lost on a crash).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector import metrics as m
from foothold.collector.config import BatchConfig, LimitsConfig, SpoolConfig
from foothold.collector.otlp import Accepted
from foothold.collector.otlp import validate as validate_traces
from foothold.collector.processing import Workers, WorkersUnavailable
from foothold.collector.rows import SpanBatch, to_batch
from foothold.collector.spool import Spool, SpoolFull
from foothold.collector.store_errors import DataRejected

if TYPE_CHECKING:
    from foothold.collector.log_rows import LogBatch

log = logging.getLogger("foothold.collector.pipeline")


# What a pipeline carries: a SpanBatch (traces) or a LogBatch (logs), the same column-wise shape.
Batch: TypeAlias = "SpanBatch | LogBatch"
# Scrubs a request of the pipeline's signal in place (an ExportTrace- or ExportLogsServiceRequest); True: changed.
Redactor = Callable[[Any], bool]


class Processor(Protocol):
    """Enriches, classifies or marks a batch in place before export. Processors read the columns both batch
    kinds share, so one chain serves traces and logs; each declares the kind it was written against."""

    def process(self, batch: Any) -> None: ...


class Exporter(Protocol):
    """Writes a batch; raises on failure so the pipeline retries the same batch, or raises
    :class:`DataRejected` when the store refused the batch for its content (the pipeline then splits it).
    Each exporter takes its signal's batch kind (a SpanBatch or a LogBatch)."""

    def export(self, batch: Any) -> None: ...


class Submitted(Enum):
    OK = "ok"
    FULL = "full"  # retry later: 429 / RESOURCE_EXHAUSTED
    CLOSED = "closed"  # shutting down: 503 / UNAVAILABLE
    TOO_LARGE = "too_large"  # bigger than the whole spool: 400, retrying cannot help
    UNAVAILABLE = "unavailable"  # the redaction workers keep dying: 503 / UNAVAILABLE, retry later


@dataclass(frozen=True)
class Signal:
    """What a pipeline carries: how a spooled request is read back, flattened, and re-sent from quarantine."""

    name: str  # "traces" | "logs"
    parse: Callable[[bytes], object]  # a queued or spooled request's protobuf -> the request
    flatten: Callable[..., Batch]  # (requests, limits=) -> the batch the processors and exporter take
    validate: Callable[..., Accepted]  # (decoded request, limits) -> what to keep and answer
    path: str = "/v1/traces"


TRACES = Signal(
    "traces",
    ExportTraceServiceRequest.FromString,
    lambda requests, limits: to_batch(requests, limits=limits),
    validate_traces,
)


def _logs_signal() -> Signal:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from foothold.collector.log_rows import to_log_batch
    from foothold.collector.otlp_logs import validate

    def flatten(requests: Iterable[ExportLogsServiceRequest], limits: LimitsConfig) -> LogBatch:
        return to_log_batch(requests, limits=limits)

    return Signal("logs", ExportLogsServiceRequest.FromString, flatten, validate, "/v1/logs")


LOGS = _logs_signal()


@dataclass(frozen=True, slots=True)
class _Item:
    """A queued request as protobuf bytes: a decoded span costs ~6 KiB of Python objects, its bytes ~0.7 KiB."""

    seq: int
    payload: bytes
    spans: int


def open_spool(data_dir: Path, config: SpoolConfig, name: str = "spool") -> Spool | None:
    """The spool under ``data_dir/name``: one per signal (``spool`` for traces, ``spool-logs`` for logs)."""
    return Spool.open(Path(data_dir) / name, config) if config.enabled else None


class Pipeline:
    def __init__(
        self,
        config: BatchConfig,
        exporter: Exporter | None,  # None: the store is not reachable yet, batches wait (attach_exporter)
        processors: Sequence[Processor] = (),
        *,
        spool: Spool | None = None,
        limits: LimitsConfig | None = None,
        quarantine_dir: Path | None = None,
        signal: Signal = TRACES,
        redactor: Redactor | None = None,
        workers: Workers | None = None,
        metrics: m.Metrics | None = None,
    ) -> None:
        self.signal = signal
        self._config = config
        # Scrubs a request in place before it is spooled (True: something changed), so no secret rests in
        # the spool, the quarantine or the store (foothold.collector.processors.redact).
        self._redactor = redactor
        # With worker processes (pipeline.workers > 0) the same redaction runs in them, off this interpreter.
        self._workers = workers if workers is not None and workers.count else None
        self._exporter = exporter
        self._processors = tuple(processors)
        self.limits = limits or LimitsConfig()
        self.spool = spool
        self.quarantine_dir = quarantine_dir
        self.metrics = metrics or m.Metrics()
        self._signal_label = {"signal": signal.name}
        for metric in m.METRICS:
            if metric.labels == ("signal",):
                self.metrics.start_series(metric, signal=signal.name)
        self._cond = threading.Condition()
        # Records are numbered (the spool's sequence numbers). The worker takes them in order from _cursor.
        # In memory: _memory, records [_mem_lo, _mem_hi). Only on disk: [_cursor, _mem_lo), and, when
        # the memory queue was full, [_mem_hi, _next_seq).
        start = spool.committed if spool else 0
        self._next_seq = spool.next_seq if spool else 0
        self._durable = self._next_seq  # records below are durable: only those are exported
        self._cursor = start
        self._memory: deque[_Item] = deque()
        self._mem_lo = self._mem_hi = self._next_seq
        self._memory_spans = 0
        self._memory_bytes = 0
        self._queued_spans = spool.backlog_spans if spool else 0  # accepted, not yet exported (incl. in flight)
        self._done = start  # records below are exported (or given up)
        self._replay_batch = spool.pending_batch if spool else None  # re-form exactly this batch first
        self._oldest_at = 0.0  # monotonic arrival of the oldest request waiting in memory
        self._flush_waiters = 0
        self._appending = 0  # submits between the queue check and their answer (writing, syncing)
        self._closing = False
        self._abandon = threading.Event()  # set when close() runs out of time with the store down
        self._nudge = threading.Event()  # ends a retry back-off early (a new exporter, or close giving up)
        if spool:
            self._record(m.SPANS_REPLAYED, spool.backlog_spans)
            self._record(m.SPOOL_BYTES, spool.used_bytes)
            self._record(m.SPOOL_TRUNCATED_BYTES, spool.truncated_bytes)
            self._record(m.QUEUE_SPANS, self._queued_spans)
        self._worker = threading.Thread(target=self._run, name=f"foothold-exporter-{signal.name}", daemon=True)

    async def start(self) -> None:
        """Start the worker: it replays what the spool holds, then exports what is submitted."""
        self._worker.start()

    async def stop(self) -> None:
        """Stop taking data and export what was accepted (:meth:`close`). Without an exporter there is nothing to
        wait for: what is queued stays in the spool for the next start."""
        await asyncio.to_thread(self.close, 30.0 if self._exporter is not None else 0.5)

    @property
    def queued_spans(self) -> int:
        return self._queued_spans

    def _record(self, metric: m.Metric, value: float = 1.0) -> None:
        self.metrics.record(metric, value, **self._signal_label)

    def _redacted(self, accepted: Accepted) -> bytes:
        """The request's protobuf as it may be kept: redacted, in a worker process when there are any."""
        if self._workers is not None:
            return self._workers.redact(self.signal.name, accepted.encoded())
        if self._redactor is not None and self._redactor(accepted.request):
            return replace(accepted, payload=b"").encoded()  # the received bytes hold what was redacted: re-encode
        return accepted.encoded()

    def submit(self, accepted: Accepted) -> Submitted:
        try:
            payload = self._redacted(accepted)
        except WorkersUnavailable as exc:
            log.error("%s", exc)
            return Submitted.UNAVAILABLE
        spans = accepted.spans
        if self.spool is None:
            return self._submit_memory(payload, spans)
        with self._cond:
            if self._closing:
                return Submitted.CLOSED
            if self._queued_spans + spans > self._config.max_queued_spans and self._queued_spans:
                self._record(m.SPANS_REFUSED, spans)
                return Submitted.FULL
            self._queued_spans += spans  # reserved now, so concurrent submits see the queue bound
            self._appending += 1
        try:
            # The write and the fsync run outside the pipeline's lock, so receivers do not queue behind one
            # another's disk I/O and the worker is never held up by it. The record joins the queue from
            # inside the spool's lock (_enqueue), so the queue sees records in sequence order.
            try:
                seq = self.spool.append(payload, spans, on_append=lambda seq: self._enqueue(seq, payload, spans))
            except (SpoolFull, OSError) as exc:  # SpoolError is an OSError; so is a failed fsync on a segment roll
                with self._cond:
                    self._queued_spans -= spans
                    self._record(m.SPANS_REFUSED, spans)
                    if isinstance(exc, SpoolFull) and exc.too_large:
                        return Submitted.TOO_LARGE
                    if isinstance(exc, SpoolFull):
                        return Submitted.FULL
                log.error("%s; answering 429 so the client keeps the data", exc)
                self._record(m.SPOOL_WRITE_ERRORS)
                return Submitted.FULL
            try:
                self.spool.sync(seq)  # no answer before the bytes are durable (group commit: one fsync for many)
            except OSError as exc:
                log.error("spool fsync failed (%s); answering 429 so the client keeps the data", exc)
                self._record(m.SPOOL_WRITE_ERRORS)
                return Submitted.FULL
            return Submitted.OK
        finally:
            with self._cond:
                self._appending -= 1
                durable = self.spool.durable_seq  # only fsync'ed records are ever handed to the worker
                if durable > self._durable:
                    self._durable = durable
                    self._cond.notify_all()
                elif self._closing and not self._appending:
                    self._cond.notify_all()  # close() waits for the last write to finish

    def _enqueue(self, seq: int, payload: bytes, spans: int) -> None:
        """Record ``seq`` is written (not yet durable): queue it. Runs under the spool's append lock."""
        with self._cond:
            self._next_seq = seq + 1
            self._queue_item(_Item(seq, payload, spans))
            self._record(m.SPANS_ACCEPTED, spans)
            self._record(m.QUEUE_SPANS, self._queued_spans)
            self._record(m.SPOOL_BYTES, self.spool.used_bytes if self.spool else 0)

    def _fits_memory(self, spans: int, size: int) -> bool:
        return not self._memory or (
            self._memory_spans + spans <= self._config.max_queued_spans
            and self._memory_bytes + size <= self._config.max_queued_memory_bytes
        )

    def _queue_item(self, item: _Item) -> None:
        """Keep the record in memory when it continues the memory run and fits; else it waits on disk only."""
        if not self._memory and self._mem_hi != item.seq:
            self._mem_lo = self._mem_hi = item.seq  # everything before this is taken or read from disk
        if self._mem_hi == item.seq and self._fits_memory(item.spans, len(item.payload)):
            if not self._memory:
                self._oldest_at = time.monotonic()
            self._memory.append(item)
            self._mem_hi = item.seq + 1
            self._memory_spans += item.spans
            self._memory_bytes += len(item.payload)

    def _submit_memory(self, payload: bytes, spans: int) -> Submitted:
        """Without a spool: the queue is the only copy, bounded in spans and in bytes."""
        with self._cond:
            if self._closing:
                return Submitted.CLOSED
            if not self._fits_memory(spans, len(payload)) or (
                self._queued_spans + spans > self._config.max_queued_spans and self._queued_spans
            ):
                self._record(m.SPANS_REFUSED, spans)
                return Submitted.FULL
            seq = self._next_seq
            self._next_seq = seq + 1
            self._queue_item(_Item(seq, payload, spans))
            self._queued_spans += spans
            self._record(m.SPANS_ACCEPTED, spans)
            self._record(m.QUEUE_SPANS, self._queued_spans)
            self._durable = self._next_seq
            if self._memory_full():
                self._cond.notify_all()
        return Submitted.OK

    def attach_exporter(self, exporter: Exporter) -> None:
        """Export through ``exporter`` from now on (the store became reachable): the held batch is retried now."""
        self._exporter = exporter
        self._nudge.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Export everything submitted so far; True when it is all stored."""
        with self._cond:
            target = self._next_seq
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float = 30.0) -> int:
        """Stop taking data, export what was accepted; returns the spans that could not be kept.

        With the spool, spans the store could not take in time stay on disk for the next start: not lost.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._worker.ident is not None:  # started
            self._worker.join(timeout)
        if self._worker.is_alive():
            self._abandon.set()
            self._nudge.set()
            self._worker.join(self._config.retry_max_seconds + 5)
        with self._cond:
            # a submit that passed the closing check finishes its write and fsync before the spool closes
            self._cond.wait_for(lambda: not self._appending, timeout)
            left = self._queued_spans
        if self.spool is not None:
            if left:
                log.warning("shutdown: %d accepted span(s) stay in the spool and are exported at the next start", left)
            self.spool.close()
            return 0
        self._record(m.SPANS_LOST, left)
        if left:
            log.error("shutdown: %d accepted span(s) could not be written to the store", left)
        return left

    # --- worker ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            first, end, items = taken
            spans = sum(item.spans for item in items)
            if self.spool is not None:
                self.spool.begin_batch(first, end)
            try:
                self._deliver(items, first, end)
            except _Abandoned:
                return
            if self.spool is not None:
                try:
                    self.spool.commit(end)
                    self._record(m.SPOOL_BYTES, self.spool.used_bytes)
                except OSError:
                    log.exception(
                        "cannot advance the spool checkpoint; the batch may be replayed (deduplicated) at start"
                    )
            with self._cond:
                self._queued_spans -= spans
                self._done = max(self._done, end)
                self._record(m.QUEUE_SPANS, self._queued_spans)
                self._cond.notify_all()

    def _deliver(self, items: list[_Item], first: int, end: int) -> None:
        """Export records ``[first, end)``. A part the processors fail on, or the store refuses for its content
        (:class:`DataRejected`), is halved until each offending request stands alone; those are quarantined.

        Retrying such a part could never succeed: it would wedge the pipeline for every sender. The halving is
        deterministic, so a crash in the middle re-forms the same parts with the same deduplication tokens.
        """
        pending = [(items, first, end)]
        while pending:
            part, lo, hi = pending.pop()
            try:
                self._export_with_retry(part, lo, hi)
            except _Abandoned:
                raise
            except Exception as exc:  # a processor bug or DataRejected: in the data, not the store's health
                spans = sum(item.spans for item in part)
                if len(part) > 1:
                    log.warning(
                        "a batch of %d request(s) failed on its content (%s); splitting it to find the offending one",
                        len(part),
                        _first_line(exc),
                    )
                    middle = len(part) // 2
                    pending.append((part[middle:], part[middle].seq, hi))
                    pending.append((part[:middle], lo, part[middle].seq))
                    continue
                if isinstance(exc, DataRejected):
                    log.error("the store refused request %d for its content: %s", part[0].seq, _first_line(exc))
                else:
                    log.exception("a request of %d span(s) could not be processed", spans)
                self._quarantine(part, spans)

    def _quarantine(self, items: list[_Item], spans: int) -> None:
        """Keep requests that cannot be processed or stored as OTLP/protobuf files (fsync'ed before the spool
        moves past them), to re-send once the cause is fixed: POST each to the signal's path."""
        if self.quarantine_dir is None:
            self._record(m.SPANS_LOST, spans)
            return
        stamp = time.time_ns()
        try:
            self.quarantine_dir.mkdir(parents=True, exist_ok=True)
            for item in items:
                _write_durably(self.quarantine_dir / f"{stamp}-{item.seq}.otlp.pb", item.payload)
        except OSError as exc:
            log.error("cannot quarantine the batch in %s (%s): %d span(s) lost", self.quarantine_dir, exc, spans)
            self._record(m.SPANS_LOST, spans)
            return
        self._record(m.SPANS_QUARANTINED, spans)
        log.error(
            "kept the batch's %d request(s) in %s: after the fix, re-send each with "
            "curl --data-binary @FILE -H 'Content-Type: application/x-protobuf' http://<collector>:4318%s",
            len(items),
            self.quarantine_dir,
            self.signal.path,
        )

    def _disk_bound(self) -> int:
        """Records in [_cursor, bound) are to be read from disk."""
        return self._mem_lo if self._memory else self._durable

    def _ready(self) -> bool:
        if self._replay_batch is not None or self._cursor < self._disk_bound():
            return True  # a backlog on disk: no reason to wait
        if not self._memory or self._memory[0].seq >= self._durable:
            return False
        old_enough = time.monotonic() - self._oldest_at >= self._config.timeout_seconds
        return old_enough or self._closing or self._flush_waiters > 0 or self._memory_full()

    def _memory_full(self) -> bool:
        """A batch's worth is waiting, or the memory queue is at its byte bound (more may wait on disk)."""
        return (
            self._memory_spans >= self._config.max_spans
            or self._memory_bytes >= min(self._config.max_batch_bytes, self._config.max_queued_memory_bytes // 2)
            or self._mem_hi < self._durable
        )

    def _take(self) -> tuple[int, int, list[_Item]] | None:
        with self._cond:
            while not self._ready():
                if self._closing and not (self._memory and self._memory[0].seq < self._durable):
                    return None
                wait = None
                if self._memory:
                    wait = max(0.0, self._config.timeout_seconds - (time.monotonic() - self._oldest_at))
                self._cond.wait(wait)
            if self._replay_batch is not None:
                first, end = self._replay_batch
                self._replay_batch = None
                stop, max_spans = min(end, self._disk_bound()), None
            elif self._cursor < self._disk_bound():
                first, stop, max_spans = self._cursor, self._disk_bound(), self._config.max_spans
            else:
                taken: list[_Item] = []
                spans = size = 0
                while (
                    self._memory
                    and self._memory[0].seq < self._durable
                    and (
                        not taken
                        or (
                            spans + self._memory[0].spans <= self._config.max_spans
                            and size + len(self._memory[0].payload) <= self._config.max_batch_bytes
                        )
                    )
                ):
                    item = self._memory.popleft()
                    taken.append(item)
                    spans += item.spans
                    size += len(item.payload)
                self._memory_bytes -= size
                self._memory_spans -= spans
                self._cursor = taken[-1].seq + 1
                if not self._memory:
                    self._mem_lo = self._mem_hi = self._next_seq  # anything after is on disk only
                self._oldest_at = time.monotonic()
                return taken[0].seq, self._cursor, taken
        # A disk read: only this thread moves the cursor, so the file is read without the lock.
        max_bytes = None if max_spans is None else self._config.max_batch_bytes
        assert self.spool is not None  # only a spool leaves records on disk
        records = self.spool.read(first, stop, max_spans, max_bytes) if first < stop else []
        items = [_Item(r.seq, r.request, r.spans) for r in records]
        end = end if max_spans is None else (records[-1].seq + 1 if records else stop)
        with self._cond:
            self._cursor = max(self._cursor, end)
        return first, end, items

    def process_batch(self, taken: Sequence[_Item]) -> Batch:
        """The processing seam: spooled requests -> one batch, through every processor in order.

        Decoded here, one batch at a time: the queue holds bytes. Raising (a payload that fails to decode, a
        processor bug) makes :meth:`_deliver` split the batch and quarantine the offending request."""
        batch = self.signal.flatten((self.signal.parse(item.payload) for item in taken), limits=self.limits)
        for processor in self._processors:
            processor.process(batch)
        return batch

    def _export_with_retry(self, taken: list[_Item], first: int, end: int) -> None:
        batch = self.process_batch(taken)
        if self.spool is not None:
            batch.dedup_token = self.spool.token(first, end)
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                if self._exporter is None:
                    raise ConnectionError("the store is not reachable yet")
                self._exporter.export(batch)
            except DataRejected:
                self._record(m.EXPORT_FAILURES)
                self._record(m.DATA_REJECTIONS)
                raise
            except Exception as exc:
                self._record(m.EXPORT_FAILURES)
                log.warning("store write failed (%s); retrying %d span(s) in %.1fs", exc, len(batch), delay)
                self._nudge.wait(delay)
                self._nudge.clear()
                if self._abandon.is_set():
                    raise _Abandoned from exc
                delay = min(delay * 2, self._config.retry_max_seconds)
                continue
            self._record(m.EXPORT_DURATION, time.perf_counter() - started)
            cut = batch.truncations
            self._record(m.ATTRIBUTES_DROPPED, cut.dropped_attributes)
            self._record(m.VALUES_TRUNCATED, cut.truncated_values)
            self._record(m.VALUES_NESTING_TRUNCATED, cut.truncated_nesting)
            self._record(m.SPANS_EXPORTED, len(batch))
            self._record(m.BATCHES_EXPORTED)
            return


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


class _Abandoned(Exception):
    """close() ran out of time while the store was failing."""
