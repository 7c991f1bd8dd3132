"""Worker processes for the collector's per-request Python work (issue 18): redaction at the door.

The receivers, the pipelines and the processors share one interpreter, and redaction at the door is
its largest per-request share (~57 µs a fresh tool-call span, about half the Python CPU of model-call
traffic). With ``pipeline.workers`` above 0 it runs in that many worker processes: the receiver's thread
hands the request's protobuf to an idle worker over a pipe and waits, the GIL released, for the redacted
protobuf, which it then spools exactly as before, so no secret reaches the spool. With 0 it runs in the
collector's own process, as before. Both run the same :class:`RequestRedactor` with the same key on the
same request, so the spooled bytes are the same.

Workers are started with ``spawn``: forking a process that has loaded chDB would copy an engine whose
threads do not exist in the child. A worker imports the OTLP protobuf classes and :mod:`foothold.redact`,
never chDB or clickhouse-connect. It ignores SIGINT and SIGTERM (a Ctrl-C or a service manager signalling
the whole group must not kill it under a request in flight) and exits when the collector closes its pipe,
at stop or when the collector dies.

A worker that dies (killed, out of memory) is replaced, and the request it held goes once more to the next
idle worker; if that one fails too the request is refused with "retry later" (503 / UNAVAILABLE): nothing
was spooled, so the client still holds it.

Plain pipes rather than ``concurrent.futures``: a ProcessPoolExecutor hands every call through a manager
thread and a feeder thread in the collector, which costs more of the collector's CPU than redacting a
one-span hook request (docs/performance.md, Round 6).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector.processors.redact import RequestRedactor

log = logging.getLogger("foothold.collector.processing")

SIGNALS = ("traces", "logs")  # a request's first byte to a worker: the index of its signal here
_UNCHANGED, _CHANGED, _FAILED = 0, 1, 2  # a reply's first byte
MAX_DEFAULT_WORKERS = 2  # redaction is at most ~half the collector's Python work: two workers keep up with it
STOP_SECONDS = 5.0


def default_workers() -> int:
    """One fewer than the CPUs this process may use (the collector keeps one), at most MAX_DEFAULT_WORKERS."""
    return max(0, min(MAX_DEFAULT_WORKERS, len(os.sched_getaffinity(0)) - 1))


class WorkersUnavailable(Exception):
    """Two workers in a row died holding the request: the client should retry later."""


class WorkerFailed(Exception):
    """The redactor raised in the worker (a bug, as it would have raised in the collector's process)."""


def _serve(conn: Connection, key: bytes) -> None:
    """A worker's loop: a request's signal byte and protobuf in, its redacted protobuf out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    redactor = RequestRedactor(key)
    kinds = ((ExportTraceServiceRequest, redactor), (ExportLogsServiceRequest, redactor.logs))
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the collector closed the pipe (stop) or is gone
        try:
            kind, redact = kinds[message[0]]
            request = kind.FromString(message[1:])
            reply = bytes([_CHANGED]) + request.SerializeToString() if redact(request) else bytes([_UNCHANGED])
        except Exception as exc:  # answered, not fatal: the collector raises it where it would have run
            reply = bytes([_FAILED]) + repr(exc).encode()
        conn.send_bytes(reply)


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection


class Workers:
    """The collector's worker processes, a component (started before the pipelines, stopped after them)."""

    def __init__(self, count: int, key: bytes) -> None:
        self.count = count
        self._key = key
        self._context = multiprocessing.get_context("spawn")  # never fork: the collector has chDB loaded
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._live: list[_Worker] = []
        self._lock = threading.Lock()  # guards _live and _stopped
        self._spawning = threading.Lock()
        self._stopped = False

    @property
    def pids(self) -> list[int]:
        """The live workers' process ids (benchmarks add their CPU to the collector's)."""
        with self._lock:
            return [w.process.pid for w in self._live if w.process.pid is not None]

    async def start(self) -> None:
        """Launch the workers; a request waits for its worker's imports (~0.3 s) only if it comes before them."""
        for _ in range(self.count):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        # daemon: should the collector exit without stopping its components, multiprocessing ends the workers
        process = self._context.Process(target=_serve, args=(theirs, self._key), name="foothold-worker", daemon=True)
        process.start()
        theirs.close()  # the worker's end lives in the worker: its exit is then an EOF here
        worker = _Worker(process, ours)
        with self._lock:
            self._live.append(worker)
        return worker

    def redact(self, signal_name: str, payload: bytes) -> bytes:
        """``payload`` (a request of the signal, as protobuf) redacted in a worker; ``payload`` itself when nothing
        in it needed redacting, so the received bytes are spooled as they came."""
        message = bytes([SIGNALS.index(signal_name)]) + payload
        for _attempt in range(2):
            if not self._live:  # a replacement failed to start: none would come back to the queue
                self._top_up()
            worker = self._idle.get()
            try:
                worker.conn.send_bytes(message)
                reply = worker.conn.recv_bytes()
            except (EOFError, OSError):
                self._replace(worker)
                continue
            self._idle.put(worker)
            if reply[0] == _FAILED:
                raise WorkerFailed(reply[1:].decode(errors="replace"))
            return reply[1:] if reply[0] == _CHANGED else payload
        raise WorkersUnavailable("two redaction workers in a row died holding this request; retry later")

    def _replace(self, worker: _Worker) -> None:
        """A worker died (or its pipe broke) holding a request: end it, and start another unless stopping."""
        worker.conn.close()
        if worker.process.is_alive():  # a broken pipe to a live worker: it cannot be trusted with the next one
            worker.process.terminate()
        worker.process.join(STOP_SECONDS)
        log.error(
            "redaction worker %s exited (code %s) holding a request; starting another, the request is retried",
            worker.process.pid,
            worker.process.exitcode,
        )
        with self._lock:
            self._live.remove(worker)
        self._top_up()

    def _top_up(self) -> None:
        """Start workers for those that are gone, up to the count; if none can start (descriptors, memory), refuse
        the request rather than wait for an idle worker that will never come."""
        with self._spawning:  # one thread tops up at a time: the pool never grows past its count
            with self._lock:
                missing = 0 if self._stopped else self.count - len(self._live)
            try:
                for _ in range(missing):
                    self._idle.put(self._spawn())
            except OSError as exc:
                raise WorkersUnavailable(f"cannot start a redaction worker ({exc}); retry later") from exc

    async def stop(self) -> None:
        """Close every worker's pipe (each exits at the EOF) and wait for them; the receivers stopped before."""
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        with self._lock:
            self._stopped = True
            workers = list(self._live)
        for worker in workers:
            worker.conn.close()
        for worker in workers:
            worker.process.join(STOP_SECONDS)
            if worker.process.is_alive():
                log.warning(
                    "redaction worker %s did not exit in %.0f s; terminating it", worker.process.pid, STOP_SECONDS
                )
                worker.process.terminate()
                worker.process.join()
