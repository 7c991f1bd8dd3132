"""Redaction at the door: every request is scrubbed before it is spooled, so no secret rests anywhere.

Foothold's instrumentation redacts before export, but spans from other instrumentations (GenAI-convention
agents, OpenInference ``input.value``, hook payloads, plain OTel SDK spans) may carry raw secrets anywhere: in
span names, status messages, any attribute (``process.command_line``, ``http.url``, ``db.statement``,
``gen_ai.input.messages``), event and link attributes, resource attributes. This walks the decoded OTLP
request and runs every string through the same rules and the same deployment fingerprint key as the agents
(``foothold.redact``), so a secret redacted here correlates with the one the shim fingerprinted.

It runs in :meth:`Pipeline.submit`, before the spool append: the spool, the quarantine and the store only
ever hold redacted bodies. A request with nothing to redact keeps its received bytes (no re-encoding).

String values that hold JSON (``gen_ai.input.messages``, ``gen_ai.tool.definitions``, tool arguments) stay
valid JSON: secrets are redacted inside the string values and under secret-named fields.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from foothold import redact

log = logging.getLogger("foothold.collector.redact")

# Our own attributes hold fingerprints and markers by construction: their values are still scanned for
# token shapes, but the name alone (``foothold.credential.fingerprint``) does not make a value secret.
_OWN_NAMESPACES = ("foothold.",)
# Agents repeat content (the same arguments, span names, resource attributes) constantly. The results are
# pure functions of their inputs, so they are memoised exactly, with bounded LRUs; only short inputs are
# cached, so the caches hold at most a few MiB whatever the senders send.
_CACHE_ENTRIES = 8192
_CACHE_MAX_CHARS = 4096


def _scrub_attribute(name: str, value: str, key: bytes) -> str:
    if value[:1] in ("{", "["):
        return redact.redact_content(value, key)
    if name.startswith(_OWN_NAMESPACES):
        return redact.redact_text(value, key)[0]
    return redact.redact_named(name, value, key)


def _scrub_text(value: str, key: bytes) -> str:
    return redact.redact_text(value, key)[0]


_scrub_attribute_cached = functools.lru_cache(maxsize=_CACHE_ENTRIES)(_scrub_attribute)
_scrub_text_cached = functools.lru_cache(maxsize=_CACHE_ENTRIES)(_scrub_text)


class RequestRedactor:
    """Redacts an OTLP traces request (call it) or logs request (``logs``) in place; says whether anything changed."""

    def __init__(self, fingerprint_key: bytes) -> None:
        self._key = fingerprint_key

    @property
    def key(self) -> bytes:
        """The fingerprint key: worker processes redact with the same one (foothold.collector.processing)."""
        return self._key

    def __call__(self, request: ExportTraceServiceRequest) -> bool:
        return self._walk(request.resource_spans, "scope_spans", "spans", self._span)

    def logs(self, request: ExportLogsServiceRequest) -> bool:
        """The same for an ``ExportLogsServiceRequest`` (native agent telemetry carries tool parameters and
        content in log bodies and attributes): every string of the body, attributes and resource."""
        return self._walk(request.resource_logs, "scope_logs", "log_records", self._log_record)

    def _walk(self, resources: Iterable[Any], scopes: str, items: str, redact_item: Callable[[Any], bool]) -> bool:
        """The OTLP envelope, the same for traces and logs: each resource's attributes, each scope's, then
        every item (span or log record) under it."""
        changed = False
        for resource in resources:
            changed |= self._attributes(resource.resource.attributes)
            for scoped in getattr(resource, scopes):
                changed |= self._attributes(scoped.scope.attributes)
                for item in getattr(scoped, items):
                    changed |= redact_item(item)
        return changed

    def _log_record(self, record: LogRecord) -> bool:
        changed = self._any_value("body", record.body)
        changed |= self._attributes(record.attributes)
        return changed | self._field(record, "event_name")

    def _span(self, span: Span) -> bool:
        changed = self._field(span, "name") | self._field(span.status, "message") | self._field(span, "trace_state")
        changed |= self._attributes(span.attributes)
        for event in span.events:
            changed |= self._field(event, "name") | self._attributes(event.attributes)
        for link in span.links:
            changed |= self._field(link, "trace_state") | self._attributes(link.attributes)
        return changed

    def _field(self, message: Message, name: str) -> bool:
        """Redact one plain-text field of a protobuf message (a span name, a status message ...) in place."""
        value: str = getattr(message, name)
        if not value:
            return False
        text = self._text(value)
        if text == value:
            return False
        setattr(message, name, text)
        return True

    def _text(self, value: str) -> str:
        if len(value) <= _CACHE_MAX_CHARS:
            return _scrub_text_cached(value, self._key)
        return _scrub_text(value, self._key)

    def _attributes(self, attributes: Iterable[KeyValue]) -> bool:
        changed = False
        for kv in attributes:
            changed |= self._any_value(kv.key, kv.value)
        return changed

    def _any_value(self, name: str, value: AnyValue) -> bool:
        which = value.WhichOneof("value")
        if which == "string_value":
            text = value.string_value
            if not text:
                return False
            if len(text) <= _CACHE_MAX_CHARS and len(name) <= _CACHE_MAX_CHARS:
                scrubbed = _scrub_attribute_cached(name, text, self._key)
            else:
                scrubbed = _scrub_attribute(name, text, self._key)
            if scrubbed != text:
                value.string_value = scrubbed
                return True
            return False
        if which == "array_value":  # each element under the array's name (a list of passwords is secret too)
            changed = False
            for item in value.array_value.values:
                changed |= self._any_value(name, item)
            return changed
        if which == "kvlist_value":
            return self._attributes(value.kvlist_value.values)
        return False  # numbers, booleans, bytes (stored as base64, never read as text)
