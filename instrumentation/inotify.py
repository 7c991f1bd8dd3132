"""Linux inotify as a change signal for the watch list, so a tool call that changed nothing costs no stats.

Only a yes/no signal is taken from the kernel ("did anything happen in a watched directory?"); what changed
is still found by the stat scan, so a lost or misread event can cost time but never a missed change:
overflows and watches that cannot be added turn the signal permanently to "changed". Events are queued
by the kernel inside the writer's own system call, so a subprocess's write is in the queue before the
tool call that ran it returns. Elsewhere (no inotify) :func:`change_signal` returns None and the watcher
scans every time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterable

_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
# Writes, metadata, creation, removal and renames; never reads, so hashing a file does not wake us.
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
)


class ChangeSignal:
    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc, self._fd = libc, fd
        self._watched: set[str] = set()
        self._blind = False  # a directory could not be watched: never trust "unchanged" again

    def changed(self) -> bool:
        """Drain the queue; True if anything happened in a watched directory since the last call."""
        if self._blind:
            return True
        seen = False
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                self._blind = True
                return True
            if not chunk:
                break
            seen = True
        if seen:
            self._watched.clear()  # a directory may have been replaced: re-add watches on the next scan
        return seen

    def close(self) -> None:
        os.close(self._fd)

    def watch(self, directories: Iterable[str]) -> bool:
        """Watch these directories too; True if any watch is new (the caller then rescans once more)."""
        added = False
        for directory in directories:
            if directory in self._watched:
                continue
            if self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK) < 0:
                if ctypes.get_errno() in (2, 20):  # ENOENT, ENOTDIR: it went away; the next scan sees that
                    continue
                self._blind = True  # EACCES, ENOSPC (watch limit): fall back to scanning every time
                return True
            self._watched.add(directory)
            added = True
        return added


def change_signal() -> ChangeSignal | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None
    return ChangeSignal(libc, fd) if fd >= 0 else None


def directories_to_watch(roots: Iterable[tuple[str, int]]) -> set[str]:
    """For each watched root: itself (and its subdirectories when listed two deep) if it is a directory,
    and its nearest existing ancestor, which sees the root appear, vanish or be replaced."""
    found: set[str] = set()
    for path, depth in roots:
        if os.path.isdir(path):
            found.add(path)
            if depth >= 2:
                try:
                    with os.scandir(path) as entries:
                        found.update(e.path for e in entries if e.is_dir(follow_symlinks=False))
                except OSError:
                    pass
        ancestor = os.path.dirname(path)
        while ancestor and not os.path.isdir(ancestor) and ancestor != os.path.dirname(ancestor):
            ancestor = os.path.dirname(ancestor)
        if ancestor:
            found.add(ancestor)
    return found
