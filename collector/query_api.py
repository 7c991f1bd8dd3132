"""Read-only query API, so the CLI can query a chDB store that the running collector owns.

``POST /v1/query`` ``{"sql": "...", "parameters": {...}}`` answers ``{"columns", "types", "rows"}``;
only one SELECT over the Foothold database's tables is accepted (judged by the engine's own parser,
collector/query_guard.py), under engine limits the caller cannot lift, on the door's own threads, and
killed when its client goes away (collector/query_door.py). Requests whose ``Host`` is not a name of
this listener, or that carry a browser ``Origin``, are refused (DNS rebinding). ``POST /v1/flush``
makes everything accepted so far queryable; ``POST /v1/alerts/evaluate`` runs the alert rules now;
``POST /v1/verify`` checks the export hash chain against the stored rows (``foothold-audit verify``);
``GET /metrics`` is the Prometheus exposition of the collector's self-telemetry; ``GET /healthz`` reports
liveness, the store's state and the same figures as JSON (``metrics``: every sample by its Prometheus key).

With tokens configured (``auth.tokens``) every route needs ``Authorization: Bearer <token>`` (else 401),
except ``/healthz``, which stays open for liveness probes (load balancers and orchestrators rarely carry
tokens) and then answers only ``{"status": "ok"}``; the figures need a token like ``/metrics``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Callable
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from foothold.collector import metrics as m
from foothold.collector.auth import Authenticator, AuthError
from foothold.collector.config import AuthConfig, ConnectionsConfig, QueryApiConfig, TlsConfig
from foothold.collector.query_door import DoorBusy, QueryCancelled, QueryDoor
from foothold.collector.query_guard import QueryRefused
from foothold.collector.serving import HttpListener
from foothold.collector.store import StoreError
from foothold.collector.store_connection import StoreConnection

LISTENER = "query_api"  # the listener label of its metrics


def _json(payload: Any, status: int = 200) -> Response:
    body = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _busy(exc: Exception) -> Response:
    response = _error(503, str(exc))
    response.headers["Retry-After"] = "1"
    return response


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_name(header: str) -> str:
    """`name:port`, `[v6]:port`, `name` -> the name, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") > 1:  # a bare IPv6 address
        return header
    return header.rsplit(":", 1)[0] if ":" in header else header


def accepted_hosts(config: QueryApiConfig) -> frozenset[str] | None:
    """Host names this listener answers to (None: any), from its bound address and query_api.allowed_hosts."""
    if "*" in config.allowed_hosts:
        return None
    names = set(LOOPBACK_NAMES) | {h.lower() for h in config.allowed_hosts}
    bound = config.address.host.lower()
    try:
        if not ipaddress.ip_address(bound).is_unspecified:
            names.add(bound)
    except ValueError:
        names.add(bound)
    return frozenset(names)


def query_api_app(
    door: QueryDoor,
    config: QueryApiConfig,
    *,
    metrics: m.Metrics,
    flush_all: Callable[[float], bool],  # every pipeline (traces and logs)
    store_problem: Callable[[], str],  # why the store is unreachable; "" while it is reachable
    evaluate_alerts: Callable[[], Any] | None = None,
    auth: Authenticator | None = None,
    verify: Callable[[], Any] | None = None,
) -> Starlette:
    auth = auth or Authenticator(AuthConfig())
    for reason in m.AUTH_FAILURE_REASONS:
        metrics.start_series(m.AUTH_FAILURES, listener=LISTENER, reason=reason)
    hosts = accepted_hosts(config)
    origins = frozenset(o.rstrip("/").lower() for o in config.allowed_origins)

    def foreign(request: Request) -> Response | None:
        """403 for a Host this listener does not own or a browser Origin not allowed: a web page's request."""
        host = _host_name(request.headers.get("host", ""))
        if hosts is not None and host not in hosts:
            return _error(
                403,
                f"Host {host!r} is not a name of this query API (DNS rebinding defence); "
                "add it to query_api.allowed_hosts if it is yours",
            )
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/").lower() not in origins:
            return _error(
                403, f"Origin {origin!r} is refused: browsers may not use the query API (query_api.allowed_origins)"
            )
        return None

    def refused(request: Request) -> Response | None:
        """403 for a foreign page, 401 unless the request carries a valid token (or auth is off)."""
        if (response := foreign(request)) is not None:
            return response
        try:
            auth.check(request.headers.get("authorization"))
        except AuthError as exc:
            metrics.record(m.AUTH_FAILURES, listener=LISTENER, reason=exc.reason)
            response = _error(401, f"{exc} (the CLI sends FOOTHOLD_TOKEN or auth.client_token)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="foothold"' + (
                ', error="invalid_token"' if exc.reason == "invalid" else ""
            )
            return response
        return None

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def check_then_handle(request: Request) -> Response:
            return refused(request) or await handler(request)

        return check_then_handle

    async def disconnected(request: Request) -> None:
        """Completes when the client goes away (after the body, uvicorn's receive waits for that)."""
        while (await request.receive())["type"] != "http.disconnect":
            pass

    async def query(request: Request) -> Response:
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _error(400, f'body must be JSON like {{"sql": "SELECT 1"}}: {exc}')
        if not isinstance(payload, dict) or not isinstance(payload.get("sql"), str):
            return _error(400, 'body must be an object with a "sql" string')
        parameters = payload.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            return _error(400, '"parameters" must be an object')
        try:
            return _json(await door.query(payload["sql"], parameters, disconnected(request)))
        except QueryRefused as exc:
            metrics.record(m.QUERIES_REFUSED)
            return _error(400, f"refused: {exc}")
        except DoorBusy as exc:
            return _busy(exc)
        except QueryCancelled:
            return _error(499, "the client went away; its query was killed")
        except Exception as exc:  # the database's message is the useful part
            return _error(400, str(exc).strip())

    async def flush(request: Request) -> Response:
        done = await asyncio.to_thread(flush_all, 60.0)
        return _json({"flushed": done}, 200 if done else 503)

    async def alerts(request: Request) -> Response:
        if evaluate_alerts is None:
            return _error(404, "alerts are disabled in this collector (alerts.enabled: false)")
        try:
            report = await door.call(evaluate_alerts)
        except DoorBusy as exc:
            return _busy(exc)
        return _json(dataclasses.asdict(report))

    async def verify_chain(request: Request) -> Response:
        if verify is None:
            return _error(404, "the export chain is disabled in this collector (chain.enabled: false)")
        try:
            report = await door.call(verify)
        except DoorBusy as exc:
            return _busy(exc)
        return _json(report.to_dict())

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=m.CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        # no 403 for a foreign Host: orchestrators probe by the pod's IP; such a probe (like one without a
        # token) is told only "ok"
        if foreign(request) is not None:
            return _json({"status": "ok"})
        try:
            auth.check(request.headers.get("authorization"))
        except AuthError:  # a probe without a token: alive (or degraded: store unreachable), and nothing more
            return _json({"status": status()})
        return _json({"status": status(), "store_error": store_problem(), "metrics": metrics.snapshot()})

    def status() -> str:
        return "degraded" if store_problem() else "ok"

    return Starlette(
        routes=[
            Route("/v1/query", guarded(query), methods=["POST"]),
            Route("/v1/flush", guarded(flush), methods=["POST"]),
            Route("/v1/alerts/evaluate", guarded(alerts), methods=["POST"]),
            Route("/v1/verify", guarded(verify_chain), methods=["POST"]),
            Route("/metrics", guarded(prometheus), methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class QueryApi:
    """The query API as a collector component: its own query door (connections opened on first use: the store's,
    or a read-only server user's, ``query_api.store_dsn``) and app on a bounded listener. Until the store is
    reachable each query is told why."""

    def __init__(
        self,
        config: QueryApiConfig,
        store: StoreConnection,
        *,
        database: str,
        embedded: bool,
        metrics: m.Metrics,
        auth: Authenticator,
        connections: ConnectionsConfig,
        tls: TlsConfig,
        flush: Callable[[float], bool],
        evaluate_alerts: Callable[[], Any] | None,
        verify: Callable[[], Any] | None,
    ) -> None:
        def open_client() -> Client:
            if config.store_dsn is None:
                return store.client()
            import clickhouse_connect

            try:
                return clickhouse_connect.get_client(dsn=config.store_dsn, database=database)
            except Exception as exc:
                raise StoreError(f"query_api.store_dsn: cannot connect ({exc})") from exc

        self.door = QueryDoor(open_client, store.client, database, config, embedded)
        app = query_api_app(
            self.door,
            config,
            metrics=metrics,
            flush_all=flush,
            store_problem=lambda: store.reason,
            evaluate_alerts=evaluate_alerts,
            auth=auth,
            verify=verify,
        )
        self._listener = HttpListener(app, LISTENER, config.address, connections, tls, metrics)

    @property
    def port(self) -> int:
        return self._listener.port

    async def start(self) -> None:
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
        await asyncio.to_thread(self.door.close)
