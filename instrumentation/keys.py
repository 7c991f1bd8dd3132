"""The fingerprint key: configured by the deployment (the key, or a file holding it), else a per-process random
one. Free of OpenTelemetry so the Claude Code hook can read it without loading the SDK."""

from __future__ import annotations

import functools
import logging
import os
import secrets
from pathlib import Path

FINGERPRINT_KEY_ENV = "FOOTHOLD_FINGERPRINT_KEY"
FINGERPRINT_KEY_FILE_ENV = "FOOTHOLD_FINGERPRINT_KEY_FILE"

log = logging.getLogger("foothold.instrumentation")


@functools.cache
def read_key_file(path: str) -> bytes:
    """The deployment key held in ``path`` (surrounding whitespace dropped), read once per process. The
    error names the variable and the file, never the key."""
    try:
        key = Path(path).expanduser().read_bytes().strip()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ValueError(f"{FINGERPRINT_KEY_FILE_ENV}={path}: cannot read the fingerprint key ({reason})") from None
    if not key:
        raise ValueError(f"{FINGERPRINT_KEY_FILE_ENV}={path}: the file is empty, it should hold the fingerprint key")
    return key


def environment_key() -> bytes | None:
    """``FOOTHOLD_FINGERPRINT_KEY``, else the file ``FOOTHOLD_FINGERPRINT_KEY_FILE`` names; an unreadable file
    is logged as an error and counts as no key (the tool calls are still recorded)."""
    value = os.environ.get(FINGERPRINT_KEY_ENV)
    if value:
        return value.encode()
    path = os.environ.get(FINGERPRINT_KEY_FILE_ENV)
    if not path:
        return None
    try:
        return read_key_file(path)
    except ValueError as exc:
        log.error("%s", exc)
        return None


_process_key: bytes | None = None


def random_process_key() -> bytes:
    global _process_key
    if _process_key is None:
        _process_key = secrets.token_bytes(32)
        log.warning(
            "no usable %s or %s: credential fingerprints use a per-process random key and will not "
            "correlate across processes",
            FINGERPRINT_KEY_ENV,
            FINGERPRINT_KEY_FILE_ENV,
        )
    return _process_key


def key() -> bytes:
    return environment_key() or random_process_key()
