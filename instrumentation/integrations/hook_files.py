"""The Claude Code hook's files between processes: one state file per open tool call (Pre writes it, Post reads
it), and the hashes earlier hook processes took of watched files, so a hook rehashes only what changed.

All of it lives in the hook's private state directory (:mod:`.hook_state`)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import orjson

from . import hook_state
from .hook_state import state_root

KNOWN_FILE = "known-states.json"
HASH_LIMIT = 1 << 20
# The known-states file as this process last read or wrote it, by its (inode, mtime, size): the forwarder handles
# event after event and need not parse the same ~200 KB again while no other process has replaced it.
_known_cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None


def dumps(value: Any) -> bytes:
    """JSON of a state file (orjson: a snapshot holds thousands of entries; json for what orjson refuses, such as
    an integer past 64 bits in a tool's input)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value).encode()


def session_dir(session_id: str) -> Path:
    return state_root() / "sessions" / hashlib.sha256(session_id.encode()).hexdigest()[:32]


def state_file(session_id: str, tool_use_id: str) -> Path:
    return session_dir(session_id) / (hashlib.sha256(tool_use_id.encode()).hexdigest()[:32] + ".json")


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = orjson.loads(hook_state.read_text(path))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def watcher(home: str) -> Any:
    """A watcher that scans directly: one hook process takes one snapshot, an inotify watch would not pay."""
    from foothold.instrumentation.watch import Watcher, WatchList

    return Watcher(WatchList(home=home), HASH_LIMIT, inotify=False)


def lstat(path: str) -> tuple[tuple[int, int, int, int], int] | None:
    """A file's watch state (mtime, size, inode, mode) and its ctime."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode), st.st_ctime_ns


def load_known() -> dict[str, Any]:
    """The hashes earlier hook processes took, for the files whose lstat has not changed since.

    Stat-first trade-off: a file rewritten in place to the same size with its mtime put back keeps its watch
    state, so the ctime is part of the key too. User space cannot set a ctime; what remains is a rewrite in the
    same kernel clock tick (a few ms) as the file's previous change, or a clock set back by root. The state
    directory is the user's (0700, ownership checked), as trusted as the per-call state files next to it."""
    try:
        entries = _read_known(state_root() / KNOWN_FILE)
        known = {}
        for path, (state, ctime, sha256) in entries.items():
            if lstat(path) == (tuple(state), ctime):
                known[path] = (tuple(state), sha256)
        return known
    except (OSError, ValueError, TypeError):  # absent or damaged: hash everything once, as a first run would
        return {}


def save_known(known: dict[str, Any]) -> None:
    entries = {}
    for path, (state, sha256) in known.items():
        now = lstat(path)
        if now is not None and now[0] == state:  # unchanged since it was hashed: its ctime vouches for the hash
            entries[path] = [state, now[1], sha256]
    root = hook_state.private_dir(state_root())
    hook_state.write_atomic(root / KNOWN_FILE, dumps(entries))  # parallel hooks: last one wins
    global _known_cache
    _known_cache = (_identity(root / KNOWN_FILE), entries)


def _identity(path: Path) -> tuple[int, int, int]:
    st = os.lstat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def _read_known(path: Path) -> dict[str, Any]:
    global _known_cache
    identity = _identity(path)
    if _known_cache is not None and _known_cache[0] == identity:
        return _known_cache[1]
    entries = orjson.loads(hook_state.read_text(path))
    if not isinstance(entries, dict):
        raise ValueError("known states: not an object")
    _known_cache = (identity, entries)
    return entries
