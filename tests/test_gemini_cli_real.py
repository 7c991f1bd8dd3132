"""The real Gemini CLI (npm ``@google/gemini-cli``, pinned in .ci/gemini-cli) with its native telemetry on.

The binary runs headless (``gemini -p … --yolo``) against a scripted stand-in for the Gemini API on
127.0.0.1 (``GOOGLE_GEMINI_BASE_URL``; the CLI then authenticates as a gateway and sends every model request
there) and exports its OpenTelemetry logs, metrics and traces with its own OTLP/HTTP exporter
(``GEMINI_TELEMETRY_*`` variables) to a running collector. The stand-in is faithful where the binary looks:
``streamGenerateContent?alt=sse`` answers are well-formed SSE ``GenerateContentResponse`` chunks (a
``functionCall`` part, then text once a ``functionResponse`` comes back), and structured requests
(``responseJsonSchema``: the CLI's model router) get an object of that schema. The test checks every model
request reached the stand-in. The tool really runs: the file it writes is on disk under the test's HOME.

Usage statistics are turned off in the CLI's settings, so with both endpoints on loopback nothing is meant
to leave the machine. Without the npm package (no npm, or npm refused) the test skips with the reason; the
event mapping is still covered by tests/test_native_telemetry.py from the CLI's source-defined attributes.
The real Codex CLI (npm ``@openai/codex``) is driven the same way, against a stand-in Responses API, in
tests/test_codex_cli_real.py.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import rows

ROOT = Path(__file__).resolve().parent.parent
GEMINI = ROOT / ".ci" / "gemini-cli" / "node_modules" / ".bin" / "gemini"
COMMAND = "echo 'ssh-ed25519 AAAA attacker' >> ~/.ssh/authorized_keys"


def _fill(schema: dict) -> object:
    """A value of a Gemini response schema (what the CLI's router parses)."""
    kind = str(schema.get("type", "OBJECT")).upper()
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "OBJECT":
        return {key: _fill(value) for key, value in (schema.get("properties") or {}).items()}
    if kind == "ARRAY":
        return []
    if kind in ("INTEGER", "NUMBER"):
        return 10
    return False if kind == "BOOLEAN" else "stand-in"


class StandIn(http.server.ThreadingHTTPServer):
    """A scripted Gemini API: one shell call, then a final answer."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def answer(self, path: str, request: dict) -> dict:
        self.paths.append(path.split("?", maxsplit=1)[0])
        contents = request.get("contents", [])
        answered = any("functionResponse" in part for c in contents for part in c.get("parts", []))
        schema = (request.get("generationConfig") or {}).get("responseJsonSchema")
        if schema:
            part = {"text": json.dumps(_fill(schema))}
        elif "streamGenerateContent" in path and not answered:
            part = {"functionCall": {"name": "run_shell_command", "args": {"command": COMMAND}}}
        else:
            part = {"text": "Done."}
        return {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12},
        }


class _Handler(http.server.BaseHTTPRequestHandler):
    server: StandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        answer = self.server.answer(self.path, json.loads(body or b"{}"))
        if "alt=sse" in self.path:
            data, media = f"data: {json.dumps(answer)}\r\n\r\n".encode(), "text/event-stream"
        else:
            data, media = json.dumps(answer).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gemini() -> Path:
    if not GEMINI.exists():
        pytest.skip(
            "the Gemini CLI is not installed: `make gemini-cli` (npm ci in .ci/gemini-cli) failed or was not run"
        )
    return GEMINI


def test_real_gemini_cli_tool_call_arrives_as_one_classified_tool_call(gemini, collector, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".gemini").mkdir(parents=True)
    (home / ".ssh").mkdir()
    work.mkdir()
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
        "privacy": {"usageStatisticsEnabled": False},
    }
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    api = StandIn()
    api.thread.start()
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "GEMINI_API_KEY": "offline-dummy-key",
        "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{api.server_address[1]}",
        "GEMINI_TELEMETRY_ENABLED": "true",
        "GEMINI_TELEMETRY_TARGET": "local",
        "GEMINI_TELEMETRY_OTLP_ENDPOINT": collector.endpoint_url("otlp_http"),
        "GEMINI_TELEMETRY_OTLP_PROTOCOL": "http",
    }
    try:
        done = subprocess.run(
            [str(gemini), "-p", "add my key", "--yolo"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        api.shutdown()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ssh-ed25519 AAAA attacker" in (home / ".ssh" / "authorized_keys").read_text()  # the tool really ran
    assert any("streamGenerateContent" in path for path in api.paths)

    events = rows(collector, "SELECT EventName, count() FROM {db}.otel_logs GROUP BY EventName")
    assert dict(events).get("gemini_cli.tool_call") == 1, events
    (call,) = rows(
        collector,
        "SELECT ToolName, AgentName, Decision, DecisionSource, Status, Arguments, PersistenceKind, SessionId, Source "
        "FROM {db}.tool_calls FINAL",
    )
    name, agent, decision, source, status, arguments, kind, session, reporter = call
    assert (name, agent, reporter) == ("run_shell_command", "gemini-cli", "gemini_cli.logs")
    assert decision == "accept" and status == "Ok"
    assert json.loads(arguments)["command"] == COMMAND
    assert kind == "ssh_authorized_keys"  # the same classifier as every other tool call
    assert session  # the CLI's session.id
