"""Claude Code hooks: ``foothold-audit hook claude-code`` turns hook events into spans.

Claude Code runs the command once per event with the event's JSON on stdin (``session_id``, ``cwd``,
``transcript_path``, ``hook_event_name``, and for tool events ``tool_name``, ``tool_input``, ``tool_response``,
``tool_use_id``). Each run is a separate process, so a call's PreToolUse leaves a small state file (start time,
arguments, a watch-list snapshot) in the hook's private state directory (:mod:`.hook_state`), and its
PostToolUse (or PostToolUseFailure) emits ONE ``execute_tool {tool}`` span from the Pre's start to now, with the
snapshot's changes (Bash subprocesses included) and the files Write/Edit/NotebookEdit touched as artifact spans.
Every span of a session (artifacts included) carries the session id as ``gen_ai.conversation.id`` and shares a
trace id derived from it; ``foothold.cwd`` is the cwd.

Denied calls are recorded as denied, whoever denied them:
* Foothold (``--deny-persistence``): the Pre answers ``permissionDecision: deny`` and emits the call with
  ``error.type=foothold_denied``.
* Claude Code (a permission rule, a sensitive-file guard, a prompt nobody answered): such a call gets a Pre and
  never a Post. ``PermissionDenied`` (auto mode) names it at once; otherwise the turn's ``Stop`` (or
  ``SubagentStop``/``SessionEnd``) finds the Pre left without a Post, reads the call's ``tool_result`` in the
  session transcript Claude Code keeps, and emits the call with ``error.type=claude_code_denied`` and Claude
  Code's reason.

Configuration reaches the hook on its command line (``hook install`` writes it there): Claude Code 2.1.x strips
every ``OTEL_*`` variable from hook processes, so ``--endpoint``, ``--token-file`` and
``--capture-content/--no-capture-content`` are flags; the fingerprint key file comes through the settings'
``env`` as ``FOOTHOLD_FINGERPRINT_KEY_FILE`` (``FOOTHOLD_*`` variables do reach hooks).

Claude Code waits for the hook on every tool call, so the hook is built for a short import path: no
OpenTelemetry SDK, the spans encoded as OTLP/JSON and POSTed by the standard library, undelivered bodies
spooled and resent by the next event (:mod:`.hook_export`); the classifier loads only when it must judge (a
deny policy, or content capture off so the collector cannot judge the arguments itself).

It never gets in the agent's way: delivery waits at most ``FOOTHOLD_HOOK_TIMEOUT`` (default 0.5 s), and any
error is written to the log file (``FOOTHOLD_HOOK_LOG``, default ``hook.log`` in the state directory, opened
without following symlinks) and the hook exits 0 with no output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import hook_files, hook_state
from .hook_forwarder import STATE_DIR_ENV
from .hook_state import state_root

if TYPE_CHECKING:  # loaded only when there is something to send: a Pre that saves state sends nothing
    from . import hook_export

__all__ = ["STATE_DIR_ENV", "HookConfig", "install", "main", "run"]  # noqa: F822 - install: see __getattr__


def __getattr__(name: str) -> Any:
    """``install`` stays importable from here; it loads only when asked, off the hook's per-event import path."""
    if name == "install":
        from .claude_code_settings import install

        return install
    raise AttributeError(name)


LOG_ENV = "FOOTHOLD_HOOK_LOG"
LOG_MAX_BYTES = 1 << 20  # past this the log starts over
TIMEOUT_ENV = "FOOTHOLD_HOOK_TIMEOUT"
DENY_ENV = "FOOTHOLD_DENY_PERSISTENCE"
CONTENT_ENV = "FOOTHOLD_CAPTURE_CONTENT"
OTEL_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SERVICE_NAME = "claude-code"
SCOPE = "foothold.claude_code"
HOOK_COMMAND = "foothold-audit hook claude-code"
MAX_CONTENT_BYTES = 8192
# The hook events Claude Code 2.1 documents that say something about what a session did (checked against the
# binary's own event list). PermissionDenied fires in auto mode only. (MultiEdit, a tool, is gone from 2.1.)
EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PermissionDenied",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "Stop",
    "StopFailure",
    "SessionEnd",
)
TOOL_EVENTS = ("PreToolUse", "PermissionRequest", "PermissionDenied", "PostToolUse", "PostToolUseFailure")
_TURN_ENDS = ("Stop", "StopFailure", "SubagentStop", "SessionEnd")
_FILE_TOOLS = ("Write", "Edit", "NotebookEdit")
_PATH_KEYS = ("file_path", "notebook_path", "path")
_EVENT_KEYS = ("source", "reason", "notification_type", "permission_mode", "stop_hook_active", "agent_type", "trigger")
# Claude Code's own bookkeeping directly under ~/.claude (the watch list lists that directory one level deep for
# settings and CLAUDE.md): it rewrites these around tool calls itself; they are not the agent's doing.
HOUSEKEEPING = frozenset({".last-cleanup", "history.jsonl", "stats-cache.json", ".claude.json.lock"})

log = logging.getLogger("foothold.hook")


@dataclass(frozen=True)
class HookConfig:
    """What ``hook install`` writes on the hook's command line."""

    endpoint: str | None = None
    token_file: str | None = None
    capture_content: bool | None = None  # None: FOOTHOLD_CAPTURE_CONTENT, else the OTel variable, else on
    deny_persistence: bool = False
    deny_with_exit_code: bool = False

    def content(self) -> bool:
        if self.capture_content is not None:
            return self.capture_content
        for name in (CONTENT_ENV, OTEL_CONTENT_ENV):
            value = (os.environ.get(name) or "").strip().lower()
            if value:
                return value in ("1", "true", "yes", "on")
        return True

    def deny(self) -> bool:
        return self.deny_persistence or os.environ.get(DENY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Answer:
    """What the hook process prints and exits with."""

    stdout: str | None = None
    exit_code: int = 0
    stderr: str | None = None
    # The session is ending: Claude Code may exit next and take the network it gave its hooks along (a sandbox,
    # a namespace), so the forwarder sends what is spooled before it answers, not after.
    send_first: bool = False


def run(stdin_text: str, config: HookConfig | None = None, cwd: str | None = None, spool_only: bool = False) -> Answer:
    """Handle one hook event; never raises (errors go to the log file and the answer is empty). ``cwd`` stands in
    for this process's own when the event names none (the forwarder passes its client's). With ``spool_only``
    the spans are written to the spool and not sent: the forwarder sends them after it has answered."""
    try:
        _log_to_file()
        payload = json.loads(stdin_text)
        if not isinstance(payload, dict):
            raise ValueError("hook input is not a JSON object")
        if not payload.get("hook_event_name"):
            raise ValueError("hook input has no hook_event_name")
        return _Hook(payload, config or HookConfig(), cwd, spool_only).handle()
    except Exception:
        _log_error()
        return Answer()


def send_spooled(config: HookConfig) -> None:
    """Send what the spool holds, oldest first, within the delivery budget (the forwarder calls it after it has
    answered an event); what cannot be sent stays for the next time. Never raises."""
    from . import hook_export

    try:
        spool = hook_export.Spool(hook_state.private_dir(state_root()))
        if not spool.pending():
            return
        timeout = _timeout()
        destination = hook_export.Destination.resolve(config.endpoint, config.token_file, timeout)
        deadline = time.monotonic() + timeout
        while spool.drain(destination, deadline) >= hook_export.RESEND_PER_EVENT and time.monotonic() < deadline:
            pass  # a backlog (after an outage) goes in batches, within the same budget
    except hook_export.DeliveryError as exc:
        log.warning("collector unreachable, spans spooled for the next hook event: %s", exc)
    except (OSError, ValueError) as exc:  # e.g. the token file became unreadable: keep the spans for later
        log.error("cannot send (%s): spans spooled until it is fixed", exc)
    except Exception:
        _log_error()


def _log_path() -> Path:
    return Path(os.environ.get(LOG_ENV) or state_root() / "hook.log")


def _log_to_file() -> None:
    """Everything this process logs goes to the log file (the agent's terminal stays clean), opened without
    following a symlink; an untrustworthy state directory leaves the log unwritten, never another file."""
    root = logging.getLogger()
    try:
        path = _log_path()
        for current in root.handlers:  # the forwarder, event after event: keep the open log until it starts over
            if not isinstance(current, logging.StreamHandler) or getattr(current, "foothold_log", None) != str(path):
                continue
            if os.fstat(current.stream.fileno()).st_size <= LOG_MAX_BYTES:
                return
        if not os.environ.get(LOG_ENV):
            hook_state.private_dir(path.parent)
        stream_handler = logging.StreamHandler(hook_state.append_stream(path, LOG_MAX_BYTES))
        stream_handler.foothold_log = str(path)  # type: ignore[attr-defined]
        handler: logging.Handler = stream_handler
    except Exception:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for old in root.handlers:  # a StreamHandler's close() leaves its stream open: the forwarder must not leak it
        old.acquire()
        try:
            stream = getattr(old, "stream", None)
            if stream is not None and getattr(old, "foothold_log", None):
                stream.close()
        finally:
            old.release()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _log_error() -> None:
    try:
        log.exception("foothold-audit hook error")
    except Exception:  # nowhere left to report: stay silent, never fail the agent
        pass


def _trace_id(session_id: str) -> str:
    """Every span of one Claude Code session in one trace (the id derives from the session id)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV) or 0.5)
    except ValueError:
        return 0.5


class _Hook:
    def __init__(
        self, payload: dict[str, Any], config: HookConfig, cwd: str | None = None, spool_only: bool = False
    ) -> None:
        self.payload = payload
        self.config = config
        self.spool_only = spool_only
        self.event = str(payload.get("hook_event_name") or "")
        self.session_id = str(payload.get("session_id") or "unknown")
        self.cwd = str(payload.get("cwd") or cwd or os.getcwd())
        self.home = os.path.expanduser("~")
        self.tool_name = str(payload.get("tool_name") or "")
        tool_input = payload.get("tool_input")
        self.tool_input = tool_input if isinstance(tool_input, dict) else {}
        self.tool_use_id = str(payload.get("tool_use_id") or "")
        self.capture = config.content()
        self.spans: list[hook_export.Span] = []
        self._key: bytes | None = None

    # --- events -----------------------------------------------------------------------------------------

    def handle(self) -> Answer:
        answer = Answer()
        if self.event == "PreToolUse":
            answer = self._pre()
        elif self.event in ("PostToolUse", "PostToolUseFailure"):
            self._post(failed=self.event == "PostToolUseFailure")
        elif self.event == "PermissionDenied":
            self._denied_by_claude_code(self._load_state(self.tool_use_id), self._reason(self.payload.get("reason")))
        else:
            self._other()
        if self.event in _TURN_ENDS:
            self._close_unanswered()
        self._send()
        if self.event == "SessionEnd":
            shutil.rmtree(hook_files.session_dir(self.session_id), ignore_errors=True)
            answer.send_first = True
        return answer

    def _pre(self) -> Answer:
        findings = self._classify() if self.config.deny() else []
        if findings:
            reason = (
                f"Foothold: {findings[0].kind} ({findings[0].technique}) - {findings[0].evidence}. "
                "Writing persistence locations is blocked by policy."
            )
            self._call(time.time_ns(), findings, {}, error=("foothold_denied", reason), decision=("deny", "foothold"))
            if self.config.deny_with_exit_code:
                return Answer(exit_code=2, stderr=reason)
            decision = {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}
            return Answer(stdout=json.dumps({"hookSpecificOutput": decision}))
        if self.tool_use_id:
            self._save_state()
        return Answer()

    def _post(self, failed: bool) -> None:
        state = self._load_state(self.tool_use_id) or {}
        # With content captured the collector judges the arguments itself; without, only the hook can.
        findings = [] if self.capture else self._classify()
        error = None
        if failed or _is_error(self.payload.get("tool_response")):
            message = self._reason(self.payload.get("error")) if self.payload.get("error") else None
            error = ("tool_error", message)
        self._call(int(state.get("start_ns") or time.time_ns()), findings, state, error=error)

    def _denied_by_claude_code(self, state: dict[str, Any] | None, reason: str | None) -> None:
        state = state or {}
        self._call(
            int(state.get("start_ns") or time.time_ns()),
            [] if self.capture else self._classify(),
            state,
            error=("claude_code_denied", reason or "denied by Claude Code"),
            decision=("deny", "claude_code"),
        )

    def _close_unanswered(self) -> None:
        """Calls with a Pre and no Post when the turn ends never ran: Claude Code refused them (a permission
        rule, a guard, a prompt nobody answered). Its transcript holds the refusal it sent the model."""
        directory = hook_files.session_dir(self.session_id)
        try:
            pending = [p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
        except OSError:
            return
        states = []
        for path in pending:
            state = hook_files.read_state(path)
            if state and state.get("tool_use_id"):
                states.append(state)
        if not states:
            return
        results = _transcript_results(self.payload.get("transcript_path"), {s["tool_use_id"] for s in states})
        for state in states:
            use_id = state["tool_use_id"]
            if use_id not in results and self.event not in ("Stop", "SessionEnd", "StopFailure"):
                continue  # a subagent's turn ended: the call may belong to the main agent, still running
            call = _Hook({**self.payload, **state.get("payload", {})}, self.config, self.cwd, self.spool_only)
            call.spans = self.spans  # sent with this event's
            call._key = self._key
            text = results.get(use_id)
            call._denied_by_claude_code(state, call._reason(text) if text else "no result: denied or interrupted")
            hook_files.state_file(self.session_id, use_id).unlink(missing_ok=True)

    def _other(self) -> None:
        attributes = self._session_attributes() | {"claude_code.hook_event_name": self.event}
        for key in _EVENT_KEYS:
            value = self.payload.get(key)
            if isinstance(value, (str, bool, int)):
                attributes[f"claude_code.{key}"] = value
        if self.tool_name:
            attributes["gen_ai.tool.name"] = self.tool_name
        if self.tool_use_id:
            attributes["gen_ai.tool.call.id"] = self.tool_use_id
        for key in ("prompt", "message"):
            value = self.payload.get(key)
            if isinstance(value, str) and self.capture:
                attributes[f"claude_code.{key}"] = self._render(value)
        now = time.time_ns()
        self.spans.append(self._span(f"claude_code {self.event or 'event'}", attributes, now, now))

    # --- state ------------------------------------------------------------------------------------------

    def _save_state(self) -> None:
        from foothold.instrumentation.artifacts import hash_file

        watcher = hook_files.watcher(self.home)
        seeded = hook_files.load_known()
        watcher.seed(seeded)
        snapshot = watcher.before(self.cwd)
        known = watcher.known()
        if known != seeded:
            hook_files.save_known(known)
        files = {}
        for path in self._file_paths():
            files[path] = {"existed": os.path.lexists(path), "sha256": hash_file(path, hook_files.HASH_LIMIT)[0]}
        state = {
            "start_ns": time.time_ns(),
            "tool_use_id": self.tool_use_id,
            "payload": {"tool_name": self.tool_name, "tool_input": self.tool_input, "tool_use_id": self.tool_use_id},
            "roots": snapshot.roots,
            "states": snapshot.states,
            "known": {p: h for p, (s, h) in known.items() if p in snapshot.states},
            "files": files,
        }
        state_path = hook_files.state_file(self.session_id, self.tool_use_id)
        hook_state.private_dir(state_path.parent)
        hook_state.write_atomic(state_path, hook_files.dumps(state))

    def _load_state(self, tool_use_id: str) -> dict[str, Any] | None:
        if not tool_use_id:
            return None
        path = hook_files.state_file(self.session_id, tool_use_id)
        state = hook_files.read_state(path)
        path.unlink(missing_ok=True)
        return state

    # --- spans ------------------------------------------------------------------------------------------

    def _session_attributes(self) -> dict[str, Any]:
        """What every span of the session carries, artifacts included: the collector keys sessions on it."""
        attributes: dict[str, Any] = {
            "gen_ai.conversation.id": self.session_id,
            "foothold.cwd": self.cwd,
            "foothold.home": self.home,
        }
        agent_id = self.payload.get("agent_id")  # a subagent's calls name it
        if isinstance(agent_id, str) and agent_id:
            attributes["gen_ai.agent.id"] = agent_id
        agent_type = self.payload.get("agent_type")
        if isinstance(agent_type, str) and agent_type:
            attributes["gen_ai.agent.name"] = agent_type
        return attributes

    def _span(self, name: str, attributes: dict[str, Any], start: int, end: int, **kw: Any) -> hook_export.Span:
        from . import hook_export

        return hook_export.Span(name, _trace_id(self.session_id), start, end, attributes, **kw)

    def _call(
        self,
        start_ns: int,
        findings: list[Any],
        state: dict[str, Any],
        *,
        error: tuple[str, str | None] | None = None,
        decision: tuple[str, str] | None = None,
    ) -> None:
        attributes = self._session_attributes() | {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": self.tool_name,
            "gen_ai.tool.type": "extension" if self.tool_name.startswith("mcp__") else "function",
            "claude_code.hook_event_name": self.event,
        }
        attributes |= _verdict(findings)
        if self.tool_use_id:
            attributes["gen_ai.tool.call.id"] = self.tool_use_id
        if isinstance(self.payload.get("permission_mode"), str):
            attributes["claude_code.permission_mode"] = self.payload["permission_mode"]
        if decision is not None:
            attributes["claude_code.decision"], attributes["claude_code.decision_source"] = decision
            # and in Foothold's words (semconv TOOL_DECISION*), which the tool_calls Outcome column reads
            attributes["foothold.tool.decision"] = "reject" if decision[0] == "deny" else "accept"
            attributes["foothold.tool.decision.source"] = decision[1]
        if self.capture:
            attributes["gen_ai.tool.call.arguments"] = self._render(self.tool_input)
            response = self.payload.get("tool_response")
            if response is not None:
                attributes["gen_ai.tool.call.result"] = self._render(response)
        if error is not None:
            attributes["error.type"] = error[0]
        end = time.time_ns()
        call = self._span(
            f"execute_tool {self.tool_name}" if self.tool_name else "execute_tool",
            attributes,
            start_ns,
            end,
            error=(error[1] or "") if error is not None else None,
        )
        self.spans.append(call)
        context = self._session_attributes()
        for artifact in _merge(self._snapshot_artifacts(state), self._file_artifacts(state)):
            self.spans.append(
                self._span(
                    "artifact " + artifact.kind,
                    artifact.attributes() | context,
                    artifact.time_ns or end,
                    max(end, artifact.time_ns or end),
                    parent_span_id=call.span_id,
                )
            )

    def _send(self) -> None:
        if not self.spans:
            return
        from . import hook_export

        body = hook_export.encode(
            self.spans, {"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME}, SCOPE
        )
        timeout = _timeout()
        spool = hook_export.Spool(hook_state.private_dir(state_root()))
        if self.spool_only:
            spool.put(body)
            return
        try:
            destination = hook_export.Destination.resolve(self.config.endpoint, self.config.token_file, timeout)
        except (OSError, ValueError) as exc:  # e.g. the token file became unreadable: keep the spans for later
            spool.put(body)
            log.error("cannot send (%s): spans spooled until it is fixed", exc)
            return
        hook_export.deliver(body, destination, spool, timeout)

    # --- content and verdicts ---------------------------------------------------------------------------

    def key(self) -> bytes:
        if self._key is None:
            from foothold.instrumentation.keys import key

            self._key = key()
        return self._key

    def _render(self, value: Any) -> str:
        from foothold.instrumentation.content import render

        return render(value, self.key(), MAX_CONTENT_BYTES)

    def _reason(self, value: Any) -> str | None:
        """Claude Code's words for an error or a refusal: they quote the command, so redacted, and only when
        content is captured."""
        if value is None:
            return None
        return self._render(value)[:512] if self.capture else "(content capture off)"

    def _classify(self) -> list[Any]:
        try:
            from foothold.detections.classify import classify_tool_call

            return classify_tool_call(self.tool_name, self.tool_input, cwd=self.cwd, home=self.home)
        except Exception:  # the classifier never raises, but an import problem must not reach the agent
            log.exception("classifier unavailable")
            return []

    # --- artifacts --------------------------------------------------------------------------------------

    def _file_paths(self) -> list[str]:
        if self.tool_name not in _FILE_TOOLS:
            return []
        for key in _PATH_KEYS:
            value = self.tool_input.get(key)
            if isinstance(value, str) and value:
                return [os.path.normpath(os.path.join(self.cwd, os.path.expanduser(value)))]
        return []

    def _file_artifacts(self, state: dict[str, Any]) -> list[Any]:
        """What a Write/Edit call says it changed, hashed now (source ``hook``)."""
        from foothold.instrumentation.artifacts import Artifact, hash_file

        found = []
        before = state.get("files") or {}
        for path in self._file_paths():
            if not os.path.lexists(path):
                continue
            prior = before.get(path) or {}
            sha256, size = hash_file(path, hook_files.HASH_LIMIT)
            if prior and prior.get("sha256") == sha256 and prior.get("existed"):
                continue  # unchanged (a failed, refused or no-op edit)
            action = "modify" if prior.get("existed", True) else "create"
            found.append(Artifact("file", action, path, "hook", True, sha256, prior.get("sha256"), size))
        return found

    def _snapshot_artifacts(self, state: dict[str, Any]) -> list[Any]:
        """Watch-list changes between the Pre and now (made by the tool or anything it started), but not
        Claude Code's own bookkeeping."""
        from foothold.instrumentation.watch import Snapshot

        if not state.get("roots"):
            return []
        watcher = hook_files.watcher(self.home)
        states = {p: tuple(s) for p, s in (state.get("states") or {}).items()}
        known = state.get("known") or {}
        watcher.seed({p: (states[p], sha) for p, sha in known.items() if p in states})
        roots = tuple((str(r), int(d)) for r, d in state["roots"])
        found, _changed = watcher.after(Snapshot(roots, states))
        own = os.path.join(self.home, ".claude")
        return [a for a in found if not (os.path.dirname(a.path) == own and os.path.basename(a.path) in HOUSEKEEPING)]


def _merge(snapshot: list[Any], declared: list[Any]) -> list[Any]:
    """One artifact per path: the tool's own word (``hook``) wins over the snapshot's for the same file."""
    paths = {a.path for a in declared}
    return declared + [a for a in snapshot if a.path not in paths]


def _verdict(findings: list[Any]) -> dict[str, str]:
    """The classifier's first finding as ``foothold.persistence.*`` (the collector re-judges on ingest)."""
    if not findings:
        return {}
    first = findings[0]
    return {
        "foothold.persistence.kind": first.kind,
        "foothold.persistence.technique": first.technique,
        "foothold.persistence.target": first.target,
        "foothold.persistence.evidence": "; ".join(f.evidence for f in findings[:3]),
    }


def _transcript_results(transcript: Any, wanted: set[str]) -> dict[str, Any]:
    """The ``tool_result`` content Claude Code recorded for each wanted call id in the session transcript
    (JSON lines); only results marked as errors (a refusal is one)."""
    found: dict[str, Any] = {}
    if not isinstance(transcript, str) or not transcript:
        return found
    try:
        with open(transcript, encoding="utf-8") as handle:
            for line in handle:
                if not any(use_id in line for use_id in wanted):
                    continue
                try:
                    content = (json.loads(line).get("message") or {}).get("content")
                except ValueError:
                    continue
                for block in content if isinstance(content, list) else ():
                    if (
                        isinstance(block, dict)
                        and block.get("type") == "tool_result"
                        and block.get("tool_use_id") in wanted
                        and block.get("is_error")
                    ):
                        found[block["tool_use_id"]] = block.get("content")
    except OSError:
        pass
    return found


def _is_error(response: Any) -> bool:
    return isinstance(response, dict) and (response.get("is_error") is True or response.get("isError") is True)


def main(argv: list[str] | None = None, stdin_text: str | None = None) -> int:
    """``foothold-audit hook claude-code [flags]`` in this process: the console script's client calls it when no
    forwarder answered (:mod:`.hook_forwarder`), the typer command forwards its arguments to it, and so does
    ``python -m foothold.instrumentation.integrations.claude_code``."""
    config = config_from_argv(argv)
    answer = run(sys.stdin.read() if stdin_text is None else stdin_text, config)
    if answer.stdout:
        sys.stdout.write(answer.stdout + "\n")
        sys.stdout.flush()
    if answer.stderr:
        sys.stderr.write(answer.stderr + "\n")
    return answer.exit_code


def config_from_argv(argv: list[str] | None) -> HookConfig:
    """The one definition of the hook's flags (argparse exits with usage on bad ones)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=HOOK_COMMAND,
        allow_abbrev=False,
        description=(
            "Read one Claude Code hook event (JSON on stdin) and record it. Configure it with `foothold-audit hook "
            "install --claude-code`. Never fails the agent: errors go to a log file, exit code 0."
        ),
    )
    parser.add_argument(
        "--deny-persistence",
        action="store_true",
        help=f"deny a PreToolUse that writes a persistence location (also {DENY_ENV}=1)",
    )
    parser.add_argument(
        "--deny-exit-code", action="store_true", help="deny by exit code 2 and stderr instead of the JSON answer"
    )
    parser.add_argument("--endpoint", help="collector OTLP/HTTP endpoint (base URL or .../v1/traces)")
    parser.add_argument("--token-file", help="file holding the collector's bearer token (the path, never the token)")
    content = parser.add_mutually_exclusive_group()
    content.add_argument(
        "--capture-content", dest="capture_content", action="store_true", default=None, help="record arguments/results"
    )
    content.add_argument(
        "--no-capture-content", dest="capture_content", action="store_false", help="record no arguments or results"
    )
    args = parser.parse_args(argv)
    return HookConfig(
        endpoint=args.endpoint,
        token_file=args.token_file,
        capture_content=args.capture_content,
        deny_persistence=args.deny_persistence,
        deny_with_exit_code=args.deny_exit_code,
    )


if __name__ == "__main__":
    sys.exit(main())
