"""The batching stage between receivers and the exporter.

Receivers hand over validated requests and answer the client at once; one worker thread gathers them
into batches (by size or age), flattens them to columns, runs the processors and exports. A store that
is slow or down is retried with back-off while the batch is held; the bounded queue then fills and
receivers answer 429 with Retry-After, so clients keep the data instead of it being dropped here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from foothold.collector.config import BatchConfig
from foothold.collector.otlp import Accepted
from foothold.collector.rows import SpanBatch, to_batch

log = logging.getLogger("foothold.collector.pipeline")


class Processor(Protocol):
    """Enriches, classifies or redacts a batch in place before export."""

    def process(self, batch: SpanBatch) -> None: ...


class Exporter(Protocol):
    """Writes a batch; raises on failure so the pipeline retries the same batch."""

    def export(self, batch: SpanBatch) -> None: ...


class Submitted(Enum):
    OK = "ok"
    FULL = "full"  # retry later: 429 / RESOURCE_EXHAUSTED
    CLOSED = "closed"  # shutting down: 503 / UNAVAILABLE


@dataclass
class PipelineStats:
    accepted_spans: int = 0
    refused_spans: int = 0
    exported_spans: int = 0
    exported_batches: int = 0
    export_failures: int = 0
    lost_spans: int = 0
    last_export_seconds: float = 0.0


class Pipeline:
    def __init__(self, config: BatchConfig, exporter: Exporter, processors: Sequence[Processor] = ()) -> None:
        self._config = config
        self._exporter = exporter
        self._processors = tuple(processors)
        self.stats = PipelineStats()
        self._cond = threading.Condition()
        self._pending: deque[Accepted] = deque()
        self._pending_spans = 0
        self._in_flight_spans = 0
        self._oldest_at = 0.0  # monotonic arrival of the oldest pending request
        self._submitted = 0  # requests taken in, and requests finished (exported or given up)
        self._finished = 0
        self._flush_waiters = 0
        self._closing = False
        self._abandon = threading.Event()  # set when close() runs out of time with the store down
        self._worker = threading.Thread(target=self._run, name="foothold-exporter", daemon=True)
        self._worker.start()

    @property
    def queued_spans(self) -> int:
        return self._pending_spans + self._in_flight_spans

    def submit(self, accepted: Accepted) -> Submitted:
        with self._cond:
            if self._closing:
                return Submitted.CLOSED
            if self.queued_spans + accepted.spans > self._config.max_queued_spans and self.queued_spans:
                self.stats.refused_spans += accepted.spans
                return Submitted.FULL
            if not self._pending:
                self._oldest_at = time.monotonic()
            self._pending.append(accepted)
            self._pending_spans += accepted.spans
            self._submitted += 1
            self.stats.accepted_spans += accepted.spans
            if self._pending_spans >= self._config.max_spans:
                self._cond.notify_all()
        return Submitted.OK

    def flush(self, timeout: float | None = None) -> bool:
        """Export everything submitted so far; True when it is all stored."""
        with self._cond:
            target = self._submitted
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._finished >= target, timeout)
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float = 30.0) -> int:
        """Stop taking data, export what was accepted; returns the spans that could not be stored."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._worker.join(timeout)
        if self._worker.is_alive():
            self._abandon.set()
            self._worker.join(self._config.retry_max_seconds + 5)
        with self._cond:
            lost = self._pending_spans + self._in_flight_spans
            self.stats.lost_spans += lost
        if lost:
            log.error("shutdown: %d accepted span(s) could not be written to the store", lost)
        return lost

    # --- worker ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            spans = sum(item.spans for item in taken)
            try:
                self._export_with_retry(taken)
            except _Abandoned:
                return
            except Exception:  # a processor bug must not kill the worker or lose the rest
                log.exception("dropping a batch of %d span(s) that could not be processed", spans)
                self.stats.lost_spans += spans
            with self._cond:
                self._in_flight_spans -= spans
                self._finished += len(taken)
                self._cond.notify_all()

    def _ready(self) -> bool:
        if not self._pending:
            return False
        old_enough = time.monotonic() - self._oldest_at >= self._config.timeout_seconds
        return old_enough or self._closing or self._flush_waiters > 0 or self._pending_spans >= self._config.max_spans

    def _take(self) -> list[Accepted] | None:
        with self._cond:
            while not self._ready():
                if self._closing and not self._pending:
                    return None
                wait = self._config.timeout_seconds - (time.monotonic() - self._oldest_at) if self._pending else None
                self._cond.wait(wait)
            taken: list[Accepted] = []
            spans = 0
            while self._pending and (not taken or spans + self._pending[0].spans <= self._config.max_spans):
                item = self._pending.popleft()
                taken.append(item)
                spans += item.spans
            self._pending_spans -= spans
            self._in_flight_spans += spans
            self._oldest_at = time.monotonic()
            return taken

    def _export_with_retry(self, taken: list[Accepted]) -> None:
        batch = to_batch(item.request for item in taken)
        for processor in self._processors:
            processor.process(batch)
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                self._exporter.export(batch)
            except Exception as exc:
                self.stats.export_failures += 1
                log.warning("store write failed (%s); retrying %d span(s) in %.1fs", exc, len(batch), delay)
                if self._abandon.wait(delay):
                    raise _Abandoned from exc
                delay = min(delay * 2, self._config.retry_max_seconds)
                continue
            self.stats.exported_spans += len(batch)
            self.stats.exported_batches += 1
            self.stats.last_export_seconds = time.perf_counter() - started
            return


class _Abandoned(Exception):
    """close() ran out of time while the store was failing."""
