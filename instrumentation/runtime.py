"""Process-wide state the instrumentation modules share, and the rule that it never breaks the agent:
an instrumentation error is logged once per place and swallowed."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import trace

from .keys import (  # noqa: F401 - the key names and reader are re-exported where callers look for them
    FINGERPRINT_KEY_ENV,
    FINGERPRINT_KEY_FILE_ENV,
    environment_key,
    random_process_key,
    read_key_file,
)

if TYPE_CHECKING:
    from .watch import Watcher

log = logging.getLogger("foothold.instrumentation")
_reported: set[str] = set()

DISABLED_ENV = "FOOTHOLD_DISABLED"
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
            self.configured_key = environment_key() or random_process_key()
        return self.configured_key


current = Runtime(
    tracer=trace.get_tracer("foothold.instrumentation"),
    disabled=env_flag(DISABLED_ENV),
    capture_content=env_flag(CAPTURE_CONTENT_ENV),
)


def install(runtime: Runtime) -> None:
    global current
    current = runtime
