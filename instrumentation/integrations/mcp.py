"""MCP (official ``mcp`` SDK 2.x): enrich the client and server spans the SDK already emits.

The SDK opens ``MCP send tools/call {tool}`` (CLIENT) around each request and ``tools/call {tool}``
(SERVER) around each handled request, and carries ``traceparent`` (and baggage) in ``params._meta``, so
client and server join one trace. It records no arguments, results or session; Foothold adds them:

* client (``ClientSession.call_tool``): the CLIENT span becomes the tool call (``execute_tool``, tool name,
  redacted arguments and result, session and credential context, the artifacts the watch-list snapshot saw
  while the call ran, e.g. written by a local stdio server), and the session goes to the server as baggage;
* server (a middleware on every low-level ``Server``, so ``MCPServer`` too): the SERVER span gets the
  arguments, result, ``mcp.session.id``, the caller's session (from baggage) and the artifacts the tool
  made (audit hook + snapshot), so the execution side reads like any other tool call.

``instrument()`` patches the SDK process-wide; ``instrument_server(server)`` adds the middleware to one
server only. Both are undone by ``uninstrument()``.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any, TypedDict

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from foothold import semconv

from .. import runtime
from ..context import session
from ._core import SESSION_BAGGAGE, SpanToolCall, session_baggage_context

_originals: dict[str, Any] = {}
# The client call in progress in this task; the dispatcher's span is handed to it.


class _ClientToolCall(SpanToolCall):
    """A client ``tools/call``: it adopts the request's span and ends it (``owned``) once the result is known."""

    owned: trace.Span | None = None


_PENDING: contextvars.ContextVar[_ClientToolCall | None] = contextvars.ContextVar("foothold_mcp_pending", default=None)


# --- server ---------------------------------------------------------------------------------------------


class FootholdServerMiddleware:
    """Runs inside the SDK's OpenTelemetry middleware, so the current span is the request's SERVER span."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if runtime.current.disabled or ctx.method not in ("tools/call", "resources/read"):
            return await call_next(ctx)
        try:
            span = trace.get_current_span()
            params = dict(ctx.params or {})
            remote = _baggage(ctx.meta)
            extra: dict[str, Any] = {semconv.MCP_METHOD_NAME: ctx.method}
            if ctx.request_id is not None:
                extra[semconv.JSONRPC_REQUEST_ID] = str(ctx.request_id)
            session_id = getattr(getattr(ctx.session, "_connection", None), "session_id", None)
            # stdio has no session id; behind `foothold-audit mcp-proxy` the proxy's is in the environment,
            # so the proxy's record of the call and this one match (one row per call in the collector)
            session_id = session_id or os.environ.get("FOOTHOLD_MCP_SESSION_ID")
            if session_id:
                extra[semconv.MCP_SESSION_ID] = str(session_id)
        except Exception as exc:
            runtime.report_once("mcp server middleware", exc)
            return await call_next(ctx)
        if ctx.method == "resources/read":
            try:
                span.set_attributes({**extra, **remote, "mcp.resource.uri": str(params.get("uri", ""))})
            except Exception as exc:
                runtime.report_once("mcp resources/read", exc)
            with session(**_session_kwargs(remote)):
                return await call_next(ctx)
        name = params.get("name")
        name = name if isinstance(name, str) else "unknown"
        with session(**_session_kwargs(remote)):
            with SpanToolCall(name, span, arguments=params.get("arguments") or {}, extra={**extra, **remote}) as call:
                result = await call_next(ctx)
                call.set_result(_result_value(result))
                return result


def _baggage(meta: Any) -> dict[str, str]:
    """The caller's Foothold session, sent as baggage in params._meta."""
    if not meta:
        return {}
    try:
        from opentelemetry import baggage
        from opentelemetry.propagate import extract

        entries = baggage.get_all(extract(dict(meta)))
        return {k: str(v) for k, v in entries.items() if k in SESSION_BAGGAGE and v}
    except Exception as exc:
        runtime.report_once("mcp baggage", exc)
        return {}


class _SessionIds(TypedDict):
    """The ids a request's ``_meta`` carried, as :func:`foothold.instrumentation.context.session` takes them."""

    conversation_id: str | None
    agent_id: str | None
    agent_name: str | None
    task_id: str | None


def _session_kwargs(values: dict[str, str]) -> _SessionIds:
    return {
        "conversation_id": values.get(semconv.GEN_AI_CONVERSATION_ID),
        "agent_id": values.get(semconv.GEN_AI_AGENT_ID),
        "agent_name": values.get(semconv.GEN_AI_AGENT_NAME),
        "task_id": values.get(semconv.TASK_ID),
    }


def _result_value(result: Any) -> Any:
    """A CallToolResult (or what a handler returned) as plain data for rendering."""
    dump = getattr(result, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", by_alias=True, exclude_none=True)
        except Exception:
            return str(result)
    return result


def instrument_server(server: Any) -> Any:
    """Add Foothold's middleware to one ``Server`` or ``MCPServer`` (idempotent); returns the server."""
    lowlevel = getattr(server, "_lowlevel_server", server)
    chain = getattr(lowlevel, "middleware", None)
    if isinstance(chain, list) and not any(isinstance(m, FootholdServerMiddleware) for m in chain):
        chain.append(FootholdServerMiddleware())
    return server


# --- client ---------------------------------------------------------------------------------------------


@contextmanager
def _otel_span(name: str, *, kind: SpanKind, attributes: dict[str, Any] | None = None, **kwargs: Any) -> Generator[Any]:
    """The dispatcher's span helper, except that a tools/call span of an instrumented call outlives the
    request by a moment: the call ends it once the result is known."""
    pending = _PENDING.get()
    method = (attributes or {}).get(semconv.MCP_METHOD_NAME)
    if pending is None or method != "tools/call" or pending.span is not trace.INVALID_SPAN:
        with _originals["otel_span"](name, kind=kind, attributes=attributes, **kwargs) as span:
            yield span
        return
    from mcp.shared import _otel

    with _otel._tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, end_on_exit=False, **kwargs
    ) as span:
        pending.adopt(span)
        pending.owned = span
        yield span


def _wrap_call_tool(original: Callable[..., Any]) -> Callable[..., Any]:
    async def call_tool(
        self: Any, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        if runtime.current.disabled:
            return await original(self, name, arguments, *args, **kwargs)
        call = _ClientToolCall(name, arguments=arguments or {}, extra={semconv.MCP_METHOD_NAME: "tools/call"})
        ctx = session_baggage_context()
        token = otel_context.attach(ctx) if ctx is not None else None
        pending = _PENDING.set(call)
        try:
            with call:
                result = await original(self, name, arguments, *args, **kwargs)
                if getattr(result, "is_error", False):
                    call.span.set_status(StatusCode.ERROR)
                    call.set_attributes({semconv.ERROR_TYPE: "tool_error"})
                call.set_result(_result_value(result))
                return result
        finally:
            _PENDING.reset(pending)
            if token is not None:
                otel_context.detach(token)
            if call.owned is not None:
                call.owned.end()

    functools.update_wrapper(call_tool, original, assigned=(), updated=())  # __wrapped__ only: the original

    return call_tool


def _wrap_read_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    async def read_resource(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx = None if runtime.current.disabled else session_baggage_context()
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            return await original(self, *args, **kwargs)
        finally:
            if token is not None:
                otel_context.detach(token)

    functools.update_wrapper(read_resource, original, assigned=(), updated=())  # __wrapped__ only: the original
    return read_resource


# --- process-wide ---------------------------------------------------------------------------------------


def instrument(tracer_provider: Any = None) -> bool:
    """Patch the installed SDK; False when ``mcp`` is not installed or not a 2.x SDK.

    The SDK's spans use the global tracer provider; pass ``tracer_provider`` to send them elsewhere."""
    if _originals:
        return True
    try:
        from mcp.client.session import ClientSession
        from mcp.server.lowlevel import server as lowlevel
        from mcp.shared import jsonrpc_dispatcher
    except ImportError:
        return False
    if not hasattr(jsonrpc_dispatcher, "otel_span"):
        return False
    _originals["otel_span"] = jsonrpc_dispatcher.otel_span
    _originals["call_tool"] = ClientSession.call_tool
    _originals["read_resource"] = ClientSession.read_resource
    _originals["server_init"] = lowlevel.Server.__init__
    if tracer_provider is not None:
        from mcp.shared import _otel

        _originals["tracer"] = _otel._tracer
        _otel._tracer = tracer_provider.get_tracer("mcp-python-sdk")
    jsonrpc_dispatcher.otel_span = _otel_span
    # Patching the SDK's classes is the integration; mypy forbids assigning to a method (method-assign).
    ClientSession.call_tool = _wrap_call_tool(ClientSession.call_tool)  # type: ignore[method-assign]
    ClientSession.read_resource = _wrap_read_resource(ClientSession.read_resource)  # type: ignore[method-assign]
    init = lowlevel.Server.__init__

    def server_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        try:
            instrument_server(self)
        except Exception as exc:
            runtime.report_once("mcp server init", exc)

    lowlevel.Server.__init__ = server_init  # type: ignore[method-assign]  # patched as above
    return True


def uninstrument() -> None:
    if not _originals:
        return
    from mcp.client.session import ClientSession
    from mcp.server.lowlevel import server as lowlevel
    from mcp.shared import jsonrpc_dispatcher

    # mcp imports otel_span into this module without re-exporting it (attr-defined); we patched that name. The
    # SDK's methods are restored as they were patched (method-assign).
    jsonrpc_dispatcher.otel_span = _originals.pop("otel_span")  # type: ignore[attr-defined]
    ClientSession.call_tool = _originals.pop("call_tool")  # type: ignore[method-assign]
    ClientSession.read_resource = _originals.pop("read_resource")  # type: ignore[method-assign]
    lowlevel.Server.__init__ = _originals.pop("server_init")  # type: ignore[method-assign]
    if "tracer" in _originals:
        from mcp.shared import _otel

        _otel._tracer = _originals.pop("tracer")
