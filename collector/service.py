"""The collector process: components built from config, started in dependency order, stopped in reverse.

Each part is a component with the same small lifecycle (:class:`~foothold.collector.component.Component`:
``start``/``stop``), built here from its own config section and handed what it needs. Start order: the store
connection (it keeps trying in the background), the collector_metrics writer, the redaction worker processes
(``pipeline.workers``, collector/processing.py), the traces and logs pipelines (spool, batches, processors,
ClickHouse writer), the retention bound, the alert evaluator, the query API, then the receivers; stop is the
reverse, so receivers stop taking data first, the pipelines then flush everything they accepted, the final
metrics snapshot follows the last export, and the store closes last. Data flows one way: receivers ->
pipelines -> store; the store connection hands the opened store to the exporters, the alerts and the metrics
writer. A discovery file in the data dir tells the CLI where this collector's query API listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from typing import Protocol

from foothold.collector import metrics as m
from foothold.collector.alerting import Alerting, EvaluationReport
from foothold.collector.auth import Authenticator
from foothold.collector.chain import ALERTS_CHAIN_SUFFIX, ChainingExporter, ChainStore, Mirror, load_chain_key
from foothold.collector.component import Component, Periodic
from foothold.collector.config import Settings
from foothold.collector.discovery import DISCOVERY_FILE, write_discovery
from foothold.collector.exporter import ClickHouseExporter
from foothold.collector.logs_exporter import ClickHouseLogsExporter
from foothold.collector.metrics_table import MetricsTable
from foothold.collector.pipeline import LOGS, Exporter, Pipeline, Processor, open_spool
from foothold.collector.processing import Workers, default_workers
from foothold.collector.processors import build_processors
from foothold.collector.processors.redact import RequestRedactor
from foothold.collector.query_api import QueryApi
from foothold.collector.query_door import QueryDoor
from foothold.collector.receivers.grpc import GrpcReceiver
from foothold.collector.receivers.http import OtlpHttpReceiver
from foothold.collector.serving import raise_descriptor_limit
from foothold.collector.store import Store, StoreError, chdb_path
from foothold.collector.store_connection import DiskBound, StoreConnection
from foothold.collector.verify import VerifyReport, verify

log = logging.getLogger("foothold.collector")


def default_processors(settings: Settings) -> list[Processor]:
    """The batch processors ``pipeline.processors`` names, in order (see foothold.collector.processors).
    Redaction is not one of them: it runs on each request before it is spooled (:func:`request_redactor`),
    so nothing downstream (spool, quarantine, classifier evidence) sees a secret."""
    return build_processors(settings.pipeline.processors, settings.processors)


def request_redactor(settings: Settings) -> RequestRedactor:
    if settings.fingerprint_key is not None:
        key = settings.fingerprint_key.get_secret_value().encode()
    else:
        log.warning(
            "no fingerprint_key (FOOTHOLD_FINGERPRINT_KEY) set: secrets redacted here will not correlate with agents'"
        )
        key = os.urandom(32)
    return RequestRedactor(key)


class ExporterFactory(Protocol):
    def __call__(self, store: Store) -> Exporter: ...


class Collector:
    def __init__(
        self,
        settings: Settings,
        processors: list[Processor] | None = None,
        exporter_factory: ExporterFactory = ClickHouseExporter,
    ) -> None:
        self.settings = settings
        self._processors = default_processors(settings) if processors is None else processors
        self._exporter_factory = exporter_factory
        self.metrics = m.Metrics()
        self.auth = Authenticator(settings.auth)
        self.chain: ChainStore | None = None
        self.alert_chain: ChainStore | None = None
        self.connection = StoreConnection(settings, self.metrics)
        self.metrics_table = MetricsTable(self.metrics)
        self.metrics_recorded = self.metrics_table.recorded  # set after each write to collector_metrics
        self.pipeline: Pipeline | None = None
        self.logs_pipeline: Pipeline | None = None  # OTLP logs: agents' native telemetry, into otel_logs
        self.workers: Workers | None = None  # redaction at the door off this interpreter (pipeline.workers)
        self.alerts: Alerting | None = None
        self._components: list[tuple[str, Component]] = []  # in start order
        self._started: list[Component] = []
        self.ports: dict[str, int] = {}

    @property
    def store(self) -> Store | None:
        return self.connection.store

    def _build(self) -> list[tuple[str, Component]]:
        """Every component from its config section, in dependency order."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        built: list[tuple[str, Component]] = [("store", self.connection)]
        if s.metrics.enabled:
            writer = Periodic("writing collector_metrics", s.metrics.interval_seconds, self.metrics_table, at_stop=True)
            built.append(("metrics_table", writer))
        redactor = request_redactor(s)  # one key for both signals, so their fingerprints correlate
        count = default_workers() if s.pipeline.workers is None else s.pipeline.workers
        self.workers = Workers(count, redactor.key)  # the same key as in this process: the same redaction
        built.append(("workers", self.workers))  # before the pipelines, stopped after them
        # Logs run through a pipeline of their own (spool, batches, deduplicated inserts), with the same
        # processors: one tool-call classifier and one call-of-record index whichever signal reports a call.
        self.pipeline = Pipeline(
            s.batch,
            None,
            self._processors,
            spool=open_spool(s.data_dir, s.spool),  # replays what an earlier run accepted but did not store
            limits=s.limits,
            quarantine_dir=s.data_dir / "quarantine",
            redactor=redactor,
            workers=self.workers,
            metrics=self.metrics,
        )
        self.logs_pipeline = Pipeline(
            s.batch,
            None,
            self._processors,
            spool=open_spool(s.data_dir, s.spool, "spool-logs"),
            limits=s.limits,
            quarantine_dir=s.data_dir / "quarantine-logs",
            signal=LOGS,
            redactor=redactor.logs,  # native tool events carry arguments, output and tool input
            workers=self.workers,
            metrics=self.metrics,
        )
        # The store goes to the exporters first: reading the chain head may fail, and the connection retries
        self.connection.on_connect(self._attach_exporters)
        if s.metrics.enabled:
            self.connection.on_connect(self.metrics_table.attach)
        built += [("pipeline/traces", self.pipeline), ("pipeline/logs", self.logs_pipeline)]
        if s.retention.max_store_bytes:
            bound = Periodic(
                "enforcing retention.max_store_bytes",
                s.retention.check_interval_seconds,
                DiskBound(self.connection),
                first=True,
            )
            built.append(("retention", bound))
        if s.alerts.enabled:
            self.alerts = Alerting(s.alerts, self.connection, self.flush)
            alerts = self.alerts
            self.connection.on_connect(lambda store: alerts.attach(store.client(), self.alert_chain))
            built.append(("alerts", self.alerts))
        if s.query_api.enabled:
            api = QueryApi(
                s.query_api,
                self.connection,
                database=s.store.database,
                embedded=chdb_path(s.store_dsn) is not None,
                metrics=self.metrics,
                auth=self.auth,
                connections=s.connections,
                tls=s.tls,
                flush=self.flush,
                evaluate_alerts=self.evaluate_alerts if s.alerts.enabled else None,
                verify=self.verify_chain if s.chain.enabled else None,
            )
            built.append(("query_api", api))
        if s.receivers.grpc.enabled:
            grpc = GrpcReceiver(
                self.pipeline,
                s.receivers.grpc,
                auth=self.auth,
                metrics=self.metrics,
                tls=s.tls,
                connections=s.connections,
                logs_pipeline=self.logs_pipeline,
            )
            built.append(("otlp_grpc", grpc))
        if s.receivers.http.enabled:
            http = OtlpHttpReceiver(
                self.pipeline,
                s.receivers.http,
                auth=self.auth,
                metrics=self.metrics,
                connections=s.connections,
                tls=s.tls,
                logs_pipeline=self.logs_pipeline,
            )
            built.append(("otlp_http", http))
        return built

    async def start(self) -> None:
        """Every component in dependency order; then wait for the store's first attempt.

        The receivers take data while the store is unreachable: its first connection (schema migration
        included) runs while the listeners already serve; start waits for it up to
        ``store.startup_wait_seconds``, then carries on degraded and keeps trying in the background (a store
        that is down, a cluster node that does not answer ``ON CLUSTER`` DDL). Until it succeeds the spool
        accepts, ``/healthz`` says ``degraded`` and ``foothold_store_up`` is 0.
        """
        s = self.settings
        self._components = self._build()
        self._warn_about_exposure()
        listeners = [s.receivers.grpc.enabled, s.receivers.http.enabled, s.query_api.enabled]
        raise_descriptor_limit(s.connections, sum(listeners))
        for name, component in self._components:
            await component.start()
            self._started.append(component)
            port = getattr(component, "port", None)
            if isinstance(port, int):
                self.ports[name] = port
        await self.connection.first_attempt()
        self._write_discovery()
        log.info("collector ready: %s, store %s%s", self.ports, s.store_dsn, "" if self.store else " (unreachable)")

    def _attach_exporters(self, store: Store) -> None:
        """The store opened: the configured exporter, chained (tamper evidence), and the logs exporter."""
        s = self.settings
        exporter = self._exporter_factory(store)
        if s.chain.enabled:
            key = load_chain_key(s.chain_key_path, create=True)
            mirror = Mirror(s.chain_mirror_path, self.metrics) if s.chain_mirror_path else None
            self.chain = ChainStore(store, s.chain.name, key, mirror, self.metrics)
            self.alert_chain = ChainStore(store, s.chain.name + ALERTS_CHAIN_SUFFIX, key, mirror, self.metrics)
            exporter = ChainingExporter(exporter, self.chain)
        logs_exporter = ClickHouseLogsExporter(store)
        assert self.pipeline is not None and self.logs_pipeline is not None  # built before the store is connected
        self.pipeline.attach_exporter(exporter)
        self.logs_pipeline.attach_exporter(logs_exporter)

    @property
    def query_door(self) -> QueryDoor | None:
        api = next((c for _, c in self._components if isinstance(c, QueryApi)), None)
        return api.door if api is not None else None

    def flush(self, timeout: float = 60.0) -> bool:
        """Export everything accepted so far, spans and logs; True when it is all stored."""
        done = self.pipeline.flush(timeout) if self.pipeline else True
        return (self.logs_pipeline.flush(timeout) if self.logs_pipeline else True) and done

    def evaluate_alerts(self) -> EvaluationReport:
        """One pass of the alert rules over everything accepted so far (blocking: call off the loop)."""
        if self.alerts is None:
            raise RuntimeError("alerts are disabled (alerts.enabled: false)")
        return self.alerts.evaluate()

    def record_metrics(self) -> int:
        """Write one snapshot of the self-telemetry to collector_metrics now (blocking: call off the loop)."""
        return self.metrics_table()

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
        if not self.settings.chain.enabled:
            raise RuntimeError("the export chain is disabled (chain.enabled: false)")
        store = self.connection.connected()
        if self.chain is None or self.alert_chain is None:
            raise StoreError("the store has just opened; verify again in a moment")
        if self.pipeline is not None:
            self.pipeline.flush(60.0)
        client = store.client()
        s = self.settings
        with self.chain.lock, self.alert_chain.lock:
            return verify(
                lambda sql: client.query(sql, settings={"readonly": 1}).result_rows,
                load_chain_key(s.chain_key_path),
                s.chain_mirror_path,
                s.chain.other_writers,
                local_chains=(s.chain.name,),
            )

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
        info: dict[str, object] = {"pid": os.getpid(), "store": self.settings.store_dsn}
        info |= {name: self.endpoint_url(name) for name in self.ports}
        write_discovery(self.settings.data_dir, info)

    async def stop(self) -> int:
        """Graceful: every started component in reverse order (receivers first, the store last). Returns the
        spans lost (accepted but neither stored nor kept in the spool or quarantine)."""
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:  # the rest must still stop: the pipelines flush, the store closes
                log.exception("stopping %s failed", type(component).__name__)
        with contextlib.suppress(FileNotFoundError):
            (self.settings.data_dir / DISCOVERY_FILE).unlink()
        return int(sum(self.metrics.value(m.SPANS_LOST, signal=signal) for signal in ("traces", "logs")))

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
