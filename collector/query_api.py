"""Read-only query API, so the CLI can query a chDB store that the running collector owns.

``POST /v1/query`` ``{"sql": "...", "parameters": {...}}`` answers ``{"columns", "types", "rows"}``;
queries run with ``readonly=1``, so nothing can change the store through this door. ``POST /v1/flush``
makes everything accepted so far queryable; ``POST /v1/alerts/evaluate`` runs the alert rules now;
``POST /v1/verify`` checks the export hash chain against the stored rows (``foothold-audit verify``);
``GET /metrics`` is the Prometheus exposition of the collector's self-telemetry; ``GET /healthz`` reports
liveness and pipeline figures.

With tokens configured (``auth.tokens``) every route needs ``Authorization: Bearer <token>`` (else 401),
except ``/healthz``, which stays open for liveness probes (load balancers and orchestrators rarely carry
tokens) and then answers only ``{"status": "ok"}``; the pipeline figures need a token like ``/metrics``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from foothold.collector.auth import Authenticator, AuthError
from foothold.collector.config import AuthConfig
from foothold.collector.metrics import CONTENT_TYPE, Metrics
from foothold.collector.pipeline import Pipeline


def _json(payload: Any, status: int = 200) -> Response:
    body = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def query_api_app(
    client: Client,
    pipeline: Pipeline,
    max_rows: int,
    evaluate_alerts: Callable[[], Any] | None = None,
    *,
    auth: Authenticator | None = None,
    metrics: Metrics | None = None,
    verify: Callable[[], Any] | None = None,
) -> Starlette:
    lock = threading.Lock()  # one clickhouse-connect client: one query at a time
    auth = auth or Authenticator(AuthConfig())

    def refused(request: Request) -> Response | None:
        """401 unless the request carries a valid token (or auth is off)."""
        try:
            auth.check(request.headers.get("authorization"))
        except AuthError as exc:
            if metrics is not None:
                metrics.inc("foothold_auth_failures_total", listener="query_api", reason=exc.reason)
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

    def run(sql: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
        with lock:
            result = client.query(sql, parameters=parameters, settings={"readonly": 1})
        rows = result.result_rows
        return {
            "columns": list(result.column_names),
            "types": [t.name for t in result.column_types],
            "rows": rows[:max_rows],
            "truncated": len(rows) > max_rows,
        }

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
            return _json(await asyncio.to_thread(run, payload["sql"], parameters))
        except Exception as exc:  # the database's message is the useful part
            return _error(400, str(exc).strip())

    async def flush(request: Request) -> Response:
        done = await asyncio.to_thread(pipeline.flush, 60.0)
        return _json({"flushed": done}, 200 if done else 503)

    async def alerts(request: Request) -> Response:
        if evaluate_alerts is None:
            return _error(404, "alerts are disabled in this collector (alerts.enabled: false)")
        report = await asyncio.to_thread(evaluate_alerts)
        return _json(dataclasses.asdict(report))

    async def verify_chain(request: Request) -> Response:
        if verify is None:
            return _error(404, "the export chain is disabled in this collector (chain.enabled: false)")
        report = await asyncio.to_thread(verify)
        return _json(report.to_dict())

    async def prometheus(request: Request) -> Response:
        return Response((metrics or Metrics()).exposition(), media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        try:
            auth.check(request.headers.get("authorization"))
        except AuthError:  # a probe without a token: alive (or degraded: store unreachable), and nothing more
            return _json({"status": status()})
        stats = dataclasses.asdict(pipeline.stats) | {"queued_spans": pipeline.queued_spans}
        return _json({"status": status(), "pipeline": stats})

    def status() -> str:
        return "ok" if pipeline.stats.store_up else "degraded"

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
