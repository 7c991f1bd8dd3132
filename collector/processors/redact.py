"""Server-side redaction: the second line of defence for spans that did not come through our shim.

Foothold's instrumentation redacts before export, but spans from other instrumentations (OpenInference
``input.value``, Claude Code hook payloads, GenAI-convention agents) may carry raw secrets. Content-bearing
attributes are scanned with the same rules and the same deployment fingerprint key as the agents, so a
secret redacted here correlates with the one the shim fingerprinted.
"""

from __future__ import annotations

import functools
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
# Agents repeat content (the same arguments, the same results) and attribute names constantly. The
# results below are pure functions of their inputs, so they are memoised exactly, with bounded LRUs; only
# short inputs are cached, so the caches hold at most a few MiB whatever the senders send.
_CACHE_ENTRIES = 8192
_CACHE_MAX_CHARS = 4096


def _redact_content(value: str, key: bytes) -> str:
    """JSON content keeps its structure (so secret-named fields are caught); anything else is text."""
    if value[:1] in ("{", "["):
        try:
            return orjson.dumps(redact.redact_value(orjson.loads(value), key)).decode()
        except orjson.JSONDecodeError:
            pass
    return redact.redact_text(value, key)[0]


_redact_content_cached = functools.lru_cache(maxsize=_CACHE_ENTRIES)(_redact_content)
_is_secret_name_cached = functools.lru_cache(maxsize=_CACHE_ENTRIES)(redact.is_secret_name)


def _redacted(value: str, key: bytes) -> str:
    return _redact_content_cached(value, key) if len(value) <= _CACHE_MAX_CHARS else _redact_content(value, key)


def _secret_name(name: str) -> bool:
    return _is_secret_name_cached(name) if len(name) <= _CACHE_MAX_CHARS else redact.is_secret_name(name)


class RedactProcessor:
    def __init__(self, fingerprint_key: bytes) -> None:
        self._key = fingerprint_key

    def process(self, batch: SpanBatch) -> None:
        for attrs in batch.span_attributes:
            for name in CONTENT_ATTRIBUTES:
                value = attrs.get(name)
                if value:
                    attrs[name] = _redacted(value, self._key)
            for name, value in attrs.items():
                if name.startswith(_OWN_NAMESPACES):  # fingerprints and markers by construction
                    continue
                if (
                    value
                    and _secret_name(name)
                    and redact.looks_secret_for(name, value)
                    and not redact.is_marker(value)
                ):
                    attrs[name] = redact.marker("secret_value", value, self._key)
