"""In-process observation of what a tool call does, through a PEP 578 audit hook.

An audit hook cannot be removed, so it is installed once and stays a cheap no-op unless the module
flag is on and a tool call is active in the current context. It records paths and targets only;
hashing happens when the call ends, outside the hook.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from .artifacts import SOURCE_AUDIT_HOOK, Artifact, file_digest, hash_file
from .runtime import report_once

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITE_MODE_CHARS = frozenset("wax+")


@dataclass(slots=True)
class FileTouch:
    """A file path the call wrote, renamed, removed or chmod-ed, and its state when first touched."""

    existed_before: bool
    sha256_before: str | None
    first_ns: int
    ops: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Recorder:
    """What the hook saw during one tool call (deduplicated: one entry per path or target)."""

    hash_limit: int
    files: dict[str, FileTouch] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)  # command line -> first seen (ns)
    connections: dict[str, int] = field(default_factory=dict)  # host:port -> first seen (ns)

    def touch(self, path: str, op: str) -> None:
        entry = self.files.get(path)
        if entry is None:
            before, _size = hash_file(path, self.hash_limit) if op != "chmod" else (None, None)
            entry = FileTouch(os.path.lexists(path), before, time.time_ns())
            self.files[path] = entry
        entry.ops.add(op)

    def artifacts(self, render_command: Callable[[str], str]) -> list[Artifact]:
        found = [a for path, touch in self.files.items() if (a := _file_artifact(path, touch, self.hash_limit))]
        found += [
            Artifact("process", "exec", render_command(cmd), SOURCE_AUDIT_HOOK, False, time_ns=ns)
            for cmd, ns in self.processes.items()
        ]
        found += [
            Artifact("connection", "connect", target, SOURCE_AUDIT_HOOK, False, time_ns=ns)
            for target, ns in self.connections.items()
        ]
        return found


def _file_artifact(path: str, touch: FileTouch, hash_limit: int) -> Artifact | None:
    """Judge by the final state: a file created and removed within the call left nothing behind."""
    exists = os.path.lexists(path)
    if not exists:
        if not touch.existed_before:
            return None
        return Artifact(
            "file", "delete", path, SOURCE_AUDIT_HOOK, True, None, touch.sha256_before, None, touch.first_ns
        )
    if not touch.existed_before:
        action = "create"
    elif "rename" in touch.ops:
        action = "rename"
    elif touch.ops & {"write", "remove", "rename_away"}:
        action = "modify"
    else:
        action = "chmod"
    digest = file_digest(path, hash_limit)
    return Artifact(
        "file",
        action,
        path,
        SOURCE_AUDIT_HOOK,
        True,
        digest.sha256,
        touch.sha256_before,
        digest.size,
        touch.first_ns,
        note=digest.note,
    )


class HasRecorder(Protocol):
    """The active tool call as the hook sees it: the recorder of its file, process and network events."""

    @property
    def recorder(self) -> Recorder | None: ...


# An audit event's arguments (sys.addaudithook): their number and types depend on the event.
AuditArgs = tuple[Any, ...]

ACTIVE_CALL: ContextVar[HasRecorder | None] = ContextVar("foothold_active_tool_call", default=None)
_busy = threading.local()  # our own stat/hash calls inside the hook raise audit events too
_enabled = False
_installed = False


def _path(value: Any) -> str | None:
    if isinstance(value, int):  # a file descriptor: no path to report
        return None
    return os.path.abspath(os.fsdecode(value))


def _on_open(recorder: Recorder, args: AuditArgs) -> None:
    path, mode, flags = args
    writes = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
        isinstance(mode, str) and not _WRITE_MODE_CHARS.isdisjoint(mode)
    )
    if writes and (resolved := _path(path)) is not None:
        recorder.touch(resolved, "write")


def _on_rename(recorder: Recorder, args: AuditArgs) -> None:
    src, dst = _path(args[0]), _path(args[1])
    if src is not None:
        recorder.touch(src, "rename_away")
    if dst is not None:
        recorder.touch(dst, "rename")


def _on_remove(recorder: Recorder, args: AuditArgs) -> None:
    if (path := _path(args[0])) is not None:
        recorder.touch(path, "remove")


def _on_new_name(recorder: Recorder, args: AuditArgs) -> None:  # os.symlink / os.link: (src, dst, ...)
    if (path := _path(args[1])) is not None:
        recorder.touch(path, "write")  # a new name is a write there: a symlinked unit file is still a unit


def _on_truncate(recorder: Recorder, args: AuditArgs) -> None:  # (path or fd, length)
    if (path := _path(args[0])) is not None:
        recorder.touch(path, "write")


def _on_chmod(recorder: Recorder, args: AuditArgs) -> None:
    if (path := _path(args[0])) is not None:
        recorder.touch(path, "chmod")


def _command(argv: Any) -> str:
    if isinstance(argv, str | bytes):
        return os.fsdecode(argv)
    return shlex.join(os.fsdecode(a) for a in argv)


def _on_popen(recorder: Recorder, args: AuditArgs) -> None:  # (executable, args, cwd, env)
    recorder.processes.setdefault(_command(args[1] if args[1] is not None else args[0]), time.time_ns())


def _on_exec(recorder: Recorder, args: AuditArgs) -> None:  # os.exec / os.posix_spawn: (path, argv, env)
    recorder.processes.setdefault(_command(args[1] or [args[0]]), time.time_ns())


def _on_system(recorder: Recorder, args: AuditArgs) -> None:
    recorder.processes.setdefault(_command(args[0]), time.time_ns())


def _on_connect(recorder: Recorder, args: AuditArgs) -> None:
    address = args[1]
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        target = f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    else:
        target = os.fsdecode(address) if isinstance(address, str | bytes) else str(address)
    recorder.connections.setdefault(target, time.time_ns())


_HANDLERS: dict[str, Callable[[Recorder, AuditArgs], None]] = {
    "open": _on_open,
    "os.rename": _on_rename,  # os.replace raises os.rename too
    "os.remove": _on_remove,  # and os.unlink
    "os.chmod": _on_chmod,
    "os.symlink": _on_new_name,
    "os.link": _on_new_name,
    "os.truncate": _on_truncate,
    "subprocess.Popen": _on_popen,
    "os.exec": _on_exec,
    "os.posix_spawn": _on_exec,
    "os.system": _on_system,
    "socket.connect": _on_connect,
}


def _hook(event: str, args: AuditArgs) -> None:
    handler = _HANDLERS.get(event)
    if handler is None or not _enabled:
        return
    call = ACTIVE_CALL.get()
    if call is None or call.recorder is None or getattr(_busy, "on", False):
        return
    _busy.on = True
    try:
        handler(call.recorder, args)
    except Exception as exc:  # never raise from an audit hook: it would fail the agent's own operation
        report_once("audit hook", exc)
    finally:
        _busy.on = False


def enable(on: bool) -> None:
    """Turn observation on or off; installs the hook the first time it is turned on."""
    global _enabled, _installed
    if on and not _installed:
        sys.addaudithook(_hook)
        _installed = True
    _enabled = on
