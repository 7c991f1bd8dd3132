"""OpenAI Agents SDK (``openai-agents``): every function-tool invocation becomes a Foothold tool call.

The SDK's own tracing is separate from OpenTelemetry and its function span has no tool call id, so Foothold
wraps the one place the runner invokes a ``FunctionTool`` and reads the name, the model's ``tool_call_id``
and the JSON arguments from the ``ToolContext``. The SDK's default trace exporter sends to OpenAI; turn it
off with ``agents.set_trace_processors([])`` (or ``set_tracing_disabled(True)``) when Foothold is the record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import runtime
from ..tools import ToolCall

_originals: dict[str, Any] = {}
_PATCHED_MODULES = ("agents.tool", "agents.run_internal.tool_execution")
_NAME = "_invoke_function_tool_with_metadata"


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    async def invoke(*, function_tool: Any, context: Any, arguments: str, **kwargs: Any) -> Any:
        if runtime.current.disabled:
            return await original(function_tool=function_tool, context=context, arguments=arguments, **kwargs)
        name = getattr(context, "tool_name", None) or getattr(function_tool, "name", "function")
        with ToolCall(str(name), call_id=getattr(context, "tool_call_id", None), arguments=arguments) as call:
            outcome = await original(function_tool=function_tool, context=context, arguments=arguments, **kwargs)
            call.set_result(getattr(outcome, "output", outcome))
            if getattr(outcome, "is_sdk_generated_error", False):
                from opentelemetry.trace import StatusCode

                from foothold import semconv

                call.span.set_status(StatusCode.ERROR)
                call.span.set_attribute(semconv.ERROR_TYPE, "tool_error")
            return outcome

    functools.update_wrapper(invoke, original, assigned=(), updated=())  # __wrapped__ only: the original
    return invoke


def instrument() -> bool:
    """Patch the function-tool invocation; False when ``openai-agents`` is absent or lays it out otherwise."""
    if _originals:
        return True
    import importlib

    try:
        modules = [importlib.import_module(name) for name in _PATCHED_MODULES]
    except ImportError:
        return False
    original = getattr(modules[0], _NAME, None)
    if original is None:
        return False
    wrapped = _wrap(original)
    for module in modules:
        if getattr(module, _NAME, None) is original:
            _originals[module.__name__] = original
            setattr(module, _NAME, wrapped)
    return True


def uninstrument() -> None:
    import sys

    for name, original in list(_originals.items()):
        module = sys.modules.get(name)
        if module is not None:
            setattr(module, _NAME, original)
        del _originals[name]
