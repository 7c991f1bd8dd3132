"""Server-side redaction: the second line of defence for spans that did not come through our shim.

Foothold's instrumentation redacts before export, but spans from other instrumentations (OpenInference
``input.value``, Claude Code hook payloads, GenAI-convention agents) may carry raw secrets. Content-bearing
attributes are scanned with the same rules and the same deployment fingerprint key as the agents, so a
secret redacted here correlates with the one the shim fingerprinted.
"""

from __future__ import annotations

import logging

import orjson

from foothold import redact, semconv
from foothold.collector.rows import SpanBatch

log = logging.getLogger("foothold.collector.redact")

CONTENT_ATTRIBUTES = (
    semconv.GEN_AI_TOOL_CALL_ARGUMENTS,
    semconv.GEN_AI_TOOL_CALL_RESULT,
    "input.value",
    "output.value",
    "gen_ai.prompt",
    "gen_ai.completion",
)
_OWN_NAMESPACES = ("foothold.", "gen_ai.")


def _redact_content(value: str, key: bytes) -> str:
    """JSON content keeps its structure (so secret-named fields are caught); anything else is text."""
    if value[:1] in ("{", "["):
        try:
            return orjson.dumps(redact.redact_value(orjson.loads(value), key)).decode()
        except orjson.JSONDecodeError:
            pass
    return redact.redact_text(value, key)[0]


class RedactProcessor:
    def __init__(self, fingerprint_key: bytes) -> None:
        self._key = fingerprint_key

    def process(self, batch: SpanBatch) -> None:
        for attrs in batch.span_attributes:
            for name in CONTENT_ATTRIBUTES:
                value = attrs.get(name)
                if value:
                    attrs[name] = _redact_content(value, self._key)
            for name, value in attrs.items():
                if name.startswith(_OWN_NAMESPACES):  # fingerprints and markers by construction
                    continue
                if value and redact.is_secret_name(name) and redact.looks_secret_for(name, value) and not redact.is_marker(value):
                    attrs[name] = redact.marker("secret_value", value, self._key)
