"""The state one analysis carries through a script, and the operations every handler uses on it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from foothold.detections.shell.intent import FileWrite, ShellIntent
from foothold.detections.shell.paths import VAR_RE, resolve_path

_NAME_RE = re.compile(r"[A-Za-z_]\w*")

MAX_DEPTH = 4  # nested bash -c / eval / base64 layers followed
MAX_CONTENT = 64_000  # content kept per write (enough for any rc file or unit)


@dataclass
class Context:
    cwd: str | None
    home: str | None
    heredocs: dict[int, str]
    intent: ShellIntent
    # The interpreter's entry point, handed in so handlers of nested code (bash -c, ssh, python -c) can run a
    # script without this package's modules importing each other in a circle.
    run_script: Callable[[str, Context], None]
    depth: int = 0
    remote: bool = False
    env: dict[str, str] = field(default_factory=dict)
    via: list[str] = field(default_factory=list)  # how we got here: "bash -c", "base64 -d | sh", "ssh HOST"


def nested(code: str, ctx: Context, label: str = "nested code") -> None:
    """Analyse ``code`` one level down (bash -c, eval, ssh HOST CMD ...), noting ``label`` in the evidence."""
    if ctx.depth >= MAX_DEPTH or not code.strip():
        return
    saved_depth = ctx.depth
    ctx.depth += 1
    ctx.via.append(label)
    try:
        ctx.run_script(code, ctx)
    finally:
        ctx.depth = saved_depth
        ctx.via.pop()


def add_write(
    ctx: Context, raw: str, action: str, evidence: str, content: str | None = None, alt: str | None = None
) -> None:
    path = resolve(raw, ctx)
    if not path:
        return
    alt_path = resolve(alt, ctx) if alt else None
    if content is not None:
        content = content[:MAX_CONTENT]
    if ctx.via:
        evidence += " via " + " > ".join(ctx.via)
    ctx.intent.writes.append(FileWrite(path, action, evidence[:200], content, alt_path))


def resolve(raw: str, ctx: Context) -> str:
    if ctx.remote:  # ssh HOST CMD: relative paths start in the remote home, which we do not know
        raw = raw if raw.startswith(("/", "~")) else "~/" + raw
        return resolve_path(raw, None, None)
    return resolve_path(raw, ctx.cwd, ctx.home)


def expand(word: str, ctx: Context) -> str:
    """Expand the parameters we can know: $HOME and variables assigned earlier in the same script."""
    if "$" not in word:
        return word

    def _sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "HOME":
            return "~" if ctx.remote else (ctx.home or "~")
        return ctx.env.get(name, m.group(0))

    return VAR_RE.sub(_sub, word)


def assign(assignment: str, ctx: Context) -> None:
    name, _, value = assignment.partition("=")
    if _NAME_RE.fullmatch(name) and len(ctx.env) < 256:
        ctx.env[name] = expand(value, ctx)
