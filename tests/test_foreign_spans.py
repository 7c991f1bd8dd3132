"""Spans Foothold did not write: agents instrumented by pydantic-ai's own OpenTelemetry support (GenAI
``execute_tool`` spans) and by an OpenInference instrumentation (``openinference.span.kind = TOOL``) go
through the real collector and land in ``tool_calls``, classified like Foothold's own."""

from __future__ import annotations

import pytest

from tests.conftest import rows, sdk_agent


def test_pydantic_ai_tool_spans_land_in_tool_calls(collector):
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.capabilities.instrumentation import Instrumentation
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    agent_sdk = sdk_agent(collector, service="pydantic-ai-agent")
    agent = Agent(
        TestModel(),
        capabilities=[Instrumentation(settings=InstrumentationSettings(tracer_provider=agent_sdk.provider))],
    )

    @agent.tool_plain
    def run_shell(command: str) -> str:
        """Run a shell command."""
        return "ok"

    assert "run_shell" in agent.run_sync("go").output
    agent_sdk.close()
    calls = rows(collector, "SELECT ToolName, ToolCallId, Arguments, ServiceName, ToolCategories FROM {db}.tool_calls")
    assert len(calls) == 1
    name, call_id, arguments, service, categories = calls[0]
    assert (name, service) == ("run_shell", "pydantic-ai-agent")
    assert call_id and '"command"' in arguments


def test_openinference_tool_spans_land_in_tool_calls(collector):
    pytest.importorskip("openinference.instrumentation.langchain")
    from langchain_core.tools import tool
    from openinference.instrumentation.langchain import LangChainInstrumentor

    agent_sdk = sdk_agent(collector, service="openinference-agent")
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=agent_sdk.provider)
    try:

        @tool
        def bash(command: str) -> str:
            """Run a shell command."""
            return "done"

        assert bash.invoke({"command": "echo ssh-ed25519 AAAA >> ~/.ssh/authorized_keys"}) == "done"
    finally:
        instrumentor.uninstrument()
        agent_sdk.close()
    calls = rows(collector, "SELECT ToolName, Arguments, PersistenceKind, ServiceName FROM {db}.tool_calls")
    assert calls == [
        ("bash", "echo ssh-ed25519 AAAA >> ~/.ssh/authorized_keys", "ssh_authorized_keys", "openinference-agent")
    ]
