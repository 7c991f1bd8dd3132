"""LangChain tools through Foothold into chDB: a real ``langchain-core`` tool run offline, invoked the way
an agent's ToolNode does (with a ToolCall, so the model's ``tool_call_id`` is known), sync and async."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from langchain_core.tools import tool

from foothold import instrumentation as fh
from tests.conftest import rows, sdk_agent
from tests.test_instrumentation import _reset, home, instrument  # noqa: F401 (fixture)


@pytest.fixture
def wired(collector, home):
    harness = instrument(home, provider=sdk_agent(collector).provider, capture_content=True)
    assert "langchain" in fh.instrument("langchain")
    yield collector, harness
    fh.uninstrument("langchain")
    harness.close()
    _reset()


def test_tool_calls_carry_call_id_arguments_result_and_artifacts(wired, home: Path):
    collector, harness = wired

    @tool
    def write_file(path: str, content: str) -> str:
        """Write content to a file."""
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with open(Path(path).expanduser(), "a") as handle:
            handle.write(content)
        return f"wrote {len(content)} bytes"

    @tool
    async def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    with fh.session(conversation_id="lc-session", agent_name="lc-agent"):
        message = write_file.invoke(
            {
                "name": "write_file",
                "id": "call_lc_1",
                "type": "tool_call",
                "args": {"path": "~/.ssh/authorized_keys", "content": "ssh-ed25519 AAAA x\n"},
            }
        )
        assert message.tool_call_id == "call_lc_1"
        assert (
            asyncio.run(
                lookup.ainvoke({"name": "lookup", "id": "call_lc_2", "type": "tool_call", "args": {"key": "k"}})
            ).content
            == "K"
        )
        assert write_file.invoke({"path": str(home / "notes.txt"), "content": "hi"}) == "wrote 2 bytes"
    harness.instrumentation.force_flush()

    calls = rows(
        collector,
        "SELECT ToolName, ToolCallId, SessionId, AgentName, Arguments, PersistenceKind, SpanId "
        "FROM {db}.tool_calls ORDER BY Timestamp",
    )
    assert [c[:4] for c in calls] == [
        ("write_file", "call_lc_1", "lc-session", "lc-agent"),
        ("lookup", "call_lc_2", "lc-session", "lc-agent"),
        ("write_file", calls[2][1], "lc-session", "lc-agent"),
    ]
    assert "authorized_keys" in calls[0][4] and calls[0][5] == "ssh_authorized_keys"
    result = rows(
        collector,
        "SELECT SpanAttributes['gen_ai.tool.call.result'] FROM {db}.otel_traces WHERE SpanId = %(id)s",
        id=calls[1][6],
    )
    assert result == [("K",)]
    artifacts = rows(
        collector, "SELECT Path, Source, ToolSpanId, PersistenceKind FROM {db}.artifacts WHERE Kind = 'file'"
    )
    assert (str(home / ".ssh/authorized_keys"), "audit_hook", calls[0][6], "ssh_authorized_keys") in artifacts


def test_uninstrument_restores_base_tool(wired):
    from langchain_core.tools import BaseTool

    assert hasattr(BaseTool.run, "__wrapped__")
    fh.uninstrument("langchain")
    assert not hasattr(BaseTool.run, "__wrapped__")
