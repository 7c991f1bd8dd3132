"""``setup()``: wire Foothold into an OpenTelemetry SDK pipeline, or join the one already there."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Sequence, Sized
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from . import audit, runtime
from .context import ContextSpanProcessor
from .watch import Watcher, WatchList

WATCH_ENV = "FOOTHOLD_WATCH"
DEFAULT_PROTOCOL = "http/protobuf"  # the OTLP specification's default
DEFAULT_MAX_QUEUE_SIZE = 2048
DEFAULT_SCHEDULE_DELAY_MILLIS = 500
DEFAULT_EXPORT_TIMEOUT_SECONDS = 5.0  # bounds one export attempt and shutdown; never the agent's calls
_TRACER_NAME = "foothold.instrumentation"
_joined: weakref.WeakSet[TracerProvider] = weakref.WeakSet()  # providers that already have our processor
log = logging.getLogger("foothold.instrumentation")

# The OTLP default ports: a protocol sent to the other one's port loses every span with only an exporter
# message, so setup() says it plainly (protocol -> the other protocol's port, its name, the right port).
_SWAPPED_PORT = {"http/protobuf": (4317, "OTLP/gRPC", 4318), "grpc": (4318, "OTLP/HTTP", 4317)}


class _CountingExporter(SpanExporter):
    """Passes spans through, counting those the backend did not take (after the exporter's retries)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            runtime.report_once("span export", exc)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that also counts the spans it drops on a full queue. The SDK reports those
    only as an opt-in internal metric, so we peek at its queue; if a future SDK renames it, the count
    reads as unknown (None) rather than failing."""

    def __init__(
        self,
        exporter: SpanExporter,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_millis: float | None = None,
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
        )
        queue = getattr(self._batch_processor, "_queue", None)  # the SDK's private bounded deque
        limit = getattr(queue, "maxlen", None)
        self._queue: tuple[Sized, int] | None = (queue, limit) if queue is not None and limit is not None else None
        self.dropped: int | None = 0 if self._queue is not None else None

    def on_end(self, span: ReadableSpan) -> None:
        if self._queue is not None and self.dropped is not None:
            queue, limit = self._queue
            if len(queue) >= limit:
                self.dropped += 1
        super().on_end(span)


@dataclass
class Instrumentation:
    """The result of ``setup()``: the provider in use and the export pipeline Foothold added (if any)."""

    tracer_provider: TracerProvider | None
    runtime: runtime.Runtime
    owns_provider: bool = False
    _processor: _CountingBatchSpanProcessor | None = field(default=None, repr=False)
    _exporter: _CountingExporter | None = field(default=None, repr=False)

    @property
    def dropped_spans(self) -> int | None:
        """Spans lost to a full export queue (None: not measurable with this SDK)."""
        return self._processor.dropped if self._processor else 0

    @property
    def failed_spans(self) -> int:
        """Spans the exporter gave up on (backend down or refusing)."""
        return self._exporter.failed if self._exporter else 0

    def force_flush(self, timeout_millis: int = 5000) -> bool:
        if self.tracer_provider is None:
            return True
        return self.tracer_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop what ``setup()`` added; a provider that was joined stays the owner's."""
        if self.owns_provider and self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        elif self._processor is not None:
            processor: SpanProcessor = self._processor  # the SDK annotates SpanProcessor.shutdown, not its subclass's
            processor.shutdown()
        if self.runtime.watcher is not None:
            self.runtime.watcher.close()


def setup(
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    tracer_provider: TracerProvider | None = None,
    capture_content: bool | None = None,
    watch: bool | WatchList | Sequence[str] | None = None,
    *,
    home: str | None = None,
    fingerprint_key: str | bytes | None = None,
    exporter: SpanExporter | None = None,
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
    export_timeout_seconds: float = DEFAULT_EXPORT_TIMEOUT_SECONDS,
    max_content_bytes: int = 8192,
    hash_limit_bytes: int = 1 << 20,
) -> Instrumentation:
    """Configure Foothold; never raises into the agent (on error it logs and runs without spans).

    Provider: ``tracer_provider`` if given, else the global one if it is an SDK provider, else a new
    one (from ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` or ``service_name``) made global.
    Export: an OTLP exporter (``endpoint``/``protocol`` or the standard ``OTEL_EXPORTER_OTLP_*``
    variables) or ``exporter`` behind a bounded BatchSpanProcessor is added to a provider we create,
    or to a joined one only when ``endpoint`` or ``exporter`` is passed explicitly.
    Watch list: on by default (``FOOTHOLD_WATCH=0`` or ``watch=False`` turns it off).
    """
    if runtime.env_flag(runtime.DISABLED_ENV):
        return _disabled()
    try:
        return _setup(**locals())
    except Exception as exc:
        runtime.report_once("setup", exc)
        return _disabled()


def _disabled() -> Instrumentation:
    audit.enable(False)
    rt = runtime.Runtime(tracer=trace.NoOpTracer(), disabled=True)
    runtime.install(rt)
    return Instrumentation(None, rt)


def _setup(
    service_name: str | None,
    endpoint: str | None,
    protocol: str | None,
    tracer_provider: TracerProvider | None,
    capture_content: bool | None,
    watch: bool | WatchList | Sequence[str] | None,
    home: str | None,
    fingerprint_key: str | bytes | None,
    exporter: SpanExporter | None,
    max_queue_size: int,
    export_timeout_seconds: float,
    max_content_bytes: int,
    hash_limit_bytes: int,
) -> Instrumentation:
    provider, owns = _provider(tracer_provider, service_name)
    if provider not in _joined:
        provider.add_span_processor(ContextSpanProcessor())
        _joined.add(provider)
    rt = runtime.Runtime(
        tracer=provider.get_tracer(_TRACER_NAME),
        capture_content=runtime.env_flag(runtime.CAPTURE_CONTENT_ENV) if capture_content is None else capture_content,
        max_content_bytes=max_content_bytes,
        hash_limit_bytes=hash_limit_bytes,
        watcher=_watcher(watch, home, hash_limit_bytes),
        home=home or os.path.expanduser("~"),
        configured_key=fingerprint_key.encode() if isinstance(fingerprint_key, str) else fingerprint_key,
    )
    instrumentation = Instrumentation(provider, rt, owns)
    if owns or endpoint is not None or exporter is not None:
        counted = _CountingExporter(exporter or _otlp_exporter(endpoint, protocol, export_timeout_seconds))
        processor = _CountingBatchSpanProcessor(
            counted,
            max_queue_size=max_queue_size,
            max_export_batch_size=None if "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" in os.environ else min(512, max_queue_size),
            schedule_delay_millis=None if "OTEL_BSP_SCHEDULE_DELAY" in os.environ else DEFAULT_SCHEDULE_DELAY_MILLIS,
        )
        provider.add_span_processor(processor)
        instrumentation._processor, instrumentation._exporter = processor, counted
    runtime.install(rt)
    audit.enable(True)
    return instrumentation


def _provider(given: TracerProvider | None, service_name: str | None) -> tuple[TracerProvider, bool]:
    if given is not None:
        return given, False
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        return existing, False
    attributes = {SERVICE_NAME: service_name} if service_name else {}
    created = TracerProvider(resource=Resource.create(attributes))
    trace.set_tracer_provider(created)
    return created, True


def _otlp_exporter(endpoint: str | None, protocol: str | None, timeout: float) -> SpanExporter:
    """OTLP exporter honouring the standard variables; the timeout is short unless one is set."""
    protocol = (
        protocol
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or DEFAULT_PROTOCOL
    ).strip()
    _warn_on_swapped_port(endpoint, protocol)
    env_timeout = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" in os.environ or "OTEL_EXPORTER_OTLP_TIMEOUT" in os.environ
    timeout_arg = None if env_timeout else timeout
    if protocol == "grpc":  # imported lazily: grpc is slow to import and not every agent uses it
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        insecure = endpoint.startswith("http://") if endpoint else None
        return GrpcExporter(endpoint=endpoint, insecure=insecure, timeout=timeout_arg)
    if protocol != "http/protobuf":
        raise ValueError(f"unsupported OTLP protocol {protocol!r}: use grpc or http/protobuf")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    if endpoint is not None and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"  # a base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT is
    return HttpExporter(endpoint=endpoint, timeout=timeout_arg)


def _watcher(watch: bool | WatchList | Sequence[str] | None, home: str | None, hash_limit: int) -> Watcher | None:
    if watch is None:
        watch = runtime.env_flag(WATCH_ENV, default=True)
    if watch is False:
        return None
    if isinstance(watch, WatchList):
        watch_list = watch
    elif watch is True:
        watch_list = WatchList() if home is None else WatchList(home=home)
    else:
        paths = tuple(watch)
        watch_list = WatchList(paths) if home is None else WatchList(paths, home=home)
    return Watcher(watch_list, hash_limit)


def _warn_on_swapped_port(endpoint: str | None, protocol: str) -> None:
    url = (
        endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    if not url or protocol not in _SWAPPED_PORT:
        return
    try:
        port = urlsplit(url if "://" in url else f"//{url}").port
    except ValueError:
        return
    wrong, other, right = _SWAPPED_PORT[protocol]
    if port == wrong:
        log.warning(
            "OTLP endpoint %s is the %s port but the protocol is %s: no span will arrive. "
            "foothold-audit collect takes OTLP/HTTP on :4318 and OTLP/gRPC on :4317: use port %d, "
            "or protocol=%r (OTEL_EXPORTER_OTLP_PROTOCOL).",
            url,
            other,
            protocol,
            right,
            "grpc" if protocol != "grpc" else "http/protobuf",
        )
