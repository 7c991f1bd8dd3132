"""Process-wide state the instrumentation modules share, and the rule that it never breaks the agent:
an instrumentation error is logged once per place and swallowed."""

from __future__ import annotations

import functools
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from .watch import Watcher

log = logging.getLogger("foothold.instrumentation")
_reported: set[str] = set()

DISABLED_ENV = "FOOTHOLD_DISABLED"
FINGERPRINT_KEY_ENV = "FOOTHOLD_FINGERPRINT_KEY"
FINGERPRINT_KEY_FILE_ENV = "FOOTHOLD_FINGERPRINT_KEY_FILE"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def report_once(where: str, exc: BaseException) -> None:
    """Log the first instrumentation error from ``where``; later ones would only repeat it."""
    try:
        if where not in _reported:
            _reported.add(where)
            log.warning("foothold instrumentation error in %s (further ones suppressed)", where, exc_info=exc)
    except Exception:  # logging itself failed: nothing left to do that could help the agent
        pass


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


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


def _environment_key() -> bytes | None:
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


def _random_process_key() -> bytes:
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


@dataclass(slots=True)
class Runtime:
    """What tool calls need at run time; ``setup()`` replaces it, the default one follows the global
    OpenTelemetry provider with no watch list."""

    tracer: trace.Tracer
    disabled: bool = False
    capture_content: bool = False
    max_content_bytes: int = 8192
    hash_limit_bytes: int = 1 << 20
    watcher: Watcher | None = None
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    configured_key: bytes | None = field(default=None, repr=False)

    def key(self) -> bytes:
        """Fingerprint key: configured, else from the environment (the key, else its file), else a
        per-process random one."""
        if self.configured_key is None:
            self.configured_key = _environment_key() or _random_process_key()
        return self.configured_key


current = Runtime(
    tracer=trace.get_tracer("foothold.instrumentation"),
    disabled=env_flag(DISABLED_ENV),
    capture_content=env_flag(CAPTURE_CONTENT_ENV),
)


def install(runtime: Runtime) -> None:
    global current
    current = runtime
