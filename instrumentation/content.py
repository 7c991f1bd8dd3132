"""Tool arguments and results as span text: redacted first, then cut to a size limit.

Kept free of OpenTelemetry so the Claude Code hook (a new process per event) can render content without
loading the SDK; :func:`foothold.instrumentation.tools.render_content` is the in-process entry point."""

from __future__ import annotations

from typing import Any

import orjson

from foothold.redact import redact_text, redact_value

_TRUNCATED = "…[truncated {} bytes]"
# Redaction runs before truncation, on at most this many times the limit, so a huge argument costs a
# bounded scan and a secret straddling the final cut is still whole when scanned.
_SCAN_FACTOR = 4


def render(value: Any, key: bytes, limit: int) -> str:
    """Redacted, size-limited text of a tool's arguments or result (strings are taken as already
    serialised, anything else becomes JSON)."""
    if not isinstance(value, str):
        redacted = redact_value(value, key)
        return truncate(orjson.dumps(redacted, option=orjson.OPT_NON_STR_KEYS, default=str).decode(), limit)
    scanned = value[: limit * _SCAN_FACTOR]
    unscanned = _utf8_len(value) - _utf8_len(scanned) if len(scanned) < len(value) else 0
    return truncate(redact_text(scanned, key)[0], limit, unscanned)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def truncate(text: str, limit: int, already_cut: int = 0) -> str:
    """At most ``limit`` UTF-8 bytes of ``text`` (cut on a character boundary), marked when cut."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit and not already_cut:
        return text
    return raw[:limit].decode("utf-8", "ignore") + _TRUNCATED.format(max(len(raw) - limit, 0) + already_cut)
