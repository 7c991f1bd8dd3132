"""No planted secret rests anywhere, whoever instrumented the agent.

A real collector process (``foothold-audit collect``, its own chDB path and data dir) receives planted secrets
of every kind foothold.redact knows (72 kinds, 96 values, fake but shaped like the real ones) through three
doors: Foothold's own instrumentation, the Claude Code hook run as Claude Code runs it (a new process per event,
the payload on stdin), and plain OpenTelemetry SDK spans written the way GenAI-convention agents write them
(``gen_ai.input.messages`` / ``output.messages`` / ``system_instructions`` / ``tool.definitions`` as JSON,
span names, status messages, exception events, links, resource attributes, ``process.command_line``,
``http.url``, ``db.statement``, array attributes). Then every byte the deployment holds is searched: the spool
while the data is in it, the store directory, the quarantine, the collector's log, every string in every
table (read by a separate process once the collector has stopped), and what the CLI prints
(``timeline``, ``report``, ``sessions``, ``credentials``, ``artifacts``, ``sql``).

Each secret's marker (its keyed fingerprint) must be in the store, so "not found" means redacted, not lost;
the look-alikes (git SHAs, UUIDs, base64 images, uid:gid...) must come through unchanged.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from foothold import instrumentation as fh
from foothold.instrumentation.integrations import hook_forwarder
from foothold.redact import fingerprint
from tests.collector_process import CLI, start_collector, write_config
from tests.planted import LOOK_ALIKES, Planter
from tests.test_instrumentation import _reset, instrument

KEY = "secrets-at-rest-key"
PLANTED = Planter(seed=4242).every()
ROOT = Path(__file__).resolve().parent.parent
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{12,}")


def needles(value: str) -> set[str]:
    """What would betray ``value``: the value, as JSON would escape it, and each long alphanumeric run of it
    (a cut, wrapped or differently escaped copy still holds those)."""
    found = {value, json.dumps(value)[1:-1], value.replace("/", "\\/")}
    found |= set(_ALNUM_RUN.findall(value))
    return {n for n in found if len(n) >= 8}


NEEDLES = {needle: name for name, (_, value, _) in PLANTED.items() for needle in needles(value)}


def leaks(where: str, data: bytes | str) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return [f"{where}: {NEEDLES[n]} ({n[:24]}...)" for n in NEEDLES if n in text]


def _cli(config: Path, *args: str) -> str:
    done = subprocess.run(
        [*CLI, *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "4000"},  # no wrapping: a secret cut across lines would evade the grep
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout + done.stderr


def _through_foothold(home: Path, endpoint: str) -> None:
    """(a) Foothold's instrumentation, content capture on: arguments, results, an exception message."""
    provider = TracerProvider(resource=Resource.create({"service.name": "foothold-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(GrpcSpanExporter(endpoint=endpoint, insecure=True)))
    harness = instrument(home, provider=provider, capture_content=True, fingerprint_key=KEY.encode())
    try:
        with fh.session(conversation_id="via-foothold"):
            for name, (_, _, text) in PLANTED.items():
                with fh.tool_call("bash", arguments={"command": text, "label": name}, cwd=str(home)) as call:
                    call.set_result(f"ran: {text}")
            with pytest.raises(RuntimeError), fh.tool_call("deploy"):
                raise RuntimeError("deploy failed for " + " ".join(text for _, _, text in PLANTED.values()))
        harness.instrumentation.force_flush()
    finally:
        harness.close()
        _reset()


def _through_claude_code_hook(tmp: Path, endpoint: str) -> None:
    """(b) The Claude Code hook as Claude Code runs it: a process per event, the documented JSON on stdin."""
    home, project = tmp / "cc-home", tmp / "cc-home" / "project"
    project.mkdir(parents=True)
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "FOOTHOLD_HOOK_STATE_DIR": str(tmp / "cc-state"),
        "FOOTHOLD_FINGERPRINT_KEY": KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "FOOTHOLD_HOOK_TIMEOUT": "10",
    }
    texts = [text for _, _, text in PLANTED.values()]
    chunks = [texts[i : i + 25] for i in range(0, len(texts), 25)]

    def run(payload: dict) -> None:
        body = {
            "session_id": "via-claude-code",
            "transcript_path": str(home / "t.jsonl"),
            "cwd": str(project),
            "permission_mode": "default",
            **payload,
        }
        done = subprocess.run(
            [*CLI, "hook", "claude-code"], input=json.dumps(body), capture_output=True, text=True, env=env, cwd=project
        )
        assert done.returncode == 0, done.stderr[-2000:]

    run({"hook_event_name": "UserPromptSubmit", "prompt": "deploy with " + "\n".join(texts[:30])})
    for i, chunk in enumerate(chunks):
        tool_input = {"command": "\n".join(chunk), "description": "configure"}
        use_id = f"toolu_{i:02d}"
        run({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": tool_input, "tool_use_id": use_id})
        response = {"stdout": "\n".join(chunk), "stderr": "", "interrupted": False}
        run(
            {
                "hook_event_name": "PostToolUse",
                "tool_name": "Bash",
                "tool_input": tool_input,
                "tool_response": response,
                "tool_use_id": use_id,
            }
        )


def _through_plain_otel(endpoint: str) -> None:
    """(c) Spans no Foothold code touched, written as GenAI-convention agents and common instrumentations do."""
    texts = [text for _, _, text in PLANTED.values()]
    resource = Resource.create(
        {
            "service.name": "plain-otel-agent",
            "process.command_line": "agent --api-key " + PLANTED["openai"][1],
            "deployment.notes": texts[0],
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(HttpSpanExporter(endpoint=endpoint + "/v1/traces")))
    tracer = provider.get_tracer("plain.agent")
    system = [{"type": "text", "content": "You are a deploy bot. Credentials: " + texts[1]}]
    tools = [{"type": "function", "name": "bash", "description": "runs " + texts[2], "parameters": {}}]
    with tracer.start_as_current_span("invoke_agent deployer") as agent_span:
        agent_span.set_attribute("gen_ai.conversation.id", "via-plain-otel")
        for i, text in enumerate(texts):
            messages = [
                {"role": "user", "parts": [{"type": "text", "content": f"use this: {text}"}]},
                {
                    "role": "assistant",
                    "parts": [{"type": "tool_call", "id": f"call_{i}", "name": "bash", "arguments": {"command": text}}],
                },
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": f"call_{i}", "response": text}]},
            ]
            output = [{"role": "assistant", "parts": [{"type": "text", "content": f"done with {text}"}]}]
            with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.conversation.id", "via-plain-otel")
                chat.set_attribute("gen_ai.input.messages", orjson.dumps(messages).decode())
                chat.set_attribute("gen_ai.output.messages", orjson.dumps(output).decode())
                chat.set_attribute("gen_ai.system_instructions", orjson.dumps(system).decode())
                chat.set_attribute("gen_ai.tool.definitions", orjson.dumps(tools).decode())
                chat.set_attribute("gen_ai.prompt", text)  # the deprecated name, still sent
            link = Link(chat.get_span_context(), {"reason": text})
            with tracer.start_as_current_span(f"execute_tool bash {text}", links=[link]) as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "bash")
                tool.set_attribute("gen_ai.tool.call.id", f"call_{i}")
                tool.set_attribute("gen_ai.conversation.id", "via-plain-otel")
                tool.set_attribute("gen_ai.tool.call.arguments", orjson.dumps({"command": text}).decode())
                tool.set_attribute("process.command_line", text)
                tool.set_attribute("process.command_args", ["sh", "-c", text])
                tool.set_attribute("http.url", f"https://api.internal/v1?x={text}")
                tool.set_attribute("db.statement", f"ALTER USER app IDENTIFIED BY '{text}'")
                tool.set_attribute("input.value", text)
                tool.add_event("exception", {"exception.type": "CalledProcessError", "exception.message": text})
                tool.add_event(text, {"detail": text})
                tool.set_status(Status(StatusCode.ERROR, f"exit 1: {text}"))
        with tracer.start_as_current_span("look-alikes") as benign:
            for i, text in enumerate(LOOK_ALIKES):
                benign.set_attribute(f"benign.{i}", text)
    provider.shutdown()


def _wait_stored(config: Path, last_span: str) -> None:
    """Poll the store through the CLI until the last span sent is in: the collector acknowledged every span
    once spooled and exports the spool in order, so everything sent before it is stored too."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        out = _cli(config, "sql", f"SELECT count() AS n FROM otel_traces WHERE SpanName = '{last_span}'", "-f", "json")
        if int(re.search(r'"n"\s*:\s*"?(\d+)', out).group(1)):
            return
        time.sleep(0.2)
    raise AssertionError(f"span {last_span!r} not stored after 180 s")


_DUMP = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
out = []
def walk(v):
    if isinstance(v, str): out.append(v)
    elif isinstance(v, bytes): out.append(v.decode("utf-8", "replace"))
    elif isinstance(v, dict): [walk(i) for i in v.items()]
    elif isinstance(v, (list, tuple)): [walk(i) for i in v]
tables = client.query("SELECT database, name FROM system.tables WHERE database NOT IN ('system', "
                      "'information_schema', 'INFORMATION_SCHEMA') AND engine NOT LIKE '%View'").result_rows
for db, table in tables:
    walk(client.query(f"SELECT * FROM `{db}`.`{table}`").result_rows)
sys.stdout.write(str(len(tables)) + "\\0" + "\\0".join(out))
"""


@pytest.mark.usefixtures("stop_hook_forwarders")
def test_planted_secrets_rest_nowhere_whoever_instrumented_the_agent(tmp_path: Path, monkeypatch):
    data_dir, store_dir = tmp_path / "collector", tmp_path / "store"
    data_dir.mkdir()
    config = write_config(
        tmp_path / "foothold.yaml", data_dir, store_dir, batch={"timeout_seconds": 0.5}, fingerprint_key=KEY
    )
    log = tmp_path / "collector.log"
    proc, info = start_collector(config, data_dir, log)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    found: list[str] = []
    try:
        _through_foothold(home, info["otlp_grpc"])
        _through_claude_code_hook(tmp_path, info["otlp_http"])
        hook_forwarder.flush(str(tmp_path / "cc-state"))  # the hook's forwarder sends after answering
        _through_plain_otel(info["otlp_http"])
        spool = data_dir / "spool"
        for path in sorted(p for p in spool.rglob("*") if p.is_file()):  # received bodies, as they rest
            found += leaks(f"spool {path.name}", path.read_bytes())
            if path.suffix == ".seg":  # request bodies (the checkpoint holds only sequence numbers)
                assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
        _wait_stored(config, "invoke_agent deployer")
        outputs = {
            "timeline via-foothold": _cli(config, "timeline", "via-foothold"),
            "timeline via-claude-code (json)": _cli(config, "timeline", "via-claude-code", "-f", "json"),
            "timeline via-plain-otel": _cli(config, "timeline", "via-plain-otel"),
            "report --since 1d (json)": _cli(config, "report", "--since", "1d", "-f", "json"),
            "report via-claude-code": _cli(config, "report", "via-claude-code"),
            "sessions": _cli(config, "sessions"),
            "credentials": _cli(config, "credentials"),
            "artifacts": _cli(config, "artifacts"),
            "sql otel_traces": _cli(config, "sql", "SELECT * FROM otel_traces", "-f", "json"),
            "sql tool_calls": _cli(config, "sql", "SELECT * FROM tool_calls", "-f", "json"),
        }
        for where, text in outputs.items():
            found += leaks(f"CLI {where}", text)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)

    dump = subprocess.run([sys.executable, "-c", _DUMP, str(store_dir)], capture_output=True, timeout=300)
    assert dump.returncode == 0, dump.stderr.decode(errors="replace")[-2000:]
    stored = dump.stdout.decode("utf-8", "replace")
    assert int(stored.split("\0", 1)[0]) >= 5, "the dump found too few tables"
    found += leaks("a stored value", stored)
    for path in sorted(p for root in (store_dir, data_dir) for p in root.rglob("*") if p.is_file()):
        found += leaks(f"file {path.relative_to(tmp_path)}", path.read_bytes())
    found += leaks("collector log", log.read_bytes())
    assert found == [], "\n".join(found[:40])

    missing = [n for n, (_, value, _) in PLANTED.items() if f"fp={fingerprint(value, KEY)}]" not in stored]
    assert missing == [], f"no marker stored for {missing}: were they redacted, or lost?"
    assert all(text in stored for text in LOOK_ALIKES), [t for t in LOOK_ALIKES if t not in stored]
    for session in ("via-foothold", "via-claude-code", "via-plain-otel"):
        assert session in outputs["sessions"], session
