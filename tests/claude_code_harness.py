"""Running the real Claude Code binary offline: a scripted stand-in for the Messages API, and a loopback-only
network namespace around it.

The stand-in answers ``POST /v1/messages`` the way the API does for a streaming request (Claude Code 2.1 always
streams: ``message_start``, one content block with its deltas, ``message_delta``, ``message_stop`` as SSE events),
with one scripted ``tool_use`` block per turn. The turn is the number of ``tool_result`` blocks already in the
request, so a refused call (whose result is an error) advances the script like any other. Requests without tools
(none are expected with non-essential traffic off) and turns past the script get a text answer that ends the
turn. ``count_tokens`` answers a fixed count. Every request is appended to a JSON-lines log the test reads.

Inside ``unshare -rn`` the binary sees only its own loopback: the stand-in runs there too (this module's
``main``), and the collector, which lives in the test process outside, is reached through a Unix socket (a path in
the file system crosses network namespaces): the runner listens on the collector's port number inside the
namespace and pipes each connection to the socket, the test process pipes it on to the collector.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def _tool_results(body: dict[str, Any]) -> int:
    return sum(
        1
        for message in body.get("messages") or []
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    )


def stand_in(script: list[tuple[str, dict[str, Any]]], log_path: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class MessagesAPI(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            with lock, open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": self.path, "stream": body.get("stream"), "body": body}) + "\n")
            if "count_tokens" in self.path:
                self._json({"input_tokens": 12})
                return
            step = _tool_results(body)
            if body.get("tools") and step < len(script):
                name, tool_input = script[step]
                block = {"type": "tool_use", "id": f"toolu_{step:02d}", "name": name, "input": tool_input}
            else:
                block = {"type": "text", "text": "done"}
            message = {
                "id": f"msg_{step:02d}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [block],
                "stop_reason": "tool_use" if block["type"] == "tool_use" else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            }
            if body.get("stream"):
                self._stream(message)
            else:
                self._json(message)

        def _json(self, value: dict[str, Any]) -> None:
            data = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, message: dict[str, Any]) -> None:
            (block,) = message["content"]
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            events: list[dict[str, Any]] = [
                {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}},
            ]
            if block["type"] == "text":
                events.append(
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
                )
                delta = {"type": "text_delta", "text": block["text"]}
            else:
                events.append({"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}})
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            events += [
                {"type": "content_block_delta", "index": 0, "delta": delta},
                {"type": "content_block_stop", "index": 0},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
                {"type": "message_stop"},
            ]
            for event in events:
                self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    return MessagesAPI


# --- byte pipes between TCP and Unix sockets ----------------------------------------------------------------


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (sink, source):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _splice(accepted: socket.socket, connect: Any) -> None:
    try:
        upstream = connect()
    except OSError:
        accepted.close()
        return
    threading.Thread(target=_pump, args=(accepted, upstream), daemon=True).start()
    threading.Thread(target=_pump, args=(upstream, accepted), daemon=True).start()


class Bridge:
    """Accepts on ``listener`` and pipes each connection to a fresh ``connect()``; runs until closed."""

    def __init__(self, listener: socket.socket, connect: Any) -> None:
        self.listener = listener
        self.connect = connect
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                accepted, _ = self.listener.accept()
            except OSError:
                return
            _splice(accepted, self.connect)

    def close(self) -> None:
        self.listener.close()


def unix_to_tcp(path: str, port: int) -> Bridge:
    """The test process's side: a Unix socket at ``path`` piped to ``127.0.0.1:port``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    return Bridge(listener, lambda: socket.create_connection(("127.0.0.1", port)))


def tcp_to_unix(port: int, path: str) -> Bridge:
    """The namespace's side: ``127.0.0.1:port`` piped to the Unix socket at ``path``."""
    listener = socket.create_server(("127.0.0.1", port), backlog=64)

    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return sock

    return Bridge(listener, connect)


def unshare_prefix() -> tuple[list[str], str]:
    """The wrapper that gives a process a loopback-only network, or none and the reason."""
    probe = ["unshare", "-rn", "sh", "-c", "ip link set lo up"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"unshare unavailable ({exc}): the binary ran with the host's network"
    if done.returncode != 0:
        return [], f"unshare refused ({done.stderr.strip()}): the binary ran with the host's network"
    return ["unshare", "-rn"], ""


def main(argv: list[str] | None = None) -> int:
    """Inside the namespace: loopback up, the stand-in API, the pipes to the collector, then the binary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--requests-log", required=True)
    parser.add_argument("--forward", action="append", default=[], help="PORT=UNIX_SOCKET_PATH")
    parser.add_argument("--isolated", action="store_true", help="in a new network namespace: bring lo up")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.isolated:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    script = [(name, tool_input) for name, tool_input in json.loads(Path(args.script).read_text())]
    server = ThreadingHTTPServer(("127.0.0.1", args.api_port), stand_in(script, Path(args.requests_log)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return run_forwarded(args.forward, args.command)


def run_forwarded(forward: list[str], command: list[str]) -> int:
    """Pipe each ``PORT=UNIX_SOCKET_PATH`` loopback port to its socket, then run ``command`` (after an optional
    ``--``) and return its exit code."""
    for item in forward:
        port, _, path = item.partition("=")
        tcp_to_unix(int(port), path)
    command = command[1:] if command[:1] == ["--"] else command
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
