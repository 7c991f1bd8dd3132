"""Bounded servers: the limits every listener applies before a request reaches auth (``connections`` config).

Connections are the one resource a client spends before it authenticates, so each listener bounds them:

- HTTP (OTLP/HTTP and the query API, uvicorn + h11): at most ``max_per_listener`` open connections; when a new
  one would pass the cap, the oldest connection that is not in the middle of a request is closed to make room
  (an idle flood only evicts itself), and when every connection is busy the newcomer gets ``503`` and is
  closed at once. A connection must deliver a complete request head within ``header_timeout_seconds`` (uvicorn
  has no such timer: an idle connection that never sends a byte would otherwise stay forever); it is closed
  after ``idle_timeout_seconds`` between requests (uvicorn's keep-alive timeout); the head may not exceed
  ``max_header_bytes`` (431; h11 itself answers 400 to a head still incomplete past it).
- gRPC: the same connection cap (``grpc.max_allowed_incoming_connections``), the handshake timeout
  (``grpc.server_handshake_timeout_ms``), idle connections closed with GOAWAY (``grpc.max_connection_idle_ms``),
  ``grpc.max_concurrent_streams`` per connection and a metadata size limit.
- The process: the soft ``RLIMIT_NOFILE`` is raised to the hard limit at start, and the caps are checked against
  it, so the listeners together cannot exhaust the descriptors the spool and the store need. Should the
  descriptors run out anyway, asyncio's accept loop logs, pauses and retries, and the spool answers 429: the
  collector keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any, TypedDict, Unpack

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from foothold.collector.config import ConnectionsConfig, Endpoint, TlsConfig
from foothold.collector.metrics import CONNECTIONS_CLOSED, Metrics

log = logging.getLogger("foothold.collector.serving")

# Descriptors kept for everything but client connections: spool segments, the store, logs, outgoing webhooks.
RESERVED_DESCRIPTORS = 256
_OVER_CAPACITY_BODY = b"too many open connections to this listener; retry later\n"
_OVER_CAPACITY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_OVER_CAPACITY_BODY), _OVER_CAPACITY_BODY)
)

OnClose = Callable[[str], None]  # called with the reason a connection was closed by the bounds
CONNECTION_CLOSE_REASONS = ("over_capacity", "header_timeout", "evicted")  # what OnClose is called with


def bounded_http_protocol(limits: ConnectionsConfig, on_close: OnClose) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header timeout and a per-listener connection cap (see the module doc)."""

    class BoundedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _opened_at = 0.0

        # uvicorn's own connection_made narrows asyncio's BaseTransport to Transport (and ignores that override)
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._opened_at = self.loop.time()
            if len(self.connections) > limits.max_per_listener and not self._make_room():
                on_close("over_capacity")
                with contextlib.suppress(Exception):
                    transport.write(_OVER_CAPACITY)
                transport.close()
                return
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_timer()  # the next request's head is due within the timeout too

        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(limits.header_timeout_seconds, self._header_timed_out)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timed_out(self) -> None:
            self._header_timer = None
            if self._between_requests() and not self.transport.is_closing():
                on_close("header_timeout")
                self.transport.close()

        def _make_room(self) -> bool:
            """Close the oldest connection that is between requests; False when every other one is busy."""
            idle = [
                p
                for p in self.connections
                if isinstance(p, BoundedH11Protocol) and p is not self and p._between_requests()
            ]
            if not idle:
                return False
            oldest = min(idle, key=lambda p: p._opened_at)
            on_close("evicted")
            oldest.transport.close()
            oldest.connections.discard(oldest)  # counted free now; connection_lost follows on the next loop turn
            return True

    return BoundedH11Protocol


def limit_header_bytes(app: Any, max_bytes: int) -> Any:
    """ASGI wrapper: 431 for a request whose head is over ``max_bytes``. h11's own limit only bounds a head
    still incomplete in its buffer; one that arrives whole in one read passes it."""

    async def bounded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + sum(len(k) + len(v) + 4 for k, v in scope["headers"])
            if size > max_bytes:
                body = b"request head over %d bytes (connections.max_header_bytes)\n" % max_bytes
                headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
                await send({"type": "http.response.start", "status": 431, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return bounded


class UvicornTls(TypedDict, total=False):
    """uvicorn's TLS settings, as the service derives them from the ``tls`` config (empty: plain HTTP)."""

    ssl_certfile: str
    ssl_keyfile: str
    ssl_ca_certs: str
    ssl_cert_reqs: int


def uvicorn_config(
    app: Any, limits: ConnectionsConfig, on_close: OnClose, **options: Unpack[UvicornTls]
) -> uvicorn.Config:
    return uvicorn.Config(
        limit_header_bytes(app, limits.max_header_bytes),
        http=bounded_http_protocol(limits, on_close),
        timeout_keep_alive=max(1, round(limits.idle_timeout_seconds)),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        ws="none",  # no websocket routes: an Upgrade request must not switch to another protocol
        log_level="warning",
        access_log=False,
        lifespan="off",
        **options,
    )


def grpc_options(limits: ConnectionsConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.max_allowed_incoming_connections", limits.max_per_listener),
        ("grpc.server_handshake_timeout_ms", int(limits.header_timeout_seconds * 1000)),
        ("grpc.max_connection_idle_ms", int(limits.grpc_max_connection_idle_seconds * 1000)),
        ("grpc.max_concurrent_streams", limits.grpc_max_concurrent_streams),
        ("grpc.max_metadata_size", limits.max_header_bytes),
        ("grpc.absolute_max_metadata_size", limits.max_header_bytes),
        # a client may ping an idle connection at most every 5 minutes (gRPC's default policy, made explicit)
        ("grpc.http2.min_ping_interval_without_data_ms", 300_000),
    ]


def raise_descriptor_limit(limits: ConnectionsConfig, listeners: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; warn when the caps could still exhaust it. Returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    needed = listeners * limits.max_per_listener + RESERVED_DESCRIPTORS
    if needed > soft:
        log.warning(
            "open-file limit %d is below %d listener(s) x connections.max_per_listener %d + %d reserved: "
            "lower connections.max_per_listener or raise the limit (ulimit -n / LimitNOFILE=)",
            soft,
            listeners,
            limits.max_per_listener,
            RESERVED_DESCRIPTORS,
        )
    return soft


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the collector owns shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(endpoint: Endpoint) -> socket.socket:
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((endpoint.host, endpoint.port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {endpoint}: {exc.strerror}; pick another endpoint in the config") from exc
    sock.listen(1024)  # listening now: clients that connect before uvicorn runs wait in the backlog
    return sock


def _tls_options(tls: TlsConfig) -> UvicornTls:
    if not tls.enabled:
        return {}
    options = UvicornTls(ssl_certfile=str(tls.cert_file), ssl_keyfile=str(tls.key_file))
    if tls.client_ca_file is not None:
        options |= UvicornTls(ssl_ca_certs=str(tls.client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


class HttpListener:
    """An ASGI app served by uvicorn on ``endpoint`` within the connection bounds: the HTTP side of the OTLP/HTTP
    receiver and of the query API. ``port`` is the bound port once started (endpoint port 0 picks one)."""

    def __init__(
        self,
        app: Any,
        listener: str,
        endpoint: Endpoint,
        connections: ConnectionsConfig,
        tls: TlsConfig,
        metrics: Metrics,
    ) -> None:
        self._app, self._endpoint, self._connections, self._tls = app, endpoint, connections, tls
        for reason in CONNECTION_CLOSE_REASONS:
            metrics.start_series(CONNECTIONS_CLOSED, listener=listener, reason=reason)

        def closed(reason: str) -> None:
            metrics.record(CONNECTIONS_CLOSED, listener=listener, reason=reason)

        self._on_close = closed
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        sock = _listen(self._endpoint)
        self.port = sock.getsockname()[1]
        config = uvicorn_config(self._app, self._connections, self._on_close, **_tls_options(self._tls))
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
