"""The real Codex CLI (npm ``@openai/codex``, pinned in .ci/codex-cli: the npm package is a launcher, the
native Rust binary comes in the platform package it depends on) with its native OpenTelemetry export on.

``codex exec`` runs non-interactively (approvals and sandbox bypassed, so the shell command really runs) against
a scripted stand-in for the OpenAI Responses API on 127.0.0.1, configured as a custom model provider in a
temporary ``CODEX_HOME/config.toml`` (``model_provider``, ``[model_providers.X]`` ``base_url``/``wire_api``/
``env_key``), and exports its logs with its own OTLP/HTTP exporter (``[otel]``, ``log_user_prompt = false``) to a
running collector. ``--strict-config`` makes the binary refuse any key of that file it does not know.

Why the stand-in is faithful, from openai/codex (codex-rs): ``model-provider-info/src/lib.rs`` defines the
provider keys and accepts only ``wire_api = "responses"`` (the binary rejects ``"chat"``);
``codex-api/src/sse/responses.rs`` parses the stream the stand-in sends: SSE ``response.created``, then
``response.output_item.done`` whose ``item`` is a ``function_call`` (``name``, ``call_id``, ``arguments`` as a
JSON string) or an assistant ``message``, then ``response.completed`` (``response.id``, ``usage``). The tool is
the one the binary offers in its request: ``exec_command`` (unified exec, ``{"cmd": …}``); its answer comes back
as a ``function_call_output`` with the same ``call_id``, which is how the stand-in knows the turn. The test
checks both model requests reached the stand-in and that the second carried the command's output.

Nothing leaves the machine: the binary runs in a loopback-only network namespace (``unshare -rn``, see
tests/loopback_runner.py) where the stand-in's and the collector's ports are pipes to Unix sockets served by this
process; update checks and analytics are off in the config as well (the binary still posts its turn costs to the
provider's base URL, that is to the stand-in, which answers 404). Without the npm package, or without a way to
isolate the network, the test skips with the reason; the event mapping is then still covered from Codex's
source-defined attributes by tests/test_native_telemetry.py.

What the binary really emits (0.171.0) and collector/processors/native.py maps: ``codex.tool_decision``
(``decision`` approved, ``source`` Config under the bypass), then ``codex.tool_result`` (``tool_name``,
``call_id``, ``arguments``, ``duration_ms``, ``success``, ``output``, ``conversation.id``; no decision: the
mapper carries the decision's over), all as attributes, the event named by the ``event.name`` attribute while
the record's EventName field holds the tracing callsite (``event otel/src/tool_result.rs:54``).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import claude_code_harness as bridges
from tests.conftest import rows
from tests.test_timeline import run_cli

ROOT = Path(__file__).resolve().parent.parent
CODEX = ROOT / ".ci" / "codex-cli" / "node_modules" / ".bin" / "codex"
COMMAND = "echo 'ssh-ed25519 AAAA attacker' >> ~/.ssh/authorized_keys"
CALL_ID = "call_codex_01"
KEY_VARIABLE = "FOOTHOLD_STAND_IN_KEY"


def _sse(events: list[dict]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


class StandIn(http.server.ThreadingHTTPServer):
    """A scripted Responses API: one ``exec_command`` call, then, once its output comes back, a final answer."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict]] = []  # method, path, body
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def answer(self, body: dict) -> bytes:
        answered = any(
            isinstance(item, dict) and item.get("type") == "function_call_output" and item.get("call_id") == CALL_ID
            for item in body.get("input") or []
        )
        if answered:
            item = {
                "type": "message",
                "id": "msg_02",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Done."}],
            }
        else:
            arguments = json.dumps({"cmd": COMMAND})  # a JSON string, as the API sends it
            item = {
                "type": "function_call",
                "id": "fc_01",
                "call_id": CALL_ID,
                "name": "exec_command",
                "arguments": arguments,
            }
        response = f"resp_{len(self.requests):02d}"
        usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        return _sse(
            [
                {"type": "response.created", "response": {"id": response}},
                {"type": "response.output_item.done", "output_index": 0, "item": item},
                {"type": "response.completed", "response": {"id": response, "usage": usage}},
            ]
        )


class _Handler(http.server.BaseHTTPRequestHandler):
    server: StandIn
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, {}))
        self._send(404, "application/json", b'{"error": {"message": "not served by the stand-in"}}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        self.server.requests.append(("POST", self.path, body))
        if self.path.endswith("/responses"):
            self._send(200, "text/event-stream", self.server.answer(body))
        else:
            self._send(404, "application/json", b'{"error": {"message": "not served by the stand-in"}}')

    def _send(self, status: int, media: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _config(api_port: int, logs_url: str) -> str:
    return f"""
model = "stand-in-model"
model_provider = "stand_in"
check_for_update_on_startup = false

[model_providers.stand_in]
name = "Foothold stand-in"
base_url = "http://127.0.0.1:{api_port}/v1"
wire_api = "responses"
env_key = "{KEY_VARIABLE}"

[analytics]
enabled = false

[otel]
log_user_prompt = false
metrics_exporter = "none"
trace_exporter = "none"

[otel.exporter.otlp-http]
endpoint = "{logs_url}"
protocol = "binary"
"""


@pytest.fixture
def codex() -> Path:
    if not CODEX.exists():
        pytest.skip("the Codex CLI is not installed: `make codex-cli` (npm ci in .ci/codex-cli) failed or was not run")
    prefix, note = bridges.unshare_prefix()
    if not prefix:
        pytest.skip(f"cannot isolate the network, so the binary is not run: {note}")
    return CODEX


def test_real_codex_cli_tool_call_arrives_as_one_classified_tool_call(codex, collector, settings, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    (home / ".ssh").mkdir()
    work.mkdir()
    api = StandIn()
    api.thread.start()
    api_port = api.server_address[1]
    collector_url = collector.endpoint_url("otlp_http")
    collector_port = int(collector_url.rsplit(":", 1)[1])
    (home / ".codex" / "config.toml").write_text(_config(api_port, f"{collector_url}/v1/logs"))
    pipes = [
        bridges.unix_to_tcp(str(tmp_path / "api.sock"), api_port),
        bridges.unix_to_tcp(str(tmp_path / "collector.sock"), collector_port),
    ]
    env = {
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        KEY_VARIABLE: "offline-dummy-key",
    }
    command = [
        *["unshare", "-rn", sys.executable, "-m", "tests.loopback_runner"],
        *[
            "--forward",
            f"{api_port}={tmp_path / 'api.sock'}",
            "--forward",
            f"{collector_port}={tmp_path / 'collector.sock'}",
        ],
        "--",
        str(codex),
        "exec",
        "--json",
        "--strict-config",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "add my key",
    ]
    try:
        done = subprocess.run(
            command, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
        )
    finally:
        api.shutdown()
        for pipe in pipes:
            pipe.close()
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (session,) = [e["thread_id"] for e in events if e.get("type") == "thread.started"]
    assert "Done." in [e["item"].get("text") for e in events if e.get("type") == "item.completed"], events
    assert (home / ".ssh" / "authorized_keys").read_text() == "ssh-ed25519 AAAA attacker\n"  # the tool really ran

    turns = [body for method, path, body in api.requests if method == "POST" and path == "/v1/responses"]
    # Besides the two turns the binary may post its turn-cost analytics to the provider (answered 404): no other
    # request is expected, and any other would have had nowhere to go but here.
    assert {path for _, path, _ in api.requests} <= {"/v1/responses", "/v1/analytics/codex/turn-costs"}
    assert len(turns) == 2 and all(body["stream"] for body in turns)
    assert "exec_command" in [tool.get("name") for tool in turns[0]["tools"]]  # the tool the stand-in calls
    (output,) = [i for i in turns[1]["input"] if i.get("type") == "function_call_output"]
    assert output["call_id"] == CALL_ID and "exited with code 0" in output["output"]

    names = dict(rows(collector, "SELECT EventName, count() FROM {db}.otel_logs GROUP BY EventName"))
    assert names.get("codex.tool_result") == 1 and names.get("codex.tool_decision") == 1, names
    prompts = rows(
        collector, "SELECT LogAttributes['prompt'] FROM {db}.otel_logs WHERE EventName = 'codex.user_prompt'"
    )
    assert prompts == [("[REDACTED]",)]  # log_user_prompt = false: Codex's own placeholder
    (call,) = rows(
        collector,
        "SELECT ToolName, ToolCallId, AgentName, Decision, DecisionSource, Status, Arguments, PersistenceKind, "
        "SessionId, Source FROM {db}.tool_calls FINAL",
    )
    name, call_id, agent, decision, source, status, arguments, kind, stored_session, reporter = call
    assert (name, call_id, agent, reporter) == ("exec_command", CALL_ID, "codex", "codex.logs")
    assert (decision, source) == ("accept", "Config")  # approved by the bypass flag, not by a person
    assert status == "Ok" and json.loads(arguments) == {"cmd": COMMAND}
    assert kind == "ssh_authorized_keys"  # the same classifier as every other tool call
    assert stored_session == session  # conversation.id is the thread codex exec reported

    timeline = run_cli(settings, "timeline", session, "--format", "json")
    assert timeline.returncode == 0, timeline.stderr
    (listed,) = json.loads(timeline.stdout)["calls"]
    assert listed["tool"] == "exec_command" and listed["call_id"] == CALL_ID, listed
    assert listed["persistence_kind"] == "ssh_authorized_keys"
