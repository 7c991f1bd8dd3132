"""The collector process: store → pipeline → receivers, plus the query API, on one asyncio loop.

Start order is spool, pipeline, listeners, then the store (so data is taken while the store is unreachable:
the connect loop keeps trying and attaches the exporter, alerts and metrics once it succeeds); shutdown order
is receivers first (stop taking data), then the pipeline flushes everything it accepted, then the store closes.
A discovery file in the data dir tells the CLI where this collector's query API listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import uvicorn
from clickhouse_connect.driver.client import Client
from starlette.types import ASGIApp

from foothold.collector.alerting import AlertEvaluator, EvaluationReport, build_evaluator
from foothold.collector.auth import Authenticator
from foothold.collector.chain import ALERTS_CHAIN_SUFFIX, ChainingExporter, ChainStore, Mirror, load_chain_key
from foothold.collector.config import Endpoint, Settings
from foothold.collector.discovery import DISCOVERY_FILE, write_discovery
from foothold.collector.exporter import ClickHouseExporter
from foothold.collector.logs_exporter import ClickHouseLogsExporter
from foothold.collector.metrics import Metrics, TimedExporter
from foothold.collector.pipeline import LOGS, Batch, Exporter, Pipeline, Processor, open_spool
from foothold.collector.processors.redact import RequestRedactor
from foothold.collector.query_api import query_api_app
from foothold.collector.query_door import QueryDoor
from foothold.collector.receivers.grpc import GrpcReceiver
from foothold.collector.receivers.http import otlp_http_app
from foothold.collector.schema.ddl import COLLECTOR_METRICS
from foothold.collector.serving import UvicornTls, raise_descriptor_limit, uvicorn_config
from foothold.collector.store import Store, StoreError, chdb_path, open_store
from foothold.collector.verify import VerifyReport, verify

log = logging.getLogger("foothold.collector")

T = TypeVar("T")


def _started(value: T | None, what: str) -> T:
    """A part start() (or the store connection) sets: used earlier it is a bug, named as one."""
    if value is None:
        raise RuntimeError(f"the collector's {what} is used before it exists (Collector.start, store connection)")
    return value


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


def default_processors(settings: Settings) -> list[Processor]:
    """The batch processors: native agent telemetry normalised into GenAI tool calls first (so every record of
    a call is judged alike), then classify and review code, then keep one record per call. Redaction is not
    one of them: it runs on each request before it is spooled (:func:`request_redactor`), so nothing
    downstream (spool, quarantine, classifier evidence) sees a secret."""
    from foothold.collector.processors.classify import ClassifyProcessor
    from foothold.collector.processors.code_review import CodeReviewProcessor
    from foothold.collector.processors.native import CallOfRecord, NativeToolCalls

    return [NativeToolCalls(), ClassifyProcessor(), CodeReviewProcessor(), CallOfRecord()]


def request_redactor(settings: Settings) -> RequestRedactor:
    if settings.fingerprint_key is not None:
        key = settings.fingerprint_key.get_secret_value().encode()
    else:
        log.warning(
            "no fingerprint_key (FOOTHOLD_FINGERPRINT_KEY) set: secrets redacted here will not correlate with agents'"
        )
        key = os.urandom(32)
    return RequestRedactor(key)


ExporterFactory = Callable[[Store], Exporter]


class _AwaitingStore:
    """The pipeline's exporter until the store is reachable: every batch waits (is retried) in the spool."""

    def export(self, batch: Batch) -> None:
        raise StoreError("the store is not reachable yet")


class _DeferredClient:
    """The query API's client: the store's once it is reachable, until then each query names the reason."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.reason = "connecting"

    def __getattr__(self, name: str) -> Any:  # stands in for a Client: any of its attributes
        client = self.__dict__["client"]
        if client is None:
            raise StoreError(f"the store is unreachable ({self.reason}); spans are spooled until it is back")
        return getattr(client, name)


class Collector:
    def __init__(
        self,
        settings: Settings,
        processors: list[Processor] | None = None,
        exporter_factory: ExporterFactory = ClickHouseExporter,
    ) -> None:
        self.settings = settings
        self._processors = default_processors(settings) if processors is None else processors
        self.metrics = Metrics()
        self.auth = Authenticator(settings.auth)
        self.chain: ChainStore | None = None
        self.alert_chain: ChainStore | None = None
        self._exporter_factory = self._wrap_exporter(exporter_factory)
        self._metrics_loop: asyncio.Task[None] | None = None
        self._retention_loop: asyncio.Task[None] | None = None
        self._metrics_client: Client | None = None
        self._metrics_lock = threading.Lock()
        self.metrics_recorded = threading.Event()  # set after each write to collector_metrics (tests wait on it)
        self._verify_lock = threading.Lock()
        self.store: Store | None = None
        self.pipeline: Pipeline | None = None
        self.logs_pipeline: Pipeline | None = None  # OTLP logs: agents' native telemetry, into otel_logs
        self._grpc: GrpcReceiver | None = None
        self.alerts: AlertEvaluator | None = None
        self._alerts_lock = threading.Lock()  # the loop and the query API may both ask for a pass
        self._alert_loop: asyncio.Task[None] | None = None
        self._servers: list[tuple[_EmbeddedServer, asyncio.Task[None]]] = []
        self._store_task: asyncio.Task[None] | None = None
        self._query_client = _DeferredClient()  # holds why the store is unreachable, for the query door
        self.query_door: QueryDoor | None = None
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        """Spool, pipeline and listeners first, then the store: the receivers take data while it is unreachable.

        The first connection (schema migration included) runs while the listeners already serve; start waits
        for it up to ``store.startup_wait_seconds``, then carries on degraded and keeps trying in the background
        (a store that is down, a cluster node that does not answer ``ON CLUSTER`` DDL). Until it succeeds the
        spool accepts, ``/healthz`` says ``degraded`` and ``foothold_store_up`` is 0.
        """
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        spool = open_spool(s.data_dir, s.spool)  # replays what an earlier run accepted but did not store
        logs_spool = open_spool(s.data_dir, s.spool, "spool-logs")  # the same for logs
        redactor = request_redactor(s)  # one key for both signals, so their fingerprints correlate
        self.pipeline = Pipeline(
            s.batch,
            _AwaitingStore(),
            self._processors,
            spool=spool,
            limits=s.limits,
            quarantine_dir=s.data_dir / "quarantine",
            redactor=redactor,
        )
        self.pipeline.stats.store_up = 0
        self.metrics.pipeline = self.pipeline
        # Logs run through a pipeline of their own (spool, batches, deduplicated inserts), with the same
        # processors: one tool-call classifier and one call-of-record index whichever signal reports a call.
        self.logs_pipeline = Pipeline(
            s.batch,
            _AwaitingStore(),
            self._processors,
            spool=logs_spool,
            limits=s.limits,
            quarantine_dir=s.data_dir / "quarantine-logs",
            signal=LOGS,
            redactor=redactor.logs,  # native tool events carry arguments, output and tool input
        )
        self._warn_about_exposure()
        listeners = [s.receivers.grpc.enabled, s.receivers.http.enabled, s.query_api.enabled]
        raise_descriptor_limit(s.connections, sum(listeners))
        if s.receivers.grpc.enabled:
            self._grpc = GrpcReceiver(
                self.pipeline,
                s.receivers.grpc,
                auth=self.auth,
                metrics=self.metrics,
                tls=s.tls,
                connections=s.connections,
                logs_pipeline=self.logs_pipeline,
            )
            self.ports["otlp_grpc"] = await self._grpc.start()
        if s.receivers.http.enabled:
            app = otlp_http_app(
                self.pipeline, s.receivers.http, auth=self.auth, metrics=self.metrics, logs_pipeline=self.logs_pipeline
            )
            self._serve("otlp_http", app, s.receivers.http.address)
        if s.query_api.enabled:
            self.query_door = self._open_query_door()
            app = query_api_app(
                self.query_door,
                self.pipeline,
                s.query_api,
                self.evaluate_alerts if s.alerts.enabled else None,
                auth=self.auth,
                metrics=self.metrics,
                verify=self.verify_chain if s.chain.enabled else None,
                flush_all=self.flush,
            )
            self._serve("query_api", app, s.query_api.address)
        first_attempt = asyncio.Event()
        self._store_task = asyncio.create_task(self._connect_store(first_attempt))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_attempt.wait(), s.store.startup_wait_seconds)
        self._write_discovery()
        log.info("collector ready: %s, store %s%s", self.ports, s.store_dsn, "" if self.store else " (unreachable)")

    async def _connect_store(self, first_attempt: asyncio.Event) -> None:
        """Open (and migrate) the store until it works, then attach everything that needs it."""
        s = self.settings
        pipeline, logs_pipeline = _started(self.pipeline, "pipeline"), _started(self.logs_pipeline, "logs pipeline")
        delay = 0.5
        while True:
            store: Store | None = None
            try:
                store = await asyncio.to_thread(
                    functools.partial(
                        open_store,
                        s.store_dsn,
                        s.store.database,
                        s.store.cluster,
                        insert=s.store.insert,
                        replicated=s.store.replicated,
                        retention=s.retention.policy(),
                    )
                )
                exporter = self._exporter_factory(store)
                logs_exporter = ClickHouseLogsExporter(store)
                break
            except Exception as exc:  # StoreError, or the exporter's first query (the chain head) failing
                if store is not None:
                    store.close()
                pipeline.stats.store_error = self._query_client.reason = str(exc).strip()
                log.warning("store unreachable (%s); spooling, retrying in %.1fs", exc, delay)
            first_attempt.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, s.batch.retry_max_seconds)
        self.store = store
        self._query_client.client = store.client()
        if s.alerts.enabled:
            self.alerts = build_evaluator(s.alerts, store.client(), chain=self.alert_chain)
            self._alert_loop = asyncio.create_task(self._evaluate_periodically(s.alerts.interval_seconds))
        if s.metrics.enabled:
            self._metrics_client = store.client()
            self._metrics_loop = asyncio.create_task(self._record_metrics_periodically(s.metrics.interval_seconds))
        if s.retention.max_store_bytes:
            self._retention_loop = asyncio.create_task(
                self._bound_store_periodically(s.retention.check_interval_seconds)
            )
        pipeline.stats.store_up, pipeline.stats.store_error = 1, ""
        pipeline.attach_exporter(exporter)
        logs_pipeline.attach_exporter(logs_exporter)
        first_attempt.set()
        log.info("store %s reachable: exporting", s.store_dsn)

    def _open_query_door(self) -> QueryDoor:
        """The query API's connections, opened on first use: the store's, or a read-only server user's
        (query_api.store_dsn). Until the store is reachable each query is told why."""
        s = self.settings

        def connected_store() -> Store:
            if self.store is None:
                raise StoreError(
                    f"the store is unreachable ({self._query_client.reason}); spans are spooled until it is back"
                )
            return self.store

        def open_client() -> Client:
            if s.query_api.store_dsn is None:
                return connected_store().client()
            import clickhouse_connect

            try:
                return clickhouse_connect.get_client(dsn=s.query_api.store_dsn, database=s.store.database)
            except Exception as exc:
                raise StoreError(f"query_api.store_dsn: cannot connect ({exc})") from exc

        def open_admin() -> Client:
            return connected_store().client()

        return QueryDoor(open_client, open_admin, s.store.database, s.query_api, chdb_path(s.store_dsn) is not None)

    def flush(self, timeout: float = 60.0) -> bool:
        """Export everything accepted so far, spans and logs; True when it is all stored."""
        done = self.pipeline.flush(timeout) if self.pipeline else True
        return (self.logs_pipeline.flush(timeout) if self.logs_pipeline else True) and done

    def evaluate_alerts(self) -> EvaluationReport:
        """One pass of the alert rules over everything accepted so far (blocking: call off the loop)."""
        if self.alerts is None:
            if self.settings.alerts.enabled:
                error = _started(self.pipeline, "pipeline").stats.store_error
                raise StoreError(f"the store is unreachable ({error}); alerts wait for it")
            raise RuntimeError("alerts are disabled (alerts.enabled: false)")
        self.flush(60.0)
        with self._alerts_lock:
            return self.alerts.evaluate()

    async def _evaluate_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.evaluate_alerts)
            except Exception:  # keep evaluating: the next pass may succeed
                log.exception("alert evaluation failed")

    def _wrap_exporter(self, factory: ExporterFactory) -> ExporterFactory:
        """The configured exporter, chained (tamper evidence) and timed (self-telemetry)."""

        def build(store: Store) -> Exporter:
            exporter = factory(store)
            if self.settings.chain.enabled:
                s = self.settings
                key = load_chain_key(s.chain_key_path, create=True)
                mirror = Mirror(s.chain_mirror_path, self.metrics) if s.chain_mirror_path else None
                self.chain = ChainStore(store, s.chain.name, key, mirror, self.metrics)
                self.alert_chain = ChainStore(store, s.chain.name + ALERTS_CHAIN_SUFFIX, key, mirror, self.metrics)
                exporter = ChainingExporter(exporter, self.chain)
            return TimedExporter(exporter, self.metrics)

        return build

    def _warn_about_exposure(self) -> None:
        s = self.settings
        listeners = {"receivers.grpc": s.receivers.grpc, "receivers.http": s.receivers.http, "query_api": s.query_api}
        for key, listener in listeners.items():
            if listener.enabled and not listener.address.is_loopback:
                if not self.auth.enabled:
                    log.warning(
                        "%s listens on %s without authentication (auth.allow_unauthenticated: true)",
                        key,
                        listener.endpoint,
                    )
                elif not s.tls.enabled:
                    log.warning(
                        "%s listens on %s without TLS: bearer tokens cross the network in clear (set tls.cert_file)",
                        key,
                        listener.endpoint,
                    )

    def verify_chain(self) -> VerifyReport:
        """`foothold-audit verify` inside the collector (it owns the chDB store): exports pause while it reads."""
        if self.chain is None and self.settings.chain.enabled:
            error = _started(self.pipeline, "pipeline").stats.store_error
            raise StoreError(f"the store is unreachable ({error}); verify waits for it")
        if self.chain is None:
            raise RuntimeError("the export chain is disabled (chain.enabled: false)")
        _started(self.pipeline, "pipeline").flush(60.0)
        with self._verify_lock:
            client = _started(self.store, "store").client()
            s = self.settings
            with self.chain.lock, _started(self.alert_chain, "alerts chain").lock:
                return verify(
                    lambda sql: client.query(sql, settings={"readonly": 1}).result_rows,
                    load_chain_key(s.chain_key_path),
                    s.chain_mirror_path,
                    s.chain.other_writers,
                    local_chains=(s.chain.name,),
                )

    def record_metrics(self) -> int:
        """Write one snapshot of the self-telemetry to collector_metrics (blocking: call off the loop)."""
        now_ms = int(time.time() * 1000)
        rows = [[now_ms, sample.name, float(sample.value), sample.labels] for sample in self.metrics.samples()]
        with self._metrics_lock:
            _started(self._metrics_client, "metrics client").insert(
                f"{_started(self.store, 'store').database}.{COLLECTOR_METRICS}",
                rows,
                column_names=("Timestamp", "Name", "Value", "Labels"),
            )
        self.metrics_recorded.set()
        return len(rows)

    async def _bound_store_periodically(self, interval: float) -> None:
        """The embedded store's disk bound (retention.max_store_bytes), checked off the event loop."""
        while True:
            try:
                for dropped in await asyncio.to_thread(_started(self.store, "store").enforce_disk_bound):
                    log.warning(
                        "store over retention.max_store_bytes: dropped partition %s of %s (%d bytes)",
                        dropped.partition,
                        dropped.table,
                        dropped.bytes,
                    )
            except Exception:  # the next check may succeed
                log.exception("enforcing retention.max_store_bytes failed")
            await asyncio.sleep(interval)

    async def _record_metrics_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.record_metrics)
            except Exception:  # the store may be down: the next snapshot may succeed
                log.exception("writing collector_metrics failed")

    def _tls_options(self) -> UvicornTls:
        tls = self.settings.tls
        if not tls.enabled:
            return {}
        options: UvicornTls = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
        if tls.client_ca_file is not None:
            options["ssl_ca_certs"] = str(tls.client_ca_file)
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        return options

    def _serve(self, name: str, app: ASGIApp, endpoint: Endpoint) -> None:
        sock = _listen(endpoint)
        self.ports[name] = sock.getsockname()[1]

        def closed(reason: str) -> None:
            self.metrics.inc("foothold_connections_closed_total", listener=name, reason=reason)

        config = uvicorn_config(app, self.settings.connections, closed, **self._tls_options())
        server = _EmbeddedServer(config)
        self._servers.append((server, asyncio.create_task(server.serve(sockets=[sock]))))

    def endpoint_url(self, name: str) -> str:
        host = {
            "otlp_grpc": self.settings.receivers.grpc,
            "otlp_http": self.settings.receivers.http,
            "query_api": self.settings.query_api,
        }[name].address.host
        if self.settings.tls.enabled:
            scheme = "https://"  # the OTel SDK's gRPC exporter reads https:// as "use TLS"
        else:
            scheme = "" if name == "otlp_grpc" else "http://"
        return f"{scheme}{host}:{self.ports[name]}"

    def _write_discovery(self) -> None:
        info = {"pid": os.getpid(), "store": self.settings.store_dsn}
        info |= {name: self.endpoint_url(name) for name in self.ports}
        write_discovery(self.settings.data_dir, info)

    async def stop(self) -> int:
        """Graceful: stop receiving, flush what was accepted, close the store. Returns spans lost."""
        for task in (self._store_task, self._alert_loop, self._metrics_loop, self._retention_loop):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._grpc:
            await self._grpc.stop()
        for server, _task in self._servers:
            server.should_exit = True
        await asyncio.gather(*(task for _, task in self._servers), return_exceptions=True)
        if self.query_door is not None:
            await asyncio.to_thread(self.query_door.close)
        # without a store there is nothing to wait for: what is queued stays in the spool for the next start
        wait = 30.0 if self.store else 0.5
        lost = await asyncio.to_thread(self.pipeline.close, wait) if self.pipeline else 0
        lost += await asyncio.to_thread(self.logs_pipeline.close, wait) if self.logs_pipeline else 0
        if self._metrics_client is not None:
            try:
                await asyncio.to_thread(self.record_metrics)  # the final figures, after the last export
            except Exception:
                log.exception("writing the final collector_metrics failed")
        if self.store:
            self.store.close()
        with contextlib.suppress(FileNotFoundError):
            (self.settings.data_dir / DISCOVERY_FILE).unlink()
        return lost

    async def run_until_signalled(self) -> int:
        try:
            await self.start()
        except BaseException:
            with contextlib.suppress(Exception):  # what already listens (gRPC) closes on this loop, not at exit
                await self.stop()
            raise
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: flushing accepted spans")
        return await self.stop()


class CollectorThread:
    """A collector on its own loop in a background thread (tests, the demo, benchmarks)."""

    def __init__(
        self,
        settings: Settings,
        processors: list[Processor] | None = None,
        exporter_factory: ExporterFactory = ClickHouseExporter,
    ) -> None:
        self.collector = Collector(settings, processors, exporter_factory)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="foothold-collector", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.collector.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Collector:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self.collector

    def stop(self) -> int:
        lost = asyncio.run_coroutine_threadsafe(self.collector.stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        return lost

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
