"""Shell builtins that change what later commands mean: ``cd``/``pushd`` (the cwd) and ``export`` (variables)."""

from __future__ import annotations

from foothold.detections.shell.context import Context, assign
from foothold.detections.shell.paths import resolve_path


def cd(argv: list[str], ctx: Context, stdin: str | None) -> None:
    target = argv[1] if len(argv) > 1 else "~"
    if target != "-" and not ctx.remote:
        ctx.cwd = resolve_path(target, ctx.cwd, ctx.home)


def export(argv: list[str], ctx: Context, stdin: str | None) -> None:
    for tok in argv[1:]:
        if "=" in tok:
            assign(tok, ctx)
