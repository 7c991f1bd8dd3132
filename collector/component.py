"""The lifecycle every collector component shares, as the OpenTelemetry Collector's ``component.Component``
(``Start``/``Shutdown``).

A component is built from its own config section by the service (collector/service.py), started in dependency
order and stopped in reverse: the store connection first and last, then the collector_metrics writer (its
final snapshot comes after the last export), the redaction workers, the pipelines (spool, batches, processors,
ClickHouse writer), the alert evaluator, the query API, and the receivers last, so they stop taking data
before anything they feed stops. A component gets what it needs at construction; it never reaches back into
the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("foothold.collector")


class Component(Protocol):
    async def start(self) -> None:
        """Begin work (listen, run a loop, connect); return once the component serves or is trying to."""

    async def stop(self) -> None:
        """End work gracefully: what the component accepted is handed on or kept, nothing is dropped silently."""


class Periodic:
    """A component running a blocking ``job`` every ``interval`` seconds off the event loop; a failing run is
    logged and the next one tries again. ``at_stop`` runs it once more when stopping (a final snapshot)."""

    def __init__(
        self, what: str, interval: float, job: Callable[[], object], *, first: bool = False, at_stop: bool = False
    ) -> None:
        self._what, self._interval, self._job = what, interval, job
        self._first, self._at_stop = first, at_stop
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        if not self._first:
            await asyncio.sleep(self._interval)
        while True:
            await self._run()
            await asyncio.sleep(self._interval)

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(self._job)
        except Exception:  # the store may be down: the next run may succeed
            log.exception("%s failed", self._what)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            if self._at_stop:
                await self._run()
