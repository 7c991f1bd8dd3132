"""Command-line entry points of the integrations, as typer apps ``foothold/cli.py`` mounts:

    app.add_typer(hook_app, name="hook")                      # foothold-audit hook claude-code | install
    app.command("mcp-proxy", context_settings=PROXY_CONTEXT)(mcp_proxy_command)

Light to import: the hook's and the proxy's modules (and OpenTelemetry) load only when a command runs.
Until mounted, ``python -m foothold.instrumentation.integrations.cli hook claude-code`` and
``python -m foothold.instrumentation.integrations.cli mcp-proxy -- CMD...`` run the same commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

hook_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Agent hooks: record tool calls as spans.")
PROXY_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


@hook_app.command("claude-code", context_settings=PROXY_CONTEXT, add_help_option=False)
def claude_code_command(ctx: typer.Context) -> None:
    """Read one Claude Code hook event (JSON on stdin) and record it; flags: `... hook claude-code --help`."""
    from .claude_code import main

    raise typer.Exit(main(ctx.args))


@hook_app.command("install")
def install_command(
    claude_code: Annotated[bool, typer.Option("--claude-code", help="install the Claude Code hooks")] = False,
    settings: Annotated[
        Path | None, typer.Option("--settings", help="settings.json to edit (default ~/.claude/settings.json)")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="collector OTLP/HTTP URL, written on the hook's command line (default :4318)"),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", help="file holding the collector's bearer token; the path goes on the command line"
        ),
    ] = None,
    capture_content: Annotated[
        bool | None,
        typer.Option(
            "--capture-content/--no-capture-content",
            help="record tool arguments and results, redacted (default: on)",
            show_default=False,
        ),
    ] = None,
    deny_persistence: Annotated[
        bool, typer.Option("--deny-persistence", help="deny tool calls that write persistence locations")
    ] = False,
    command: Annotated[
        str | None,
        typer.Option("--command", help="hook executable to register (default: the absolute path of foothold-audit)"),
    ] = None,
    fingerprint_key_file: Annotated[
        Path | None,
        typer.Option(
            "--fingerprint-key-file",
            help="file holding the deployment fingerprint key; its path (never the key) goes into the settings' "
            "env as FOOTHOLD_FINGERPRINT_KEY_FILE",
        ),
    ] = None,
) -> None:
    """Write Foothold's hook entries into an agent's settings (idempotent, keeps other hooks). Claude Code strips
    OTEL_* variables from hooks: the endpoint, token file and content switch go on the hook's command line."""
    if not claude_code:
        typer.echo("choose the agent to install hooks for: --claude-code", err=True)
        raise typer.Exit(2)
    from .claude_code_settings import install

    try:
        path, warnings = install(
            settings,
            deny_persistence=deny_persistence,
            command=command,
            fingerprint_key_file=fingerprint_key_file,
            endpoint=endpoint,
            token_file=token_file,
            capture_content=capture_content,
        )
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Foothold hooks installed in {path}")
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def mcp_proxy_command(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="OTLP endpoint (default: OTEL_EXPORTER_OTLP_* variables)")
    ] = None,
    capture_content: Annotated[
        bool | None,
        typer.Option(
            "--capture-content/--no-capture-content",
            help="record tool arguments and results, redacted "
            "(default: off, or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)",
        ),
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="the agent's session id, recorded on every span")
    ] = None,
) -> None:
    """Audit proxy for a stdio MCP server: `foothold-audit mcp-proxy -- SERVER COMMAND...`. Passes every message
    through unchanged and records a span per tools/call and resources/read."""
    from .mcp_proxy import run

    command = list(ctx.args)
    if command and command[0] == "--":
        command = command[1:]
    raise typer.Exit(run(command, endpoint=endpoint, capture_content=capture_content, session=session))


def _standalone() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, add_completion=False)
    app.add_typer(hook_app, name="hook")
    app.command("mcp-proxy", context_settings=PROXY_CONTEXT)(mcp_proxy_command)
    return app


if __name__ == "__main__":
    _standalone()()
