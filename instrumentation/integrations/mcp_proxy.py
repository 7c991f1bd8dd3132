"""``foothold-audit mcp-proxy -- <server command...>``: an audit proxy in front of any stdio MCP server.

The proxy starts the server, and passes every byte between the MCP client (its own stdin/stdout) and the
server (the child's stdin/stdout) through unchanged and unbuffered: chunks are forwarded exactly as read,
and a copy is split into lines (stdio MCP is newline-delimited JSON-RPC) and parsed on the side. Nothing is
re-serialised. Per ``tools/call`` and per ``resources/read`` it emits a span when the response with the same
JSON-RPC id comes back: method, request id, tool name, redacted arguments and result, the classifier's
persistence verdict, errors, the caller's trace (``params._meta.traceparent``) as parent, and the watch-list
changes made while the call ran (the server is a local process) as artifact spans. A ``resources/read`` is
marked as untrusted input, the category the collector's flow rules chain on.

One proxy run is one MCP session: ``mcp.session.id`` is minted per run (stdio has no session id) and is on
every span the proxy emits, artifacts included, so they all file under one session (``--session`` adds
the agent's own session as ``gen_ai.conversation.id``). The JSON-RPC id is the call id
(``gen_ai.tool.call.id``). The server is started with ``FOOTHOLD_MCP_SESSION_ID`` set to that session:
when the server is instrumented by Foothold too, its span of the call carries the same session and id,
and the collector keeps one row for the two. Arguments and results are recorded only with
``--capture-content`` (or the GenAI content variable ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``),
redacted and size-limited.
The child's stderr is passed through; the proxy's own logging goes to stderr, never to stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_CHUNK = 1 << 16
_MAX_LINE = 64 << 20  # a longer line is still forwarded, just not parsed
_METHODS = ("tools/call", "resources/read")
SESSION_ENV = "FOOTHOLD_MCP_SESSION_ID"  # the proxy's MCP session, handed to the server it starts


@dataclass
class _Pending:
    method: str
    request_id: str
    params: dict[str, Any]
    start_ns: int
    snapshot: Any = None


class _Lines:
    """Splits a byte stream into lines on the side, never holding more than one oversized line's head."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.skipping = False

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if not self.skipping:
                self.buffer += chunk[start:end]
                lines.append(bytes(self.buffer))
            self.buffer.clear()
            self.skipping = False
            start = end + 1
        if not self.skipping:
            self.buffer += chunk[start:]
            if len(self.buffer) > _MAX_LINE:
                self.buffer.clear()
                self.skipping = True
        return lines


@dataclass
class Proxy:
    """The span side of the proxy (the byte pumps call ``on_client_line`` / ``on_server_line``)."""

    session_id: str = field(default_factory=lambda: f"mcp-proxy-{uuid.uuid4().hex}")
    conversation_id: str = ""  # the agent's session, when the proxy is told it (--session)
    server_command: str = ""
    cwd: str = field(default_factory=os.getcwd)
    pending: dict[str, _Pending] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_client_line(self, line: bytes) -> None:
        for message in _messages(line):
            method = message.get("method")
            if method not in _METHODS or "id" not in message:
                continue
            params = message.get("params")
            params = params if isinstance(params, dict) else {}
            from .. import runtime

            rt = runtime.current
            snapshot = rt.watcher.before(self.cwd) if rt.watcher is not None and not rt.disabled else None
            key = _key(message["id"])
            with self.lock:
                self.pending[key] = _Pending(str(method), _id_text(message["id"]), params, time.time_ns(), snapshot)

    def on_server_line(self, line: bytes) -> None:
        for message in _messages(line):
            if "method" in message or "id" not in message:
                continue
            with self.lock:
                call = self.pending.pop(_key(message["id"]), None)
            if call is not None:
                self._emit(call, message)

    def finish(self) -> None:
        """Requests the server never answered (it exited) are recorded as failed."""
        with self.lock:
            left, self.pending = list(self.pending.values()), {}
        for call in left:
            self._emit(call, {"error": {"code": "no_response", "message": "the server exited before answering"}})

    def session_attributes(self) -> dict[str, str]:
        """What files every span of this proxy under its session (tool calls and artifacts alike)."""
        attributes = {"mcp.session.id": self.session_id}
        if self.conversation_id:
            attributes["gen_ai.conversation.id"] = self.conversation_id
        return attributes

    def _emit(self, call: _Pending, response: dict[str, Any]) -> None:
        try:
            _emit_span(self, call, response)
        except Exception as exc:
            from .. import runtime

            runtime.report_once("mcp proxy span", exc)


def _emit_span(proxy: Proxy, call: _Pending, response: dict[str, Any]) -> None:
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from foothold import semconv

    from .. import artifacts, runtime
    from ..tools import render_content
    from ._core import classify, verdict_attributes

    rt = runtime.current
    if rt.disabled:
        return
    meta = call.params.get("_meta")
    parent = extract(meta) if isinstance(meta, dict) else None
    attributes: dict[str, Any] = {
        semconv.MCP_METHOD_NAME: call.method,
        semconv.JSONRPC_REQUEST_ID: call.request_id,
        semconv.GEN_AI_TOOL_CALL_ID: call.request_id,
        **proxy.session_attributes(),
        semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_TYPE: "extension",
        semconv.CWD: proxy.cwd,
        semconv.HOME: rt.home,
        "foothold.mcp.server.command": proxy.server_command,
    }
    if call.method == "tools/call":
        name = str(call.params.get("name") or "unknown")
        arguments = call.params.get("arguments") or {}
        attributes[semconv.GEN_AI_TOOL_NAME] = name
        attributes.update(verdict_attributes(classify(name, arguments, proxy.cwd, rt.home)))
        span_name = f"tools/call {name}"
    else:
        uri = str(call.params.get("uri") or "")
        arguments = {"uri": uri}
        attributes[semconv.GEN_AI_TOOL_NAME] = "resources/read"
        attributes["mcp.resource.uri"] = uri
        attributes[semconv.TOOL_CATEGORIES] = "untrusted_input"
        span_name = f"resources/read {uri}".strip()
    result = response.get("result")
    error = response.get("error")
    if rt.capture_content:
        attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = render_content(arguments, rt)
        if result is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_RESULT] = render_content(result, rt)
    span = rt.tracer.start_span(
        span_name, context=parent, kind=SpanKind.CLIENT, attributes=attributes, start_time=call.start_ns
    )
    if isinstance(error, dict):
        code = str(error.get("code", "error"))
        message = str(error.get("message", "")) if rt.capture_content else None
        span.set_attributes({semconv.ERROR_TYPE: code, "rpc.response.status_code": code})
        span.set_status(Status(StatusCode.ERROR, message))
    elif isinstance(result, dict) and result.get("isError") is True:
        span.set_attribute(semconv.ERROR_TYPE, "tool_error")
        span.set_status(Status(StatusCode.ERROR))
    found: list[Any] = []
    if rt.watcher is not None and call.snapshot is not None:
        found, _changed = rt.watcher.after(call.snapshot)
    artifacts.emit(
        rt.tracer, span, found, {semconv.CWD: proxy.cwd, semconv.HOME: rt.home, **proxy.session_attributes()}
    )
    span.end()


def _messages(line: bytes) -> list[dict[str, Any]]:
    line = line.strip()
    if not line or line[:1] not in (b"{", b"["):
        return []
    try:
        parsed = json.loads(line)
    except ValueError:
        return []
    items = parsed if isinstance(parsed, list) else [parsed]
    return [m for m in items if isinstance(m, dict)]


def _key(request_id: Any) -> str:
    return json.dumps(request_id, sort_keys=True)


def _id_text(request_id: Any) -> str:
    return request_id if isinstance(request_id, str) else json.dumps(request_id)


def _pump(source: int, sink: int, on_line: Any, before_forward: bool, close_sink: Any = None) -> None:
    """Copy ``source`` to ``sink`` byte-for-byte; parse complete lines on the side (before forwarding a
    chunk when ``before_forward``, so a call's snapshot precedes the server seeing the request)."""
    lines = _Lines()
    try:
        while True:
            chunk = os.read(source, _CHUNK)
            if not chunk:
                break
            complete = lines.feed(chunk)
            if before_forward:
                _each(complete, on_line)
            view = memoryview(chunk)
            while view:
                written = os.write(sink, view)
                view = view[written:]
            if not before_forward:
                _each(complete, on_line)
    except OSError:
        pass
    finally:
        if close_sink is not None:
            close_sink()


def _each(lines: list[bytes], on_line: Any) -> None:
    for line in lines:
        try:
            on_line(line)
        except Exception as exc:  # a parsing or span problem never stops the bytes
            from .. import runtime

            runtime.report_once("mcp proxy parse", exc)


def run(
    command: list[str],
    *,
    endpoint: str | None = None,
    service_name: str = "foothold-mcp-proxy",
    capture_content: bool | None = None,
    session: str | None = None,
) -> int:
    """Run the server behind the proxy until it exits; returns its exit code.

    ``capture_content``: record arguments and results (None: ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    decides, off by default). ``session``: the agent's session id, recorded as ``gen_ai.conversation.id`` on
    every span."""
    if not command:
        sys.stderr.write("foothold-audit mcp-proxy: give the server command after --\n")
        return 2
    setup = None
    try:
        from foothold import instrumentation as fh
        from foothold.instrumentation.provider import (
            DEFAULT_EXPORT_TIMEOUT_SECONDS,
            _otlp_exporter,
        )

        exporter = _otlp_exporter(endpoint, None, DEFAULT_EXPORT_TIMEOUT_SECONDS)
        setup = fh.setup(
            tracer_provider=_own_provider(service_name), exporter=exporter, capture_content=capture_content
        )
    except Exception as exc:  # spans are lost, the proxy still works
        sys.stderr.write(f"foothold-audit mcp-proxy: instrumentation disabled ({exc})\n")
    import shlex

    proxy = Proxy(server_command=shlex.join(command), conversation_id=session or "")
    env = {**os.environ, SESSION_ENV: proxy.session_id}
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=env)
    assert child.stdin is not None and child.stdout is not None
    stdin_fd, stdout_fd = sys.stdin.fileno(), sys.stdout.fileno()
    to_server = threading.Thread(
        target=_pump, args=(stdin_fd, child.stdin.fileno(), proxy.on_client_line, True, child.stdin.close), daemon=True
    )
    to_client = threading.Thread(
        target=_pump, args=(child.stdout.fileno(), stdout_fd, proxy.on_server_line, False), daemon=True
    )
    to_server.start()
    to_client.start()
    try:
        to_client.join()
        code = child.wait()
    except KeyboardInterrupt:
        child.terminate()
        code = child.wait()
    proxy.finish()
    if setup is not None:
        setup.shutdown()
    return code


def _own_provider(service_name: str) -> Any:
    """A provider of our own (not the global one): the proxy process has nothing else to trace."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    attributes = {} if "OTEL_SERVICE_NAME" in os.environ else {SERVICE_NAME: service_name}
    return TracerProvider(resource=Resource.create(attributes))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--":
        args = args[1:]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
