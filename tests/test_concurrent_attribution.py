"""Parallel tool calls are not blamed for each other's writes: a REAL LangGraph agent (``StateGraph`` with the
prebuilt ``ToolNode``) whose scripted chat model (langchain-core's ``GenericFakeChatModel``, offline) returns
TWO tool calls in one AIMessage, which ToolNode runs at once on its thread pool. One tool persists into
``~/.bashrc`` (HOME is a temp dir), the other runs ``uname -s``.

Faithful because everything but the model's answers is LangGraph's and LangChain's own code: the graph, the
ToolNode's parallel executor with its copied contexts, the tools' ``run`` path Foothold wraps. The two tools
synchronise on events (no sleeps) so that the harmless call ENDS after the write and BEFORE the writer does (the
writer waits for the harmless call's span to end, seen by a span processor; its snapshot is taken before that):
the order in which a watch-list snapshot alone pins the write on the wrong call. If ToolNode ran them one after
the other, the writer would wait for ``uname`` forever: the waits time out and the test fails, so it also proves
the two calls overlapped.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from foothold import instrumentation as fh
from foothold.semconv import GEN_AI_TOOL_CALL_ID
from tests.conftest import rows, sdk_agent
from tests.test_instrumentation import _reset, home, instrument  # noqa: F401 (fixture)

WAIT = 60  # seconds; only reached when the calls did not overlap (the test then fails)


class CallEnded(SpanProcessor):
    """Sets an event when the tool span of one call id has ended: the order the test needs, without a sleep."""

    def __init__(self, call_id: str) -> None:
        self.call_id, self.ended = call_id, threading.Event()

    def on_end(self, span: ReadableSpan) -> None:
        if (span.attributes or {}).get(GEN_AI_TOOL_CALL_ID) == self.call_id:
            self.ended.set()


UNAME_ENDED = CallEnded("call_uname")


@pytest.fixture
def wired(collector, home):
    provider = sdk_agent(collector).provider
    UNAME_ENDED.ended.clear()
    provider.add_span_processor(UNAME_ENDED)
    harness = instrument(home, provider=provider, capture_content=True)
    assert "langchain" in fh.instrument("langchain")
    yield collector
    fh.uninstrument("langchain")
    harness.close()
    _reset()


def run_agent(write_with_a_shell: bool) -> None:
    written, uname_done = threading.Event(), threading.Event()

    @tool
    def configure_shell(line: str) -> str:
        """Append a line to the user's shell start-up file."""
        rc = Path("~/.bashrc").expanduser()
        if write_with_a_shell:  # a subprocess writes: the audit hook sees the process, not the file
            subprocess.run(["sh", "-c", f"printf '%s\\n' '{line}' >> \"$HOME/.bashrc\""], check=True)
        else:
            with open(rc, "a") as handle:
                handle.write(line + "\n")
        written.set()
        assert uname_done.wait(WAIT), "uname never finished: the calls did not run in parallel"
        assert UNAME_ENDED.ended.wait(WAIT), "uname's tool span never ended while this call ran"
        return "ok"

    @tool
    def system_name() -> str:
        """The operating system's name."""
        assert written.wait(WAIT), "the write never happened: the calls did not run in parallel"
        name = subprocess.run(["uname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
        uname_done.set()
        return name

    turns = iter(
        [
            AIMessage(
                content="",
                tool_calls=[
                    {"name": "configure_shell", "args": {"line": "export PATH=/tmp/x:$PATH"}, "id": "call_rc"},
                    {"name": "system_name", "args": {}, "id": "call_uname"},
                ],
            ),
            AIMessage(content="done"),
        ]
    )
    model = GenericFakeChatModel(messages=turns)
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_node("tools", ToolNode([configure_shell, system_name]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    with fh.session(conversation_id="lg-parallel", agent_name="langgraph"):
        final = graph.compile().invoke({"messages": [("user", "set up my shell and tell me the OS")]})
    assert final["messages"][-1].content == "done"
    assert written.is_set() and uname_done.is_set()


def artifacts_by_call(collector) -> dict[str, list[tuple]]:
    calls = dict(rows(collector, "SELECT SpanId, ToolCallId FROM {db}.tool_calls"))
    assert set(calls.values()) == {"call_rc", "call_uname"}
    found: dict[str, list[tuple]] = {"call_rc": [], "call_uname": []}
    for parent, path, kind, attributes in rows(
        collector,
        "SELECT ParentSpanId, SpanAttributes['foothold.artifact.path'], SpanAttributes['foothold.artifact.kind'], "
        "SpanAttributes FROM {db}.otel_traces WHERE SpanName LIKE 'artifact %'",
    ):
        attributes = dict(attributes)
        found[calls[parent]].append(
            (
                kind,
                path,
                attributes.get("foothold.artifact.attribution", ""),
                attributes.get("foothold.artifact.source"),
            )
        )
    return found


def test_the_audit_hook_names_the_call_that_wrote(wired, home: Path):
    run_agent(write_with_a_shell=False)
    found = artifacts_by_call(wired)
    bashrc = str(home / ".bashrc")
    assert ("file", bashrc, "", "audit_hook") in found["call_rc"]
    assert [a for a in found["call_uname"] if a[0] == "file"] == []  # uname is not blamed for .bashrc
    assert [a[1] for a in found["call_uname"] if a[0] == "process"] == ["uname -s"]
    assert rows(wired, "SELECT DISTINCT SessionId FROM {db}.artifacts") == [("lg-parallel",)]


def test_a_write_no_call_can_be_named_for_is_marked_so_not_pinned(wired, home: Path):
    """A subprocess wrote: the audit hook saw which call started a shell but not what the shell wrote. The
    change is reported once, marked not attributable to one call, with both calls as candidates."""
    run_agent(write_with_a_shell=True)
    found = artifacts_by_call(wired)
    bashrc = str(home / ".bashrc")
    changes = [(call, a) for call, listed in found.items() for a in listed if a[1] == bashrc]
    assert len(changes) == 1, changes  # once, not once per overlapping call
    (call, (_, _, attribution, source)) = changes[0]
    assert source == "snapshot"
    assert (call, attribution) == ("call_uname", "ambiguous")  # uname's snapshot saw it first: marked, not pinned
    candidates = rows(
        wired,
        "SELECT SpanAttributes['foothold.artifact.candidate_calls'] FROM {db}.otel_traces "
        "WHERE SpanAttributes['foothold.artifact.path'] = {{p:String}}",
        p=bashrc,
    )
    assert candidates == [("call_rc,call_uname",)]
