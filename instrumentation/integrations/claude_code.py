"""Claude Code hooks: ``foothold-audit hook claude-code`` turns hook events into spans.

Claude Code runs the command once per event with the event's JSON on stdin (``session_id``, ``cwd``,
``hook_event_name``, and for tool events ``tool_name``, ``tool_input``, ``tool_response``, ``tool_use_id``).
Each run is a separate process, so a call's PreToolUse leaves a small state file (start time, arguments, a
watch-list snapshot) under a per-session state directory, and its PostToolUse (or PostToolUseFailure) emits
ONE ``execute_tool {tool}`` span from the Pre's start to now, with the snapshot's changes (Bash subprocesses
included) and the files Write/Edit/MultiEdit touched as artifact spans. Every span of a session shares a
trace id derived from the session id; ``gen_ai.conversation.id`` is the session id, ``foothold.cwd`` the cwd.
The watched files' hashes persist across processes (``known-states.json`` in the state directory, keyed by
lstat with ctime), so a Pre hashes only what changed since the last one.

Fingerprints correlate across processes only with a deployment key: ``FOOTHOLD_FINGERPRINT_KEY_FILE`` (which
``hook install --fingerprint-key-file`` puts in the settings' ``env``) or ``FOOTHOLD_FINGERPRINT_KEY``.

The classifier judges Bash commands and write-tool paths at once; the verdict goes on the span as
``foothold.persistence.*``, and with ``--deny-persistence`` (or ``FOOTHOLD_DENY_PERSISTENCE=1``) a matching
PreToolUse is denied through the documented JSON answer (``hookSpecificOutput.permissionDecision``).

It never gets in the agent's way: export waits at most ``FOOTHOLD_HOOK_TIMEOUT`` (default 0.5 s, whatever the
``OTEL_EXPORTER_OTLP_*`` timeouts say), and any error is written to the log file (``FOOTHOLD_HOOK_LOG``,
default ``<state dir>/hook.log``) and the hook exits 0 with no output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "FOOTHOLD_HOOK_STATE_DIR"
LOG_ENV = "FOOTHOLD_HOOK_LOG"
TIMEOUT_ENV = "FOOTHOLD_HOOK_TIMEOUT"
DENY_ENV = "FOOTHOLD_DENY_PERSISTENCE"
SERVICE_NAME = "claude-code"
KNOWN_FILE = "known-states.json"
HOOK_COMMAND = "foothold-audit hook claude-code"
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "Stop",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
)
_FILE_TOOLS = {"Write": "write", "Edit": "edit", "MultiEdit": "edit", "NotebookEdit": "edit"}
_PATH_KEYS = ("file_path", "notebook_path", "path")

log = logging.getLogger("foothold.hook")


@dataclass
class Answer:
    """What the hook process prints and exits with."""

    stdout: str | None = None
    exit_code: int = 0
    stderr: str | None = None


def state_root() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"foothold-claude-code-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _session_dir(session_id: str) -> Path:
    return state_root() / hashlib.sha256(session_id.encode()).hexdigest()[:32]


def _state_file(session_id: str, tool_use_id: str) -> Path:
    return _session_dir(session_id) / (hashlib.sha256(tool_use_id.encode()).hexdigest()[:32] + ".json")


def run(
    stdin_text: str, *, deny_persistence: bool = False, endpoint: str | None = None, deny_with_exit_code: bool = False
) -> Answer:
    """Handle one hook event; never raises (errors go to the log file and the answer is empty)."""
    try:
        _log_to_file()
        payload = json.loads(stdin_text)
        if not isinstance(payload, dict):
            raise ValueError("hook input is not a JSON object")
        if not payload.get("hook_event_name"):
            raise ValueError("hook input has no hook_event_name")
        deny = deny_persistence or os.environ.get(DENY_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        return _Hook(payload, endpoint).handle(deny, deny_with_exit_code)
    except Exception:
        _log_error()
        return Answer()


def _log_path() -> Path:
    return Path(os.environ.get(LOG_ENV) or state_root() / "hook.log")


def _log_to_file() -> None:
    """Everything this process logs (OpenTelemetry's export warnings too) goes to the log file: the agent's
    terminal stays clean."""
    try:
        path = _log_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8", delay=True)
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


def _session_ids(session_id: str) -> Any:
    """Every span of one Claude Code session in one trace (the id derives from the session id)."""
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    trace_id = int(hashlib.sha256(session_id.encode()).hexdigest()[:32], 16) or 1

    class SessionIds(IdGenerator):
        def generate_trace_id(self) -> int:
            return trace_id

        def generate_span_id(self) -> int:
            return random.getrandbits(64) or 1

        def is_trace_id_random(self) -> bool:
            return False

    return SessionIds()


class _Hook:
    def __init__(self, payload: dict[str, Any], endpoint: str | None) -> None:
        self.payload = payload
        self.endpoint = endpoint
        self.event = str(payload.get("hook_event_name") or "")
        self.session_id = str(payload.get("session_id") or "unknown")
        self.cwd = str(payload.get("cwd") or os.getcwd())
        self.home = os.path.expanduser("~")
        self.tool_name = str(payload.get("tool_name") or "")
        tool_input = payload.get("tool_input")
        self.tool_input = tool_input if isinstance(tool_input, dict) else {}
        self.tool_use_id = str(payload.get("tool_use_id") or "")
        self._timeout = float(os.environ.get(TIMEOUT_ENV) or 0.5)
        self._setup: Any = None

    # --- events -----------------------------------------------------------------------------------------

    def handle(self, deny: bool, deny_with_exit_code: bool) -> Answer:
        if self.event == "PreToolUse":
            return self._pre(deny, deny_with_exit_code)
        if self.event in ("PostToolUse", "PostToolUseFailure"):
            self._post(failed=self.event == "PostToolUseFailure")
        else:
            self._other()
        if self.event == "SessionEnd":
            shutil.rmtree(_session_dir(self.session_id), ignore_errors=True)
        return Answer()

    def _pre(self, deny: bool, deny_with_exit_code: bool) -> Answer:
        from ._core import classify

        # The verdict goes on the Post's span: without a deny policy the Pre does not load the classifier.
        findings = classify(self.tool_name, self.tool_input, self.cwd, self.home) if deny else []
        if findings:
            reason = (
                f"Foothold: {findings[0].kind} ({findings[0].technique}) - {findings[0].evidence}. "
                "Writing persistence locations is blocked by policy."
            )
            self._emit_call(time.time_ns(), findings, denied=reason)
            if deny_with_exit_code:
                return Answer(exit_code=2, stderr=reason)
            decision = {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}
            return Answer(stdout=json.dumps({"hookSpecificOutput": decision}))
        if self.tool_use_id:
            self._save_state()
        return Answer()

    def _save_state(self) -> None:
        watcher = _watcher(self.home)
        seeded = _load_known()
        watcher.seed(seeded)
        snapshot = watcher.before(self.cwd)
        known = watcher.known()
        if known != seeded:
            _save_known(known)
        files = {}
        for path in self._file_paths():
            from foothold.instrumentation.artifacts import hash_file

            files[path] = {"existed": os.path.lexists(path), "sha256": hash_file(path, 1 << 20)[0]}
        state = {
            "start_ns": time.time_ns(),
            "tool_name": self.tool_name,
            "roots": snapshot.roots,
            "states": snapshot.states,
            "known": {p: h for p, (s, h) in known.items() if p in snapshot.states},
            "files": files,
        }
        path = _state_file(self.session_id, self.tool_use_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, path)

    def _load_state(self) -> dict[str, Any] | None:
        if not self.tool_use_id:
            return None
        path = _state_file(self.session_id, self.tool_use_id)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        path.unlink(missing_ok=True)
        return state if isinstance(state, dict) else None

    def _post(self, failed: bool) -> None:
        from ._core import classify

        state = self._load_state() or {}
        findings = classify(self.tool_name, self.tool_input, self.cwd, self.home)
        start = int(state.get("start_ns") or time.time_ns())
        self._emit_call(start, findings, state=state, failed=failed)

    def _other(self) -> None:
        from foothold import semconv

        tracer, rt = self._tracer()
        attributes: dict[str, Any] = {
            semconv.GEN_AI_CONVERSATION_ID: self.session_id,
            semconv.CWD: self.cwd,
            semconv.HOME: self.home,
            "claude_code.hook_event_name": self.event,
        }
        for key in ("source", "reason", "notification_type", "permission_mode", "stop_hook_active", "agent_type"):
            value = self.payload.get(key)
            if isinstance(value, (str, bool, int)):
                attributes[f"claude_code.{key}"] = value
        if self.tool_name:
            attributes[semconv.GEN_AI_TOOL_NAME] = self.tool_name
        for key in ("prompt", "message"):
            value = self.payload.get(key)
            if isinstance(value, str) and rt.capture_content:
                from foothold.instrumentation.tools import render_content

                attributes[f"claude_code.{key}"] = render_content(value, rt)
        span = tracer.start_span(f"claude_code {self.event or 'event'}", attributes=attributes)
        span.end()
        self._flush()

    # --- spans ------------------------------------------------------------------------------------------

    def _tracer(self) -> tuple[Any, Any]:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        from foothold.instrumentation import provider as fh_provider
        from foothold.instrumentation import runtime

        if self._setup is None:
            timeout = self._timeout
            resource = Resource.create({"service.name": SERVICE_NAME} if "OTEL_SERVICE_NAME" not in os.environ else {})
            tracer_provider = TracerProvider(resource=resource, id_generator=_session_ids(self.session_id))
            capture = runtime.env_flag(runtime.CAPTURE_CONTENT_ENV, default=True)
            exporter = fh_provider._otlp_exporter(self.endpoint, None, timeout)
            self._setup = fh_provider.setup(
                tracer_provider=tracer_provider,
                exporter=exporter,
                capture_content=capture,
                watch=False,
                home=self.home,
                export_timeout_seconds=timeout,
            )
            self._provider = tracer_provider
        return self._provider.get_tracer("foothold.claude_code"), runtime.current

    def _flush(self) -> None:
        """Export, waiting at most the hook timeout: the exporter's own timeout may be longer
        (``OTEL_EXPORTER_OTLP_TIMEOUT``) and does not cover every wait (a name lookup)."""
        if self._setup is None:
            return
        export = threading.Thread(target=self._setup.shutdown, daemon=True)
        export.start()
        export.join(self._timeout)
        if export.is_alive():
            log.warning("span export did not finish within %s s (%s): spans dropped", self._timeout, TIMEOUT_ENV)

    def _emit_call(
        self,
        start_ns: int,
        findings: list[Any],
        *,
        state: dict[str, Any] | None = None,
        failed: bool = False,
        denied: str | None = None,
    ) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from foothold import semconv
        from foothold.instrumentation import artifacts
        from foothold.instrumentation.tools import render_content

        from ._core import verdict_attributes

        tracer, rt = self._tracer()
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: self.tool_name,
            semconv.GEN_AI_TOOL_TYPE: "extension" if self.tool_name.startswith("mcp__") else "function",
            semconv.GEN_AI_CONVERSATION_ID: self.session_id,
            semconv.CWD: self.cwd,
            semconv.HOME: self.home,
            "claude_code.hook_event_name": self.event,
            **verdict_attributes(findings),
        }
        if self.tool_use_id:
            attributes[semconv.GEN_AI_TOOL_CALL_ID] = self.tool_use_id
        if isinstance(self.payload.get("permission_mode"), str):
            attributes["claude_code.permission_mode"] = self.payload["permission_mode"]
        if rt.capture_content:
            attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = render_content(self.tool_input, rt)
            response = self.payload.get("tool_response", self.payload.get("error"))
            if response is not None:
                attributes[semconv.GEN_AI_TOOL_CALL_RESULT] = render_content(response, rt)
        span = tracer.start_span(
            semconv.tool_span_name(self.tool_name), kind=SpanKind.INTERNAL, attributes=attributes, start_time=start_ns
        )
        if denied is not None:
            span.set_status(Status(StatusCode.ERROR, denied))
            span.set_attribute(semconv.ERROR_TYPE, "foothold_denied")  # a policy, not a person: no checkpoint
        elif failed or _is_error(self.payload.get("tool_response")):
            error = self.payload.get("error")
            span.set_status(
                Status(StatusCode.ERROR, render_content(error, rt)[:512] if error and rt.capture_content else None)
            )
            span.set_attribute(semconv.ERROR_TYPE, "tool_error")
        found = artifacts.merge(self._snapshot_artifacts(state or {}), self._file_artifacts(state or {}))
        artifacts.emit(tracer, span, found, {semconv.CWD: self.cwd, semconv.HOME: self.home})
        span.end()
        self._flush()

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
        """What a Write/Edit/MultiEdit call says it changed, hashed now (source ``hook``)."""
        from foothold.instrumentation.artifacts import Artifact, hash_file

        found = []
        before = state.get("files") or {}
        for path in self._file_paths():
            if not os.path.lexists(path):
                continue
            prior = before.get(path) or {}
            sha256, size = hash_file(path, 1 << 20)
            if prior and prior.get("sha256") == sha256 and prior.get("existed"):
                continue  # unchanged (a failed or no-op edit)
            action = "modify" if prior.get("existed", True) else "create"
            found.append(Artifact("file", action, path, "hook", True, sha256, prior.get("sha256"), size))
        return found

    def _snapshot_artifacts(self, state: dict[str, Any]) -> list[Any]:
        """Watch-list changes between the Pre and now (made by the tool or anything it started)."""
        from foothold.instrumentation.watch import Snapshot

        if not state.get("roots"):
            return []
        watcher = _watcher(self.home)
        states = {p: tuple(s) for p, s in (state.get("states") or {}).items()}
        known = state.get("known") or {}
        watcher.seed({p: (states[p], sha) for p, sha in known.items() if p in states})  # type: ignore[misc]
        roots = tuple((str(r), int(d)) for r, d in state["roots"])
        found, _changed = watcher.after(Snapshot(roots, states))  # type: ignore[arg-type]
        return found


def _watcher(home: str) -> Any:
    """A watcher that scans directly: one hook process takes one snapshot, an inotify watch would not pay."""
    from foothold.instrumentation.watch import Watcher, WatchList

    return Watcher(WatchList(home=home), 1 << 20, inotify=False)


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
    directory is the user's, as trusted as the per-call state files next to it."""
    try:
        entries = json.loads((state_root() / KNOWN_FILE).read_text(encoding="utf-8"))
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
    path = state_root() / KNOWN_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f"{KNOWN_FILE}.{os.getpid()}.tmp")  # hooks run in parallel: each writes its own, last wins
    tmp.write_text(json.dumps(entries), encoding="utf-8")
    os.replace(tmp, path)


def _is_error(response: Any) -> bool:
    return isinstance(response, dict) and (response.get("is_error") is True or response.get("isError") is True)


# --- settings.json ------------------------------------------------------------------------------------------


def default_settings_path() -> Path:
    return Path(os.path.expanduser("~")) / ".claude" / "settings.json"


def install(
    settings_path: Path | None = None,
    *,
    deny_persistence: bool = False,
    command: str = HOOK_COMMAND,
    timeout_seconds: int = 10,
    fingerprint_key_file: Path | None = None,
) -> tuple[Path, str | None]:
    """Add (or refresh) Foothold's hook entries in a Claude Code settings.json, keeping every other hook and
    setting; running it twice leaves one entry per event. ``fingerprint_key_file`` goes into the settings'
    ``env`` (applied to the session and its hooks) as ``FOOTHOLD_FINGERPRINT_KEY_FILE``: the path, never the
    key. Returns the settings file and a warning when the hooks will have no fingerprint key."""
    from foothold.instrumentation.runtime import FINGERPRINT_KEY_ENV, FINGERPRINT_KEY_FILE_ENV, read_key_file

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
    full = f"{command} --deny-persistence" if deny_persistence else command
    base = command.split(" --", maxsplit=1)[0]
    for event in EVENTS:
        groups = [g for g in hooks.get(event, []) if isinstance(g, dict)]
        for group in groups:  # drop earlier Foothold entries (any flags), keep everyone else's
            group["hooks"] = [h for h in group.get("hooks", []) if not _is_ours(h, base)]
        groups = [g for g in groups if g.get("hooks")]
        entry: dict[str, Any] = {"hooks": [{"type": "command", "command": full, "timeout": timeout_seconds}]}
        if event in ("PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"):
            entry = {"matcher": "*", **entry}
        groups.append(entry)
        hooks[event] = groups
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".foothold.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    keyed = any(name in env or os.environ.get(name) for name in (FINGERPRINT_KEY_FILE_ENV, FINGERPRINT_KEY_ENV))
    return path, None if keyed else (
        f"no fingerprint key: each hook event is a new process with its own random key, so fingerprints of the "
        f"same secret will not correlate across tool calls or with the collector (credential reuse goes "
        f"unnoticed). Put the deployment key (the collector's fingerprint_key) in a file only you can read and "
        f"run again with --fingerprint-key-file PATH (sets {FINGERPRINT_KEY_FILE_ENV} in {path}'s env)."
    )


def _is_ours(hook: Any, base: str) -> bool:
    return (
        isinstance(hook, dict)
        and isinstance(hook.get("command"), str)
        and (hook["command"].startswith(base) or "hook claude-code" in hook["command"])
    )


def main(argv: list[str] | None = None) -> int:
    """``foothold-audit hook claude-code [flags]``: the console script calls it before loading the CLI framework (one
    process per hook event), the typer command forwards its arguments to it, and so does ``python -m
    foothold.instrumentation.integrations.claude_code``. The one definition of the hook's flags."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=HOOK_COMMAND,
        allow_abbrev=False,
        description=(
            "Read one Claude Code hook event (JSON on stdin) and record it. Configure it with `foothold-audit hook install "
            "--claude-code`. Never fails the agent: errors go to a log file, exit code 0."
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
    parser.add_argument("--endpoint", help="OTLP endpoint (default: OTEL_EXPORTER_OTLP_* variables)")
    args = parser.parse_args(argv)
    answer = run(
        sys.stdin.read(),
        deny_persistence=args.deny_persistence,
        endpoint=args.endpoint,
        deny_with_exit_code=args.deny_exit_code,
    )
    if answer.stdout:
        sys.stdout.write(answer.stdout + "\n")
        sys.stdout.flush()
    if answer.stderr:
        sys.stderr.write(answer.stderr + "\n")
    return answer.exit_code


if __name__ == "__main__":
    sys.exit(main())
