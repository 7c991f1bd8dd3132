"""Runs the parsed script: each command's words expanded, prefixes stripped, its redirections and effects
recorded, and what a stage prints handed to the next one as stdin."""

from __future__ import annotations

import functools

from foothold.detections.shell.context import Context, add_write, assign, expand
from foothold.detections.shell.effects import effects
from foothold.detections.shell.heredocs import PLACEHOLDER_RE, extract_heredocs
from foothold.detections.shell.intent import Invocation, ShellIntent
from foothold.detections.shell.known_output import stdout_of
from foothold.detections.shell.parse import parse
from foothold.detections.shell.paths import clean_dir
from foothold.detections.shell.prefixes import strip_prefixes
from foothold.detections.shell.syntax import Command, Group, Pipeline, program_name


def analyze(command: str, *, cwd: str | None = None, home: str | None = None) -> ShellIntent:
    """Parse ``command`` and return the files it writes and the programs it runs. Never raises.

    Memoised: the collector judges a command for its findings and for its flow categories, and agents
    repeat commands. The result is shared between callers, so treat it as read-only.
    """
    if not isinstance(command, str):
        return ShellIntent()
    return _analyze(command, _text_or_none(cwd), _text_or_none(home))


def _text_or_none(value: object) -> str | None:
    """cwd/home from span attributes: anything but a string is unknown (and would not hash for the cache)."""
    return value if isinstance(value, str) else None


@functools.lru_cache(maxsize=4096)
def _analyze(command: str, cwd: str | None, home: str | None) -> ShellIntent:
    intent = ShellIntent()
    if not command or not command.strip():
        return intent
    ctx = Context(cwd=clean_dir(cwd), home=clean_dir(home), heredocs={}, intent=intent, run_script=run_script)
    try:
        run_script(command, ctx)
    except Exception as exc:  # the analyser must never take a tool call down with it
        intent.notes.append(f"analysis aborted: {type(exc).__name__}")
    return intent


def run_script(text: str, ctx: Context) -> None:
    text = extract_heredocs(text, ctx.heredocs)
    pipelines, parser = parse(text)
    if ctx.depth == 0:
        ctx.intent.parser = parser
    elif parser != "bashlex" and "+fallback" not in ctx.intent.parser:
        ctx.intent.parser += "+fallback"
    if parser != "bashlex":
        ctx.intent.notes.append(f"bashlex could not parse{' nested code' if ctx.depth else ''}; used {parser}")
    for pipeline in pipelines:
        _run_pipeline(pipeline, ctx, stdin=None)


def _run_pipeline(pipeline: Pipeline, ctx: Context, stdin: str | None) -> str | None:
    """Run each stage with the previous stage's known output as stdin; return the last stage's output."""
    data = stdin
    for stage in pipeline:
        data = _run_group(stage, ctx, data) if isinstance(stage, Group) else _run_command(stage, ctx, data)
    return data


def _run_group(group: Group, ctx: Context, stdin: str | None) -> str | None:
    outputs = [o for p in group.body if (o := _run_pipeline(p, ctx, stdin)) is not None]
    output = "".join(outputs) if outputs else None
    _record_redirects(group.redirects, ctx, output, "{ ... }")
    return output


def _run_command(cmd: Command, ctx: Context, stdin: str | None) -> str | None:
    argv = [expand(w, ctx) for w in cmd.words]
    if not argv:
        for assignment in cmd.assigns:  # F=~/.ssh/authorized_keys; echo k >> $F
            assign(assignment, ctx)
        _record_redirects(cmd.redirects, ctx, None, "redirect")
        return None
    stdin = _stdin_from_redirects(cmd, ctx, stdin)
    argv = strip_prefixes(argv, ctx)
    output = stdout_of(argv, stdin) if argv else None
    _record_redirects(cmd.redirects, ctx, output, program_name(argv[0]) if argv else "redirect")
    if argv:
        ctx.intent.invocations.append(Invocation(tuple(argv), stdin, ctx.cwd, ctx.remote))
        effects(argv, ctx, stdin)
    return output


def _stdin_from_redirects(cmd: Command, ctx: Context, stdin: str | None) -> str | None:
    if cmd.heredoc is not None:
        stdin = cmd.heredoc
    for op, target in cmd.redirects:
        if op == "<<<":
            stdin = expand(target, ctx) + "\n"
        elif op == "<" and (m := PLACEHOLDER_RE.fullmatch(target)):
            stdin = ctx.heredocs.get(int(m.group(1)), "")
    return stdin


def _record_redirects(redirects: list[tuple[str, str]], ctx: Context, content: str | None, who: str) -> None:
    for op, target in redirects:
        if op not in (">", ">>", ">|", "&>", "&>>", "<>"):
            continue
        raw = expand(target, ctx)
        if not raw or raw.startswith("/dev/") or PLACEHOLDER_RE.fullmatch(raw):
            continue
        action = "append" if op.endswith(">>") else "write"
        add_write(ctx, raw, action, f"redirect {op} to {raw} ({who})", content)
