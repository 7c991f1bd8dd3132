"""LangChain (``langchain-core`` tools): every ``BaseTool.run`` / ``arun`` becomes a Foothold tool call.

Wrapping the tool (rather than a callback handler) keeps the tool's own execution inside the call, so the
audit hook and the snapshot attribute what it writes to it; the model's ``tool_call_id`` (passed by
``ToolNode``/agents when the tool is invoked with a ``ToolCall``) becomes ``gen_ai.tool.call.id``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import runtime
from ..tools import ToolCall

_originals: dict[str, Any] = {}


class _LangChainCall(ToolCall):
    """A tool call with the LangChain tool it runs, so a nested run of the same tool is not recorded twice."""

    langchain_tool: Any = None


def _call(tool: Any, tool_input: Any, kwargs: dict[str, Any]) -> _LangChainCall:
    call = _LangChainCall(
        str(getattr(tool, "name", None) or type(tool).__name__),
        call_id=kwargs.get("tool_call_id"),
        arguments=tool_input,
        tool_type="function",
    )
    call.langchain_tool = tool
    return call


def _result(output: Any) -> Any:
    """A ToolMessage (tool invoked with a ToolCall) records its content, anything else as is."""
    if hasattr(output, "content") and hasattr(output, "tool_call_id"):
        return output.content
    return output


def _nested(tool: Any) -> bool:
    """``arun`` of a sync tool may end in ``run``: record the call once."""
    from .. import audit

    active = audit.ACTIVE_CALL.get()
    return isinstance(active, _LangChainCall) and active.langchain_tool is tool


def _wrap_run(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run(self: Any, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        if runtime.current.disabled or _nested(self):
            return original(self, tool_input, *args, **kwargs)
        call = _call(self, tool_input, kwargs)
        with call:
            output = original(self, tool_input, *args, **kwargs)
            call.set_result(_result(output))
            return output

    return run


def _wrap_arun(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def arun(self: Any, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        if runtime.current.disabled or _nested(self):
            return await original(self, tool_input, *args, **kwargs)
        call = _call(self, tool_input, kwargs)
        with call:
            output = await original(self, tool_input, *args, **kwargs)
            call.set_result(_result(output))
            return output

    return arun


def instrument() -> bool:
    """Patch ``BaseTool``; False when ``langchain-core`` is not installed."""
    if _originals:
        return True
    try:
        from langchain_core.tools import BaseTool
    except ImportError:
        return False
    _originals["run"], _originals["arun"] = BaseTool.run, BaseTool.arun
    # Patching the SDK's class is the integration; mypy forbids assigning to a method (method-assign).
    BaseTool.run = _wrap_run(BaseTool.run)  # type: ignore[method-assign]
    BaseTool.arun = _wrap_arun(BaseTool.arun)  # type: ignore[method-assign]
    return True


def uninstrument() -> None:
    if not _originals:
        return
    from langchain_core.tools import BaseTool

    # Restored as patched (method-assign, see instrument).
    BaseTool.run = _originals.pop("run")  # type: ignore[method-assign]
    BaseTool.arun = _originals.pop("arun")  # type: ignore[method-assign]
