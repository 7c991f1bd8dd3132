"""Spans of the Claude Code hook, encoded as OTLP/JSON and POSTed by the standard library, with a spool.

Claude Code waits for the hook on every tool call and starts it as a new process each time, so what the hook
imports is its latency: the OpenTelemetry SDK and its OTLP exporters cost more than everything else the hook
does. The hook's spans are few and fully known when it sends them, so they are built here as plain
dictionaries in the OTLP/JSON encoding (hex ids, nanosecond strings, typed attribute values) and sent with
``http.client``. Nothing is lost when the collector is down: a body that could not be delivered is written to
the spool (in the private state directory) and sent again, oldest first, by the next hook process that reaches
the collector.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import hook_state

log = logging.getLogger("foothold.hook")

TRACES_PATH = "/v1/traces"
DEFAULT_ENDPOINT = "http://localhost:4318"
SPOOL_DIR = "spool"
SPOOL_MAX_FILES = 2000  # ~ a few days of a busy session's undelivered events; the oldest go first past it
RESEND_PER_EVENT = 20  # a backlog drains over several events: one event never waits on the whole backlog
STALE_CLAIM_SECONDS = 120  # far past any hook's delivery budget: its sender is gone
KIND_INTERNAL = 1
STATUS_ERROR = 2


@dataclass
class Span:
    name: str
    trace_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    parent_span_id: str = ""
    span_id: str = field(default_factory=lambda: f"{random.getrandbits(64) or 1:016x}")
    error: str | None = None  # status message; set means status ERROR

    def encode(self) -> dict[str, Any]:
        span: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            "kind": KIND_INTERNAL,
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(max(self.end_ns, self.start_ns)),
            "attributes": [{"key": k, "value": _value(v)} for k, v in self.attributes.items() if v is not None],
        }
        if self.parent_span_id:
            span["parentSpanId"] = self.parent_span_id
        if self.error is not None:
            span["status"] = {"code": STATUS_ERROR, "message": self.error}
        return span


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def encode(spans: list[Span], resource: dict[str, Any], scope: str) -> bytes:
    """One ExportTraceServiceRequest in OTLP/JSON."""
    request = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": k, "value": _value(v)} for k, v in resource.items()]},
                "scopeSpans": [{"scope": {"name": scope}, "spans": [s.encode() for s in spans]}],
            }
        ]
    }
    return orjson.dumps(request)


@dataclass(frozen=True)
class Destination:
    """Where the spans go: the collector's OTLP/HTTP traces URL and the headers it needs."""

    url: str
    headers: dict[str, str]
    timeout: float

    @classmethod
    def resolve(cls, endpoint: str | None, token_file: str | None, timeout: float) -> Destination:
        """``--endpoint`` (what ``hook install`` writes), else the ``OTEL_EXPORTER_OTLP_*`` variables (which reach
        the hook only outside Claude Code: 2.1.x strips every ``OTEL_*`` variable from hook processes)."""
        url = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if not url:
            base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
            url = base.rstrip("/") + TRACES_PATH
        elif endpoint and not urllib.parse.urlsplit(url).path.rstrip("/").endswith(TRACES_PATH):
            url = url.rstrip("/") + TRACES_PATH  # a base URL, as for every other Foothold --endpoint
        headers = {"Content-Type": "application/json"}
        for item in (os.environ.get("OTEL_EXPORTER_OTLP_HEADERS") or "").split(","):
            name, sep, value = item.partition("=")
            if sep and name.strip():
                headers[urllib.parse.unquote(name.strip())] = urllib.parse.unquote(value.strip())
        if token_file:
            token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
            if not token:
                raise ValueError(f"--token-file {token_file} is empty: it should hold the collector's bearer token")
            headers["Authorization"] = f"Bearer {token}"
        return cls(url, headers, timeout)


class DeliveryError(Exception):
    pass


def post(destination: Destination, body: bytes, deadline: float) -> None:
    """POST one body; raises DeliveryError unless the collector took it (2xx)."""
    parts = urllib.parse.urlsplit(destination.url)
    remaining = max(deadline - time.monotonic(), 0.05)
    timeout = min(destination.timeout, remaining)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(parts.netloc, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    try:
        path = parts.path or TRACES_PATH
        connection.request("POST", path + (f"?{parts.query}" if parts.query else ""), body, destination.headers)
        response = connection.getresponse()
        detail = response.read(512)
        if response.status // 100 != 2:
            raise DeliveryError(f"{destination.url} answered {response.status}: {detail[:200]!r}")
    except OSError as exc:
        raise DeliveryError(f"{destination.url}: {exc}") from None
    finally:
        connection.close()


class Spool:
    """Bodies not yet delivered, one file each, named so that a listing sorts oldest first."""

    def __init__(self, root: Path) -> None:
        self.dir = root / SPOOL_DIR

    def put(self, body: bytes) -> None:
        hook_state.private_dir(self.dir)
        hook_state.write_atomic(self.dir / f"{time.time_ns():020d}-{os.getpid()}.json", body)
        pending = self.pending()
        for old in pending[: max(len(pending) - SPOOL_MAX_FILES, 0)]:
            log.error("spool full (%d bodies): dropped the oldest, %s", SPOOL_MAX_FILES, old.name)
            old.unlink(missing_ok=True)

    def pending(self) -> list[Path]:
        try:
            entries = list(self.dir.iterdir())
        except FileNotFoundError:
            return []
        for claimed in entries:  # a sender killed mid-send (Claude Code's hook timeout) left its claim behind
            if claimed.name.endswith(".sending") and _age(claimed) > STALE_CLAIM_SECONDS:
                original = claimed.name[1:].rsplit(".", 2)[0]
                try:
                    os.rename(claimed, claimed.with_name(original))
                except OSError:
                    pass
        return sorted(p for p in self.dir.iterdir() if p.name.endswith(".json") and not p.name.startswith("."))

    def drain(self, destination: Destination, deadline: float) -> int:
        """Send what is spooled, oldest first, until one fails or time runs out; returns how many went."""
        sent = 0
        for path in self.pending()[:RESEND_PER_EVENT]:
            if time.monotonic() >= deadline:
                break
            try:
                claimed = path.with_name(f".{path.name}.{os.getpid()}.sending")
                os.rename(path, claimed)  # hooks run in parallel: one of them sends each body
                os.utime(claimed)  # the claim's age starts now, whatever the body's
            except FileNotFoundError:
                continue
            try:
                post(destination, hook_state.read_text(claimed).encode(), deadline)
            except DeliveryError:
                os.rename(claimed, path)
                raise
            claimed.unlink(missing_ok=True)
            sent += 1
        return sent


def _age(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 0.0


def deliver(body: bytes, destination: Destination, spool: Spool, budget: float) -> None:
    """Send ``body`` (spool it if that fails), then resend older spooled bodies within the same budget."""
    deadline = time.monotonic() + budget
    try:
        post(destination, body, deadline)
    except DeliveryError as exc:
        spool.put(body)
        log.warning("collector unreachable, spans spooled for the next hook event: %s", exc)
        return
    try:
        spool.drain(destination, deadline)
    except DeliveryError as exc:
        log.warning("spooled spans not resent yet: %s", exc)
