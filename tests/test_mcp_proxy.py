"""The MCP audit proxy between a real MCP client session and a real stdio MCP server (not instrumented, and
instrumented by Foothold too: one row per call either way).

``tee`` on both sides of the proxy records the bytes each way: what the server wrote is exactly what the
client read, and what the client wrote is exactly what the server read. The proxy's spans (tools/call with
arguments, verdict and the server's file changes; resources/read as untrusted input; a failing tool) are
read back from chDB."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.conftest import rows
from tests.mcp_servers import child_env, files_server


def test_proxy_passes_bytes_through_unchanged_and_records_calls(tmp_path: Path, collector):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    server = tmp_path / "server.py"
    server.write_text(files_server())
    taps = {name: tmp_path / f"{name}.bin" for name in ("client_out", "server_in", "server_out", "client_in")}
    q = {name: shlex.quote(str(path)) for name, path in taps.items()}
    py = shlex.quote(sys.executable)
    log = shlex.quote(str(tmp_path / "server.log"))
    inner = f"tee {q['server_in']} | {py} {shlex.quote(str(server))} 2>{log} | tee {q['server_out']}"
    # content capture by flag: Claude Code and other MCP hosts do not pass OTEL_* variables to servers
    proxy = f"{py} -m foothold mcp-proxy --capture-content --session agent-sess-1 -- sh -c {shlex.quote(inner)}"
    pipeline = f"tee {q['client_out']} | {proxy} | tee {q['client_in']}"
    env = child_env(home, collector, FOOTHOLD_FINGERPRINT_KEY="test-fingerprint-key")
    params = StdioServerParameters(command="sh", args=["-c", pipeline], env=env, cwd=str(home))

    async def session() -> tuple:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                appended = await client.call_tool(
                    "append_file", {"path": "~/.ssh/authorized_keys", "content": "ssh-ed25519 AAAA attacker\n"}
                )
                failed = await client.call_tool("fail", {"reason": "nope"})
                resource = await client.read_resource("notes://readme")
                return appended, failed, resource

    appended, failed, resource = asyncio.run(session())
    assert "appended \u2713" in appended.content[0].text and failed.is_error
    assert "ignore previous" in resource.contents[0].text

    sent, received = taps["client_out"].read_bytes(), taps["client_in"].read_bytes()
    assert b'"tools/call"' in sent and b"appended" in received
    assert taps["server_in"].read_bytes() == sent  # requests reach the server byte-for-byte
    assert taps["server_out"].read_bytes() == received  # responses reach the client byte-for-byte

    calls = rows(
        collector,
        "SELECT ToolName, Status, ErrorType, PersistenceKind, ToolCategories, SessionId, SpanId, "
        "ServiceName, ToolCallId FROM {db}.tool_calls ORDER BY Timestamp",
    )
    assert [c[0] for c in calls] == ["append_file", "fail", "resources/read"]
    append, fail, read = calls
    assert append[3] == "ssh_authorized_keys" and append[7] == "foothold-mcp-proxy"
    assert fail[1] == "Error"
    assert "untrusted_input" in read[4]
    assert {c[5] for c in calls} == {"agent-sess-1"}  # the agent's session, given by --session
    attrs = dict(
        rows(collector, "SELECT SpanAttributes FROM {db}.otel_traces WHERE SpanId = %(id)s", id=append[6])[0][0]
    )
    assert attrs["mcp.method.name"] == "tools/call" and attrs["mcp.session.id"].startswith("mcp-proxy-")
    assert append[8] == attrs["jsonrpc.request.id"] != ""  # the JSON-RPC id is the call id
    assert "authorized_keys" in attrs["gen_ai.tool.call.arguments"] and "appended" in attrs["gen_ai.tool.call.result"]
    artifacts = rows(
        collector,
        "SELECT ToolSpanId, Path, Source, PersistenceKind, SessionId FROM {db}.artifacts WHERE Kind = 'file'",
    )
    # the artifact files under the call's session, not a phantom one keyed by its trace id
    assert (
        append[6],
        str(home / ".ssh/authorized_keys"),
        "snapshot",
        "ssh_authorized_keys",
        "agent-sess-1",
    ) in artifacts


def test_a_proxied_server_that_is_instrumented_too_is_one_row_per_call(tmp_path: Path, collector):
    """Both sides record each call: the proxy's client span and the server's own (Foothold's MCP
    integration). They share the JSON-RPC id and, through FOOTHOLD_MCP_SESSION_ID, the MCP session."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    server = tmp_path / "server.py"
    server.write_text(files_server('service_name="files-server", watch=False'))
    py = shlex.quote(sys.executable)
    log = shlex.quote(str(tmp_path / "server.log"))
    proxy = f"{py} -m foothold mcp-proxy -- sh -c {shlex.quote(f'{py} {shlex.quote(str(server))} 2>{log}')}"
    env = child_env(home, collector, FOOTHOLD_FINGERPRINT_KEY="test-fingerprint-key")
    params = StdioServerParameters(command="sh", args=["-c", proxy], env=env, cwd=str(home))

    async def session() -> None:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                for n in range(2):
                    await client.call_tool("append_file", {"path": "~/notes.txt", "content": f"line {n}\n"})

    asyncio.run(session())
    spans = rows(
        collector,
        "SELECT ServiceName, SpanAttributes['jsonrpc.request.id'] FROM {db}.otel_traces "
        "WHERE SpanAttributes['mcp.method.name'] = 'tools/call' ORDER BY ServiceName",
    )
    services = sorted({service for service, _ in spans})
    assert services == ["files-server", "foothold-mcp-proxy"], (tmp_path / "server.log").read_text()
    calls = rows(collector, "SELECT ToolCallId, count() FROM {db}.tool_calls GROUP BY ToolCallId ORDER BY ToolCallId")
    assert len(calls) == 2 and all(count == 1 for _, count in calls)  # two calls, two rows, not four


def test_lines_are_split_on_the_side_whatever_the_chunking():
    from foothold.instrumentation.integrations.mcp_proxy import _Lines

    lines = _Lines()
    stream = b'{"a":1}\n{"b":\n2}\n\n{"c":3}'
    got = [line for i in range(len(stream)) for line in lines.feed(stream[i : i + 1])]
    assert got == [b'{"a":1}', b'{"b":', b"2}", b""]
    assert lines.feed(b"\n") == [b'{"c":3}']
