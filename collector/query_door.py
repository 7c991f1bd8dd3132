"""The query API's engine side: judged statements, engine-enforced limits, its own threads, cancellation.

- Every statement is first judged by the engine's parser (:mod:`foothold.collector.query_guard`).
- Limits are ClickHouse settings the caller cannot lift. In chDB each worker's connection is a session
  that sets the limits and then ``readonly = 1``: from then on the engine refuses any change to a setting,
  in a ``SET`` or in a query's ``SETTINGS`` clause ("Cannot modify … in readonly mode"). On a server the
  read-only user's settings profile does the same (compose/clickhouse/users.d/foothold-reader.xml); with
  a user that is not read-only, the limits and ``readonly = 1`` travel with every request.
- Queries run on the door's own bounded pool (``query_api.workers``; at most ``max_waiting`` more wait),
  never on the thread pool the OTLP/HTTP receiver uses, so a burst of queries cannot delay ingest; beyond
  the bound the API answers 503.
- Each statement carries a tag comment; when its HTTP client goes away the door runs
  ``KILL QUERY`` for that tag on a separate connection, so an abandoned query stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickhouse_connect.driver.client import Client

from foothold.collector.config import QueryApiConfig
from foothold.collector.query_guard import TAG, judge

log = logging.getLogger("foothold.collector.query")


class DoorBusy(Exception):
    """Every worker is busy and the waiting line is full."""


class QueryCancelled(Exception):
    """The client went away; its query was killed."""


def engine_limits(config: QueryApiConfig) -> dict[str, Any]:
    """The settings every query runs under. One row beyond max_rows tells the caller it was truncated."""
    return {
        "max_execution_time": config.max_seconds,
        "timeout_overflow_mode": "throw",
        "max_result_rows": config.max_rows + 1,
        "max_result_bytes": config.max_result_bytes,
        "result_overflow_mode": "break",
        "max_memory_usage": config.max_memory_bytes,
    }


class ReadSession:
    """One connection that runs judged statements under the limits (one thread at a time)."""

    def __init__(self, client: Client, config: QueryApiConfig, embedded: bool, database: str) -> None:
        self._client = client
        self._max_rows = config.max_rows
        self._database = database
        limits = engine_limits(config)
        self._settings: dict[str, Any] | None = None
        if embedded:  # a chDB handle is a session: the limits, then readonly locks them in
            client.command("SET " + ", ".join(f"{k} = {_literal(v)}" for k, v in limits.items()))
            client.command("SET readonly = 1")
        elif not int(client.query("SELECT getSetting('readonly')").result_rows[0][0]):
            self._settings = limits | {"readonly": 1}  # a writer's account: the limits travel with each request
        # else a read-only user: its settings profile holds the limits

    def _rows(self, statement: str, parameters: dict[str, Any] | None) -> Sequence[Sequence[Any]]:
        return self._client.query(statement, parameters=parameters, settings=self._settings).result_rows

    def run(self, sql: str, parameters: dict[str, Any] | None, tag: str = "") -> dict[str, Any]:
        canonical = judge(self._rows, sql, parameters, self._database)
        statement = f"{canonical} /* {TAG}{tag} */" if tag else canonical
        result = self._client.query(statement, parameters=parameters, settings=self._settings)
        rows = result.result_rows
        return {
            "columns": list(result.column_names),
            "types": [t.name for t in result.column_types],
            "rows": rows[: self._max_rows],
            "truncated": len(rows) > self._max_rows,
        }


class QueryDoor:
    def __init__(
        self,
        open_client: Callable[[], Client],
        open_admin: Callable[[], Client],
        database: str,
        config: QueryApiConfig,
        embedded: bool,
    ) -> None:
        self._open_client = open_client
        self._open_admin = open_admin
        self.database = database
        self._config = config
        self._embedded = embedded
        self._pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="foothold-query")
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._admin: Client | None = None
        self._admin_lock = threading.Lock()
        self._in_flight = 0
        self._capacity = config.workers + config.max_waiting

    # ---- worker side (runs on the door's threads) ------------------------------------------------

    def _session(self) -> ReadSession:
        session = getattr(self._local, "session", None)
        if session is None:
            client = self._open_client()
            with self._clients_lock:
                self._clients.append(client)
            session = self._local.session = ReadSession(client, self._config, self._embedded, self.database)
        return session

    def _run(self, sql: str, parameters: dict[str, Any] | None, tag: str) -> dict[str, Any]:
        return self._session().run(sql, parameters, tag)

    def _kill(self, tag: str) -> None:
        with self._admin_lock:
            if self._admin is None:
                self._admin = self._open_admin()
            # the tag is split so this KILL's own text does not match it
            self._admin.command(
                "KILL QUERY WHERE query LIKE concat('%', {prefix:String}, {tag:String}, '%') "
                "AND query_id != queryID() ASYNC",
                parameters={"prefix": TAG, "tag": tag},
            )

    # ---- loop side ----------------------------------------------------------------------------

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run blocking read work (a query, verify, an alert pass) on the door's threads, within its bound."""
        if self._in_flight >= self._capacity:
            raise DoorBusy(
                f"the query API is busy ({self._config.workers} running, {self._config.max_waiting} waiting); "
                "retry shortly, or raise query_api.workers"
            )
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
        finally:
            self._in_flight -= 1

    async def query(self, sql: str, parameters: dict[str, Any] | None, disconnected: Awaitable[Any]) -> dict[str, Any]:
        """Judge and run ``sql``; if ``disconnected`` completes first, kill the query and raise QueryCancelled."""
        tag = uuid.uuid4().hex
        running = asyncio.ensure_future(self.call(self._run, sql, parameters, tag))
        watch = asyncio.ensure_future(disconnected)
        try:
            await asyncio.wait({running, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if running.done():
            answer: dict[str, Any] = running.result()
            return answer
        log.info("query client went away: killing its query (%s)", tag)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._kill, tag)
        except Exception:
            log.exception("could not kill an abandoned query")
        await asyncio.gather(running, return_exceptions=True)  # the worker is free again
        raise QueryCancelled(tag)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients + ([self._admin] if self._admin is not None else []):
            try:
                client.close()
            except Exception:
                pass


def _literal(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
