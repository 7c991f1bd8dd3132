"""Foothold's agent-side library: tool-call spans with session, credential and artifact context.

    from foothold import instrumentation as fh

    fh.setup(service_name="my-agent")            # or setup(tracer_provider=...) to join a pipeline
    with fh.session(conversation_id="c1", agent_id="a1"):
        with fh.tool_call("bash", call_id="call_1", arguments={"cmd": "ls"}) as call:
            call.set_result(run("ls"))

Light on purpose (stdlib, OpenTelemetry, orjson), and it never breaks or blocks the agent:
instrumentation errors are logged once and swallowed, export is batched on a bounded queue, and
``FOOTHOLD_DISABLED=1`` turns everything into no-ops.
"""

import importlib
from typing import Any

# Loaded on first use (PEP 562): the Claude Code hook imports modules of this package in a new process per
# event and must not pay for the OpenTelemetry SDK it does not use.
_EXPORTS = {
    "Artifact": ".artifacts",
    "Credential": ".context",
    "credential": ".context",
    "end_task": ".context",
    "session": ".context",
    "instrument": ".integrations",
    "uninstrument": ".integrations",
    "Instrumentation": ".provider",
    "setup": ".provider",
    "ToolCall": ".tools",
    "checkpoint": ".tools",
    "tool": ".tools",
    "tool_call": ".tools",
    "DEFAULT_WATCH": ".watch",
    "WatchList": ".watch",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_WATCH",
    "Artifact",
    "Credential",
    "Instrumentation",
    "ToolCall",
    "WatchList",
    "checkpoint",
    "credential",
    "end_task",
    "instrument",
    "session",
    "setup",
    "tool",
    "tool_call",
    "uninstrument",
]
