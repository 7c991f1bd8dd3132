"""Integrity snapshot of persistence locations around each tool call.

Before a call we ``lstat`` every watched path (directories are listed one level deep, ``/**`` entries
two levels, capped), after it we do it again and hash only what changed. On Linux an inotify signal
(:mod:`.inotify`) says whether anything happened in the watched directories since the last scan; when
nothing did, the last scan stands and the call costs no stats at all. That catches changes made by
anyone during the call, subprocesses included, which the in-process audit hook cannot see. The shim
records changes faithfully; deciding which are persistence is the collector's job.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import dataclass, field
from itertools import islice

from .artifacts import SOURCE_SNAPSHOT, Artifact, file_digest, hash_file
from .inotify import change_signal, directories_to_watch
from .watch_paths import DERIVED_WATCH

# `~` is the configured home; relative entries resolve against the root of the call's git repository
# (or its working directory outside one). A trailing "/**" lists two levels (systemd's *.wants dirs).
# The list is derived from the persistence rules (foothold/detections/watchlist.py), so every location a
# rule names is watched; watch_paths.py is its generated copy (loading the rules is too slow for a hook).
DEFAULT_WATCH: tuple[str, ...] = DERIVED_WATCH


# (mtime_ns, size, inode, mode): a plain tuple because a snapshot builds one per watched file per call.
FileState = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class WatchList:
    """Which locations to watch. ``home`` is what ``~`` expands to (tests point it at a temp dir)."""

    paths: tuple[str, ...] = DEFAULT_WATCH
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    max_dir_entries: int = 256


@dataclass(frozen=True, slots=True)
class Snapshot:
    roots: tuple[tuple[str, int], ...]  # (absolute path, listing depth)
    states: dict[str, FileState]


class Watcher:
    """Takes snapshots of a watch list and turns differences into artifacts, keeping the last known
    hash of every watched file so a change reports its before-hash too."""

    def __init__(self, watch_list: WatchList, hash_limit: int, *, inotify: bool = True) -> None:
        self.watch_list = watch_list
        self._hash_limit = hash_limit
        self._roots_by_cwd: dict[str, tuple[tuple[str, int], ...]] = {}
        self._known: dict[str, tuple[FileState, str | None]] = {}
        self._listings: dict[str, tuple[tuple[int, int], list[str]]] = {}
        self._lock = threading.Lock()
        self._signal = change_signal() if inotify else None  # a process taking one snapshot has no use for it
        self._scans: dict[tuple[tuple[str, int], ...], dict[str, FileState]] = {}  # last scan per root set
        self._scan_lock = threading.Lock()

    def before(self, cwd: str) -> Snapshot:
        roots = self._roots_by_cwd.get(cwd) or self._resolve(cwd)
        snapshot = Snapshot(roots, self._current(roots))
        self._remember(snapshot.states)
        return snapshot

    def after(self, before: Snapshot) -> tuple[list[Artifact], dict[str, FileState | None]]:
        """Artifacts for what changed since ``before``, and the changed paths' new states."""
        states = self._current(before.roots)
        changed: dict[str, FileState | None] = {}
        found: list[Artifact] = []
        now = time.time_ns()
        for path in before.states.keys() | states.keys():
            old, new = before.states.get(path), states.get(path)
            if old != new:
                changed[path] = new
                found.append(self._artifact(path, old, new, now))
        return found, changed

    def known(self) -> dict[str, tuple[FileState, str | None]]:
        """The last known hash of every watched file seen, with the state it was taken at (to persist)."""
        with self._lock:
            return dict(self._known)

    def seed(self, known: dict[str, tuple[FileState, str | None]]) -> None:
        """Take hashes known from elsewhere (an earlier process): a file still in that state is not hashed
        again. The caller vouches that the file did not change without changing its state."""
        with self._lock:
            self._known.update(known)

    def close(self) -> None:
        """Release the inotify descriptor (a process may hold only so many); scans continue without it."""
        with self._scan_lock:
            if self._signal is not None:
                self._signal.close()
                self._signal = None

    def _current(self, roots: tuple[tuple[str, int], ...]) -> dict[str, FileState]:
        """The watched files' states now: the last scan's when inotify saw nothing change since."""
        with self._scan_lock:
            if self._signal is None:
                return _scan(roots, self.watch_list.max_dir_entries, self._listings)
            if self._signal.changed():
                self._scans.clear()
            elif roots in self._scans:
                return self._scans[roots]
            # Watch first, then scan; a directory first seen by the scan gets a watch and one more scan,
            # so a write landing between the scan and its watch is not lost.
            self._signal.watch(directories_to_watch(roots))
            for _ in range(3):
                states = _scan(roots, self.watch_list.max_dir_entries, self._listings)
                if not self._signal.watch(directories_to_watch(roots)):
                    break
            self._scans[roots] = states
            return states

    def _artifact(self, path: str, old: FileState | None, new: FileState | None, now: int) -> Artifact:
        with self._lock:
            known = self._known.get(path)
        before_hash = known[1] if known is not None and known[0] == old else None
        if new is None:
            with self._lock:
                self._known.pop(path, None)
            return Artifact("file", "delete", path, SOURCE_SNAPSHOT, True, None, before_hash, None, now)
        note = None
        if old is not None and old[:3] == new[:3]:
            action, sha256 = "chmod", before_hash
        else:
            action, digest = ("create" if old is None else "modify"), file_digest(path, self._hash_limit)
            sha256, note = digest.sha256, digest.note
        with self._lock:
            self._known[path] = (new, sha256)
        return Artifact("file", action, path, SOURCE_SNAPSHOT, True, sha256, before_hash, new[1], now, note=note)

    def _remember(self, states: dict[str, FileState]) -> None:
        """Hash files first seen, or changed since last seen (outside any tool call)."""
        with self._lock:
            stale = [p for p, s in states.items() if (k := self._known.get(p)) is None or k[0] != s]
        for path in stale:
            sha256 = hash_file(path, self._hash_limit)[0]
            with self._lock:
                self._known[path] = (states[path], sha256)

    def _resolve(self, cwd: str) -> tuple[tuple[str, int], ...]:
        base = _repo_root(cwd)
        roots: list[tuple[str, int]] = []
        for entry in self.watch_list.paths:
            depth = 2 if entry.endswith("/**") else 1
            entry = entry.removesuffix("/**")
            if entry.startswith("~"):
                entry = self.watch_list.home + entry[1:]
            path = os.path.normpath(os.path.join(base, entry))
            if (path, depth) not in roots:
                roots.append((path, depth))
        resolved = tuple(roots)
        self._roots_by_cwd[cwd] = resolved
        return resolved


def _repo_root(cwd: str) -> str:
    path = os.path.abspath(cwd)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return os.path.abspath(cwd)
        path = parent


def _scan(
    roots: tuple[tuple[str, int], ...], cap: int, listings: dict[str, tuple[tuple[int, int], list[str]]]
) -> dict[str, FileState]:
    states: dict[str, FileState] = {}
    for path, depth in roots:
        _scan_one(path, depth, cap, states, listings)
    return states


def _scan_one(
    path: str,
    depth: int,
    cap: int,
    states: dict[str, FileState],
    listings: dict[str, tuple[tuple[int, int], list[str]]],
) -> None:
    try:
        st = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        states[path] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        return
    if depth <= 0:
        return
    for child in _listing(path, (st.st_mtime_ns, st.st_ino), cap, listings):
        _scan_one(child, depth - 1, cap, states, listings)


def _listing(
    path: str, version: tuple[int, int], cap: int, listings: dict[str, tuple[tuple[int, int], list[str]]]
) -> list[str]:
    """A directory's entries, re-read only when its mtime changed (adding, removing or renaming an
    entry bumps it); listing costs several times a stat."""
    cached = listings.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        with os.scandir(path) as entries:
            listed = [entry.path for entry in islice(entries, cap)]
    except OSError:
        return []
    listings[path] = (version, listed)
    return listed
