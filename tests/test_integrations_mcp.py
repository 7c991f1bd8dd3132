"""MCP (official SDK 2.x) through Foothold: a real stdio server process and a real client session.

The client's ``tools/call`` span and the server's span join one trace (the SDK carries traceparent in
params._meta); Foothold adds redacted arguments/results, the caller's session (carried as baggage), and the
server-side artifacts (audit hook + snapshot) of a tool that appends to ``authorized_keys`` in a temp home.
Both processes export to a real collector; everything is checked in chDB.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, stdio_client

from foothold import instrumentation as fh
from tests.conftest import rows, sdk_agent
from tests.mcp_servers import child_env, files_server
from tests.test_instrumentation import _reset, home, instrument  # noqa: F401 (fixture)


def server_params(tmp_path: Path, home: Path, collector) -> StdioServerParameters:
    script = tmp_path / "mcp_server.py"
    script.write_text(
        files_server(
            'service_name="mcp-test-server", capture_content=True, home=os.environ["HOME"], '
            'fingerprint_key="test-fingerprint-key"'
        )
    )
    env = child_env(
        home, collector, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_BSP_SCHEDULE_DELAY="100", FOOTHOLD_WATCH="1"
    )
    return StdioServerParameters(command=sys.executable, args=[str(script)], env=env, cwd=str(home))


@pytest.fixture
def wired(collector, home):
    agent = sdk_agent(collector, service="mcp-test-client")
    harness = instrument(home, provider=agent.provider, capture_content=True)
    fh.instrument("mcp", tracer_provider=agent.provider)
    yield collector, harness
    fh.uninstrument("mcp")
    harness.close()
    _reset()


def test_client_and_server_spans_join_one_trace_with_arguments_session_and_artifacts(wired, home, tmp_path):
    collector, harness = wired
    keys = home / ".ssh" / "authorized_keys"
    keys.parent.mkdir()
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

    async def run() -> tuple:
        with (tmp_path / "server.log").open("w") as errlog:  # the failing tool's traceback goes there
            async with stdio_client(server_params(tmp_path, home, collector), errlog=errlog) as (read, write):
                async with ClientSession(read, write) as client:
                    await client.initialize()
                    with fh.session(conversation_id="mcp-session", agent_name="mcp-agent"):
                        appended = await client.call_tool(
                            "append_file", {"path": "~/.ssh/authorized_keys", "content": f"ssh-ed25519 AAAA {token}\n"}
                        )
                        failed = await client.call_tool("fail", {"reason": "nope"})
                        resource = await client.read_resource("notes://readme")
                    return appended, failed, resource

    appended, failed, resource = asyncio.run(run())  # the server process exits (and flushes) when stdin closes
    assert not appended.is_error and failed.is_error
    assert "ignore previous" in resource.contents[0].text
    assert keys.read_text().startswith("ssh-ed25519 AAAA")
    harness.instrumentation.force_flush()

    calls = rows(
        collector,
        "SELECT ToolName, ServiceName, SessionId, AgentName, Status, ErrorType, Arguments, TraceId, "
        "SpanId, ParentSpanId, PersistenceKind FROM {db}.tool_calls ORDER BY Timestamp",
    )
    by_tool = {c[0]: c for c in calls}
    assert sorted(by_tool) == ["append_file", "fail"] and len(calls) == 2  # one row per MCP call: the client's
    client_call = by_tool["append_file"]
    assert client_call[1] == "mcp-test-client" and client_call[2] == "mcp-session"
    assert "authorized_keys" in client_call[6] and token not in client_call[6] and "[REDACTED:" in client_call[6]
    assert client_call[10] == "ssh_authorized_keys"  # declared intent, judged on ingest
    assert by_tool["fail"][4:6] == ("Error", "tool_error")

    servers = rows(
        collector,
        "SELECT SpanAttributes, TraceId, SpanId, ParentSpanId, StatusCode FROM {db}.otel_traces "
        "WHERE ServiceName = 'mcp-test-server' AND SpanAttributes['mcp.method.name'] = 'tools/call' "
        "ORDER BY Timestamp",
    )
    server_attrs, server_trace, server_span, server_parent, _ = servers[0]
    assert server_trace == client_call[7]  # one trace across the two processes
    assert server_parent == client_call[8]  # the server span is the client span's child
    assert server_attrs["gen_ai.conversation.id"] == "mcp-session"  # the session reached the server as baggage
    assert server_attrs["gen_ai.agent.name"] == "mcp-agent" and server_attrs["jsonrpc.request.id"]
    assert "appended \u2713 to ~/.ssh/authorized_keys" in server_attrs["gen_ai.tool.call.result"]
    assert servers[1][4] == "Error"  # the failing tool, on the server side too

    artifacts = rows(
        collector,
        "SELECT Path, Source, ToolSpanId, PersistenceKind, ServiceName FROM {db}.artifacts "
        "WHERE Kind = 'file' AND ServiceName = 'mcp-test-server'",
    )
    assert (str(keys), "audit_hook", server_span, "ssh_authorized_keys", "mcp-test-server") in artifacts
    from foothold.investigation.access import open_reader
    from foothold.investigation.timeline import session_timeline

    with open_reader(collector.settings) as reader:
        timeline = session_timeline(reader, "mcp-session")
    (append,) = [c for c in timeline.calls if c.tool == "append_file"]
    assert str(keys) in [a.path for a in append.artifacts]  # the server's artifact, under the client's call

    reads = rows(
        collector,
        "SELECT SpanKind, SpanAttributes['mcp.method.name'], SpanAttributes['mcp.resource.uri'], "
        "SpanAttributes['gen_ai.conversation.id'] FROM {db}.otel_traces "
        "WHERE SpanAttributes['mcp.method.name'] = 'resources/read' ORDER BY SpanKind",
    )
    assert ("Server", "resources/read", "notes://readme", "mcp-session") in [tuple(r) for r in reads]


def test_uninstrument_restores_the_sdk(wired):
    from mcp.client.session import ClientSession as Session
    from mcp.shared import jsonrpc_dispatcher

    assert hasattr(Session.call_tool, "__wrapped__")
    fh.uninstrument("mcp")
    assert not hasattr(Session.call_tool, "__wrapped__")
    assert jsonrpc_dispatcher.otel_span.__module__ == "mcp.shared._otel"
    fh.instrument("mcp")
