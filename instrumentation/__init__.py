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

from .artifacts import Artifact
from .context import Credential, credential, end_task, session
from .integrations import instrument, uninstrument
from .provider import Instrumentation, setup
from .tools import ToolCall, checkpoint, tool, tool_call
from .watch import DEFAULT_WATCH, WatchList

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
