"""The Claude Code hook's private state directory: per user, 0700, owned by the user, files never followed
through a symlink.

The hook runs as a new process per event and keeps small files between them (a call's Pre state, known hashes,
unsent spans, its log). In a shared temp dir those paths were predictable: another local user could pre-create
the directory or plant ``hook.log`` as a symlink and have the hook append to a file of theirs choosing. So the
directory lives under the user's own state home, is created 0700, is refused when it is someone else's or a
symlink, and every file in it is opened with ``O_NOFOLLOW`` (a planted link fails instead of being followed).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TextIO

from .hook_forwarder import STATE_DIR_ENV, state_dir

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class StateDirError(RuntimeError):
    """The state directory cannot be trusted; the message names the fix."""


def state_root() -> Path:
    """See :func:`.hook_forwarder.state_dir` (defined there: the forwarder's client finds it without pathlib)."""
    return Path(state_dir())


def private_dir(path: Path) -> Path:
    """Create ``path`` 0700 and check it: a real directory, ours, closed to others. Below the state root every
    level is created and checked the same way (``mkdir(parents=True)`` would give the levels between the umask's
    mode); above it, the user's own directories are created as usual."""
    root = state_root()
    levels = [path]
    if path != root and path.is_relative_to(root):
        levels = [root] + [
            root.joinpath(*path.relative_to(root).parts[: n + 1]) for n in range(len(path.relative_to(root).parts))
        ]
    levels[0].parent.mkdir(parents=True, exist_ok=True)
    for level in levels:
        _check(level)
    return path


def _check(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise StateDirError(f"{path} is not a directory (a symlink?): remove it or set {STATE_DIR_ENV}")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise StateDirError(
            f"{path} belongs to uid {st.st_uid}, not to you: remove it or set {STATE_DIR_ENV} to a directory of yours"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours but opened up (an old install, a umask): close it again


def open_private(path: Path, flags: int) -> int:
    """``os.open`` that refuses to follow a symlink at the last component; new files are 0600."""
    return os.open(path, flags | _NOFOLLOW | _CLOEXEC, 0o600)


def read_text(path: Path) -> str:
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        return handle.read()


def write_atomic(path: Path, data: bytes) -> None:
    """Write a sibling temp file (exclusive, no symlink) and rename it over ``path``: readers see old or new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_stream(path: Path, max_bytes: int = 1 << 20) -> TextIO:
    """A text stream appending to ``path`` (no symlink followed); a log past ``max_bytes`` starts over."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    if os.fstat(fd).st_size > max_bytes:
        os.ftruncate(fd, 0)
    return os.fdopen(fd, "a", encoding="utf-8")
