"""Path resolution: ``~``, ``~user`` and ``$HOME`` expanded, relative paths made absolute against the cwd."""

from __future__ import annotations

import posixpath
import re

VAR_RE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_WINDOWS_RE = re.compile(r"^[A-Za-z]:[\\/]")
_USER_HOME_RE = re.compile(r"^~[a-z_][\w.-]*(/|$)")


def resolve_path(raw: str, cwd: str | None = None, home: str | None = None) -> str:
    """Expand ``~``/``~user``/``$HOME`` and make ``raw`` absolute against ``cwd``; keeps ``~`` if home is unknown."""
    p = raw.strip()
    if not p:
        return p
    if _WINDOWS_RE.match(p):  # Windows path: normalise separators, nothing to resolve
        return p[0].upper() + p[1:].replace("\\", "/")
    if "$" in p:  # (no substitution can match without one: skip the call, paths are resolved constantly)
        p = VAR_RE.sub(lambda m: (home or "~") if (m.group(1) or m.group(2)) == "HOME" else m.group(0), p)
    if p == "~" or p.startswith("~/"):
        p = (home or "~") + p[1:]
    elif p.startswith("~") and _USER_HOME_RE.match(p):
        user, _, rest = p[1:].partition("/")
        p = ("/root" if user == "root" else f"/home/{user}") + ("/" + rest if rest else "")
    if not p.startswith(("/", "~")) and cwd:
        p = posixpath.join(resolve_path(cwd, None, home), p)
    p = posixpath.normpath(p)
    if p.startswith("//"):
        p = "/" + p.lstrip("/")
    return p


def clean_dir(value: object) -> str | None:
    """cwd/home come from span attributes: accept only a non-empty string, without a trailing slash."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return None
    value = value.strip()
    return value.rstrip("/") or "/"
