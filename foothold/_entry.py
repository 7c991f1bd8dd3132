"""The ``foothold-audit`` console script. Claude Code starts ``foothold-audit hook claude-code`` as a new process for
every hook event, twice per tool call, so that command goes straight to the hook's forwarder client (which hands the
event to a long-lived per-user process, or handles it here when there is none), before typer, rich and pydantic
load (~115 ms); every other command goes to the typer app in ``foothold.cli``."""

from __future__ import annotations

import sys


def main() -> int | None:
    if sys.argv[1:3] == ["hook", "claude-code"]:
        from foothold.instrumentation.integrations.hook_forwarder import main as hook

        return hook(sys.argv[3:])
    from foothold.cli import main as cli

    cli()
    return None
