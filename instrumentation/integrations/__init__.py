"""Adapters from agent SDKs onto the instrumentation core, one module per SDK (each imports its SDK lazily,
so the SDKs stay optional):

* ``mcp``            official MCP SDK 2.x, client and server (enriches the spans the SDK emits)
* ``langchain``      ``langchain-core`` tools
* ``openai_agents``  OpenAI Agents SDK function tools
* ``claude_code``    Claude Code hooks (``foothold-audit hook claude-code``)
* ``mcp_proxy``      audit proxy in front of any stdio MCP server (``foothold-audit mcp-proxy -- CMD...``)

``instrument()`` patches every supported SDK that is installed; ``uninstrument()`` undoes it.
"""

from __future__ import annotations

import importlib
from typing import Any

SUPPORTED = ("mcp", "langchain", "openai_agents")
_active: list[str] = []


def instrument(*only: str, tracer_provider: Any = None) -> list[str]:
    """Instrument the installed SDKs (or just ``only``); returns the ones now instrumented.

    Call ``foothold.instrumentation.setup()`` first (it decides where spans go). ``tracer_provider`` is
    for SDKs that open their own spans on the global provider (MCP), when it is not the global one.
    Never raises: an SDK that cannot be instrumented is logged and skipped.
    """
    for name in only or SUPPORTED:
        if name not in SUPPORTED:
            raise ValueError(f"unknown integration {name!r}; supported: {', '.join(SUPPORTED)}")
        if name in _active:
            continue
        try:
            module = importlib.import_module(f"{__name__}.{name}")
            done = module.instrument(tracer_provider=tracer_provider) if name == "mcp" else module.instrument()
        except Exception as exc:
            from .. import runtime

            runtime.report_once(f"instrument {name}", exc)
            continue
        if done:
            _active.append(name)
    return list(_active)


def uninstrument(*only: str) -> None:
    """Undo ``instrument()`` for every (or the named) instrumented SDK."""
    for name in list(only or _active):
        if name not in _active:
            continue
        try:
            importlib.import_module(f"{__name__}.{name}").uninstrument()
        except Exception as exc:
            from .. import runtime

            runtime.report_once(f"uninstrument {name}", exc)
        _active.remove(name)


__all__ = ["SUPPORTED", "instrument", "uninstrument"]
