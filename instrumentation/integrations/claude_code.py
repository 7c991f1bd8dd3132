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

from . import hook_state
from .hook_state import STATE_DIR_ENV, state_root

if TYPE_CHECKING:  # loaded only when there is something to send: a Pre that saves state sends nothing
    from . import hook_export

__all__ = ["STATE_DIR_ENV", "HookConfig", "install", "main", "run"]

LOG_ENV = "FOOTHOLD_HOOK_LOG"
TIMEOUT_ENV = "FOOTHOLD_HOOK_TIMEOUT"
DENY_ENV = "FOOTHOLD_DENY_PERSISTENCE"
CONTENT_ENV = "FOOTHOLD_CAPTURE_CONTENT"
OTEL_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SERVICE_NAME = "claude-code"
SCOPE = "foothold.claude_code"
KNOWN_FILE = "known-states.json"
HOOK_COMMAND = "foothold-audit hook claude-code"
MAX_CONTENT_BYTES = 8192
HASH_LIMIT = 1 << 20
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


def run(stdin_text: str, config: HookConfig | None = None) -> Answer:
    """Handle one hook event; never raises (errors go to the log file and the answer is empty)."""
    try:
        _log_to_file()
        payload = json.loads(stdin_text)
        if not isinstance(payload, dict):
            raise ValueError("hook input is not a JSON object")
        if not payload.get("hook_event_name"):
            raise ValueError("hook input has no hook_event_name")
        return _Hook(payload, config or HookConfig()).handle()
    except Exception:
        _log_error()
        return Answer()


def _session_dir(session_id: str) -> Path:
    return state_root() / "sessions" / hashlib.sha256(session_id.encode()).hexdigest()[:32]


def _state_file(session_id: str, tool_use_id: str) -> Path:
    return _session_dir(session_id) / (hashlib.sha256(tool_use_id.encode()).hexdigest()[:32] + ".json")


def _log_path() -> Path:
    return Path(os.environ.get(LOG_ENV) or state_root() / "hook.log")


def _log_to_file() -> None:
    """Everything this process logs goes to the log file (the agent's terminal stays clean), opened without
    following a symlink; an untrustworthy state directory leaves the log unwritten, never another file."""
    try:
        path = _log_path()
        if not os.environ.get(LOG_ENV):
            hook_state.private_dir(path.parent)
        handler: logging.Handler = logging.StreamHandler(hook_state.append_stream(path))
    except Exception:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
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
    def __init__(self, payload: dict[str, Any], config: HookConfig) -> None:
        self.payload = payload
        self.config = config
        self.event = str(payload.get("hook_event_name") or "")
        self.session_id = str(payload.get("session_id") or "unknown")
        self.cwd = str(payload.get("cwd") or os.getcwd())
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
            shutil.rmtree(_session_dir(self.session_id), ignore_errors=True)
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
        directory = _session_dir(self.session_id)
        try:
            pending = [p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
        except OSError:
            return
        states = []
        for path in pending:
            state = _read_state(path)
            if state and state.get("tool_use_id"):
                states.append(state)
        if not states:
            return
        results = _transcript_results(self.payload.get("transcript_path"), {s["tool_use_id"] for s in states})
        for state in states:
            use_id = state["tool_use_id"]
            if use_id not in results and self.event not in ("Stop", "SessionEnd", "StopFailure"):
                continue  # a subagent's turn ended: the call may belong to the main agent, still running
            call = _Hook({**self.payload, **state.get("payload", {})}, self.config)  # closed by this event
            call.spans = self.spans
            call._key = self._key
            text = results.get(use_id)
            call._denied_by_claude_code(state, call._reason(text) if text else "no result: denied or interrupted")
            _state_file(self.session_id, use_id).unlink(missing_ok=True)

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

        watcher = _watcher(self.home)
        seeded = _load_known()
        watcher.seed(seeded)
        snapshot = watcher.before(self.cwd)
        known = watcher.known()
        if known != seeded:
            _save_known(known)
        files = {}
        for path in self._file_paths():
            files[path] = {"existed": os.path.lexists(path), "sha256": hash_file(path, HASH_LIMIT)[0]}
        state = {
            "start_ns": time.time_ns(),
            "tool_use_id": self.tool_use_id,
            "payload": {"tool_name": self.tool_name, "tool_input": self.tool_input, "tool_use_id": self.tool_use_id},
            "roots": snapshot.roots,
            "states": snapshot.states,
            "known": {p: h for p, (s, h) in known.items() if p in snapshot.states},
            "files": files,
        }
        path = _state_file(self.session_id, self.tool_use_id)
        hook_state.private_dir(path.parent)
        hook_state.write_atomic(path, json.dumps(state).encode())

    def _load_state(self, tool_use_id: str) -> dict[str, Any] | None:
        if not tool_use_id:
            return None
        path = _state_file(self.session_id, tool_use_id)
        state = _read_state(path)
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
            sha256, size = hash_file(path, HASH_LIMIT)
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
        watcher = _watcher(self.home)
        states = {p: tuple(s) for p, s in (state.get("states") or {}).items()}
        known = state.get("known") or {}
        watcher.seed({p: (states[p], sha) for p, sha in known.items() if p in states})  # type: ignore[misc]
        roots = tuple((str(r), int(d)) for r, d in state["roots"])
        found, _changed = watcher.after(Snapshot(roots, states))  # type: ignore[arg-type]
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


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(hook_state.read_text(path))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


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


def _watcher(home: str) -> Any:
    """A watcher that scans directly: one hook process takes one snapshot, an inotify watch would not pay."""
    from foothold.instrumentation.watch import Watcher, WatchList

    return Watcher(WatchList(home=home), HASH_LIMIT, inotify=False)


def _lstat(path: str) -> tuple[tuple[int, int, int, int], int] | None:
    """A file's watch state (mtime, size, inode, mode) and its ctime."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode), st.st_ctime_ns


def _load_known() -> dict[str, Any]:
    """The hashes earlier hook processes took, for the files whose lstat has not changed since.

    Stat-first trade-off: a file rewritten in place to the same size with its mtime put back keeps its watch
    state, so the ctime is part of the key too. User space cannot set a ctime; what remains is a rewrite in the
    same kernel clock tick (a few ms) as the file's previous change, or a clock set back by root. The state
    directory is the user's (0700, ownership checked), as trusted as the per-call state files next to it."""
    try:
        entries = json.loads(hook_state.read_text(state_root() / KNOWN_FILE))
        known = {}
        for path, (state, ctime, sha256) in entries.items():
            if _lstat(path) == (tuple(state), ctime):
                known[path] = (tuple(state), sha256)
        return known
    except (OSError, ValueError, TypeError):  # absent or damaged: hash everything once, as a first run would
        return {}


def _save_known(known: dict[str, Any]) -> None:
    entries = {}
    for path, (state, sha256) in known.items():
        now = _lstat(path)
        if now is not None and now[0] == state:  # unchanged since it was hashed: its ctime vouches for the hash
            entries[path] = [state, now[1], sha256]
    root = hook_state.private_dir(state_root())
    hook_state.write_atomic(root / KNOWN_FILE, json.dumps(entries).encode())  # parallel hooks: last one wins


def _is_error(response: Any) -> bool:
    return isinstance(response, dict) and (response.get("is_error") is True or response.get("isError") is True)


# --- settings.json ------------------------------------------------------------------------------------------


def default_settings_path() -> Path:
    return Path(os.path.expanduser("~")) / ".claude" / "settings.json"


def default_command() -> list[str]:
    """The hook command as an absolute path: Claude Code runs hooks with its own PATH, where a venv's
    ``foothold-audit`` usually is not (every hook would exit 127, silently). The console script next to this
    interpreter, else the one on PATH, else this interpreter with ``-m foothold``."""
    beside = Path(sys.executable).parent / "foothold-audit"
    if beside.is_file():
        return [str(beside.absolute()), "hook", "claude-code"]
    found = shutil.which("foothold-audit")
    if found:
        return [str(Path(found).absolute()), "hook", "claude-code"]
    return [str(Path(sys.executable).absolute()), "-m", "foothold", "hook", "claude-code"]


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


def hook_command_line(command: list[str], config: HookConfig) -> str:
    """The command line ``install`` writes: the executable, then every setting as a flag (``OTEL_*`` never
    reaches the hook; the command line does)."""
    words = list(command)
    if config.endpoint:
        words += ["--endpoint", config.endpoint]
    if config.token_file:
        words += ["--token-file", config.token_file]
    if config.capture_content is not None:
        words.append("--capture-content" if config.capture_content else "--no-capture-content")
    if config.deny_persistence:
        words.append("--deny-persistence")
    return " ".join(_quote(w) for w in words)


def _runnable_warning(command: list[str]) -> str | None:
    executable = command[0]
    if not os.path.isabs(executable):
        resolved = shutil.which(executable)
        if resolved is None:
            return f"{executable!r} is not on this PATH: Claude Code would fail to start the hook (exit 127)"
        return f"{executable!r} is a bare name: Claude Code finds it only if its PATH holds {os.path.dirname(resolved)}"
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        return f"{executable} is not an executable file: Claude Code will fail to start the hook"
    return None


def install(
    settings_path: Path | None = None,
    *,
    deny_persistence: bool = False,
    command: str | None = None,
    timeout_seconds: int = 10,
    fingerprint_key_file: Path | None = None,
    endpoint: str | None = None,
    token_file: Path | None = None,
    capture_content: bool | None = None,
) -> tuple[Path, list[str]]:
    """Add (or refresh) Foothold's hook entries in a Claude Code settings.json, keeping every other hook and
    setting; running it twice leaves one entry per event. The command is written with an absolute executable
    and the settings as flags; ``fingerprint_key_file`` goes into the settings' ``env`` (applied to the session
    and its hooks) as ``FOOTHOLD_FINGERPRINT_KEY_FILE``: the path, never the key. Returns the settings file and
    warnings (no fingerprint key; an executable Claude Code cannot run)."""
    import shlex

    from foothold.instrumentation.keys import FINGERPRINT_KEY_ENV, FINGERPRINT_KEY_FILE_ENV, read_key_file

    path = settings_path or default_settings_path()
    try:
        settings = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix it before installing hooks") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ValueError(f"{path}: 'hooks' is not an object")
    env = settings.get("env", {})
    if not isinstance(env, dict):
        raise ValueError(f"{path}: 'env' is not an object")
    if fingerprint_key_file is not None:
        key_file = str(fingerprint_key_file.expanduser().resolve())
        read_key_file(key_file)  # unreadable or empty: fail now, not in every hook
        env = settings["env"] = {**env, FINGERPRINT_KEY_FILE_ENV: key_file}
    from . import hook_export

    token = None
    if token_file is not None:
        token = str(token_file.expanduser().resolve())
        hook_export.Destination.resolve(endpoint, token, 1.0)  # unreadable or empty: fail now
    words = shlex.split(command) if command else default_command()
    config = HookConfig(endpoint, token, capture_content, deny_persistence)
    full = hook_command_line(words, config)
    for event in EVENTS:
        groups = [g for g in hooks.get(event, []) if isinstance(g, dict)]
        for group in groups:  # drop earlier Foothold entries (any flags, any path), keep everyone else's
            group["hooks"] = [h for h in group.get("hooks", []) if not _is_ours(h)]
        groups = [g for g in groups if g.get("hooks")]
        entry: dict[str, Any] = {"hooks": [{"type": "command", "command": full, "timeout": timeout_seconds}]}
        if event in TOOL_EVENTS:
            entry = {"matcher": "*", **entry}
        groups.append(entry)
        hooks[event] = groups
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".foothold.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    warnings = []
    if runnable := _runnable_warning(words):
        warnings.append(runnable)
    keyed = any(name in env or os.environ.get(name) for name in (FINGERPRINT_KEY_FILE_ENV, FINGERPRINT_KEY_ENV))
    if not keyed:
        warnings.append(
            f"no fingerprint key: each hook event is a new process with its own random key, so fingerprints of the "
            f"same secret will not correlate across tool calls or with the collector (credential reuse goes "
            f"unnoticed). Put the deployment key (the collector's fingerprint_key) in a file only you can read and "
            f"run again with --fingerprint-key-file PATH (sets {FINGERPRINT_KEY_FILE_ENV} in {path}'s env)."
        )
    return path, warnings


def _is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and isinstance(hook.get("command"), str) and "hook claude-code" in hook["command"]


def main(argv: list[str] | None = None) -> int:
    """``foothold-audit hook claude-code [flags]``: the console script calls it before loading the CLI framework
    (one process per hook event), the typer command forwards its arguments to it, and so does ``python -m
    foothold.instrumentation.integrations.claude_code``. The one definition of the hook's flags."""
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
    config = HookConfig(
        endpoint=args.endpoint,
        token_file=args.token_file,
        capture_content=args.capture_content,
        deny_persistence=args.deny_persistence,
        deny_with_exit_code=args.deny_exit_code,
    )
    answer = run(sys.stdin.read(), config)
    if answer.stdout:
        sys.stdout.write(answer.stdout + "\n")
        sys.stdout.flush()
    if answer.stderr:
        sys.stderr.write(answer.stderr + "\n")
    return answer.exit_code


if __name__ == "__main__":
    sys.exit(main())
