"""The Claude Code hook's per-user forwarder: a long-lived process that handles hook events for the short-lived
``foothold-audit hook claude-code`` processes Claude Code starts, so that each of them only starts Python, hands
its event over a Unix socket and prints the answer.

Why: Claude Code waits for the hook on every tool call (twice: PreToolUse and PostToolUse) and starts it as a
new process each time. Handling an event in that process means importing the hook's modules (the watch list,
the secret rules, the HTTP client), which costs several times the event's actual work (a watch-list stat pass,
a few hashes, one local HTTP POST). The forwarder has them loaded already.

How:
* The first event of a configuration finds no forwarder: its process handles the event itself, answers Claude
  Code, and then forks; the child (everything already imported) detaches (new session, stdio on /dev/null, so
  Claude Code's pipes close when the hook exits) and becomes the forwarder. A lock file keeps it to one per
  socket; it exits after ``FOOTHOLD_HOOK_FORWARDER_IDLE`` seconds without an event (default 300), or when its
  socket is removed.
* Later events connect to its socket, send ``key``, the cwd and stdin, and get back the exit code, stdout and
  stderr. The forwarder handles them one at a time with the same code as the in-process path
  (:func:`.claude_code.run`): the same spans, written to the hook's spool before the answer and sent by a
  sender thread right after it, so Claude Code never waits for the collector (which answers only once the
  request is on its own disk). SessionEnd is the exception: Claude Code may exit next, taking along the
  network it gave its hooks, so that answer waits until the spool is sent. :func:`flush` asks for the same.
* One forwarder per configuration: the socket is named after a digest of everything that shapes what the hook
  does (its flags, the ``FOOTHOLD_*``/``OTEL_*`` variables, HOME, the interpreter, the code's and the key
  file's stat); the forwarder checks the full ``key`` and refuses any other, so a stale or differently
  configured forwarder never answers.
* Nothing is lost to it: an event the forwarder does not answer (none running, killed, stuck past the bound,
  another configuration) is handled in-process, as before; what it spooled and did not send yet is sent by the
  next event of any hook process (oldest first, each body claimed by one sender). A forwarder killed after
  spooling but before answering means that event is recorded twice; the collector keeps one row per call.
* Private: the socket lives in the hook's 0700 state directory (checked before connecting), is 0600, and each
  side checks the other's uid (``SO_PEERCRED``).

This module is the client's whole import path: it uses ``os``, ``socket`` and ``sys`` only.
"""

from __future__ import annotations

import _socket  # the C module: socket.py's enum and selectors imports cost the client ~6 ms an event
import os
import sys
import zlib

# Not `from typing import TYPE_CHECKING`: typing pulls in re, collections and functools, ~14 ms of every event's
# client; type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from .claude_code import HookConfig

STATE_DIR_ENV = "FOOTHOLD_HOOK_STATE_DIR"
ENABLED_ENV = "FOOTHOLD_HOOK_FORWARDER"  # "0" turns the forwarder off: every event is handled in its own process
IDLE_ENV = "FOOTHOLD_HOOK_FORWARDER_IDLE"
DEFAULT_IDLE_SECONDS = 300.0
MAX_REQUEST_BYTES = 64 << 20  # far above any hook payload (Claude Code caps tool output well below)
_TICK_SECONDS = 2.0  # how often an idle forwarder checks its socket is still its own
_READY_SECONDS = 2.0  # the first event waits at most this long for the forwarder it started to listen
EVENT, FLUSH = b"E", b"F"  # the request kinds: a hook event; "send what is spooled, answer when done"
_KEY_ENV_PREFIXES = ("FOOTHOLD_", "OTEL_")
_KEY_ENV_NAMES = ("HOME", "XDG_STATE_HOME")
# The code and rules a forwarder runs were loaded when it started: a changed install must not be served by it.
# (package, file): "" is this package, "instrumentation" its parent, "foothold" the top package.
_CODE_FILES = (
    ("", "claude_code.py"),
    ("", "hook_export.py"),
    ("", "hook_files.py"),
    ("", "hook_state.py"),
    ("", "hook_forwarder.py"),
    ("instrumentation", "watch.py"),
    ("instrumentation", "watch_paths.py"),
    ("instrumentation", "artifacts.py"),
    ("instrumentation", "content.py"),
    ("instrumentation", "keys.py"),
    ("foothold", "redact.py"),
    ("foothold", "detections/rules"),
)


def state_dir() -> str:
    """The hook's private state directory: ``FOOTHOLD_HOOK_STATE_DIR``, else ``$XDG_STATE_HOME/foothold/claude-code``
    (default ``~/.local/state/...``): per user, never a shared tmp."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return configured
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "foothold", "claude-code")


def enabled() -> bool:
    return os.environ.get(ENABLED_ENV, "").strip().lower() not in ("0", "false", "no", "off") and hasattr(os, "fork")


def key(argv: list[str]) -> bytes:
    """Everything that shapes what the hook does with an event, as one string: two processes with the same key
    would handle an event the same way."""
    here = os.path.dirname(os.path.abspath(__file__))
    # Where each package lives: a wheel nests instrumentation/ in foothold/, the editable install maps it there.
    packages = {"": here, "instrumentation": os.path.dirname(here), "foothold": os.path.dirname(_top_file())}
    parts = [sys.executable, *argv, "\0"]
    parts += [
        f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(_KEY_ENV_PREFIXES) or k in _KEY_ENV_NAMES
    ]
    files = [os.path.join(packages[package], name) for package, name in _CODE_FILES]
    files.append(os.environ.get("FOOTHOLD_FINGERPRINT_KEY_FILE") or "")  # read once per process: a new key, a new one
    for path in files:
        try:
            st = os.stat(path)
            parts.append(f"{path}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}")
        except OSError:
            parts.append(f"{path}:-")
    return "\n".join(parts).encode("utf-8", "surrogateescape")


def _top_file() -> str:
    """The top package's ``__init__.py``, found from this file's place alone (the client may run as a script with
    nothing imported, see ``__main__`` below): a wheel nests instrumentation/ in foothold/; the editable install
    maps the source tree's instrumentation/ beside foothold/."""
    parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    nested = os.path.join(parent, "__init__.py")
    if os.path.basename(parent) == "foothold" and os.path.isfile(nested):
        return nested
    return os.path.join(parent, "foothold", "__init__.py")


def socket_name(request_key: bytes) -> str:
    """The socket's file name in the state directory (a digest names it; the full key is checked on use)."""
    return f"forwarder-{zlib.crc32(request_key):08x}-{zlib.adler32(request_key):08x}.sock"


def _private(path: str) -> bool:
    """The state directory exists, is a real directory, ours and closed to others (else: no forwarder; the
    in-process path creates, repairs or refuses it)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_mode & 0o170000) == 0o040000 and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _peer_uid(connection: _socket.socket) -> int | None:
    option = getattr(_socket, "SO_PEERCRED", None)
    if option is None:  # not Linux: the 0700 directory alone keeps other users out
        return None
    raw = connection.getsockopt(_socket.SOL_SOCKET, option, 12)
    return int.from_bytes(raw[4:8], sys.byteorder)


def _in_dir(directory: str, action: _socket.socket, name: str, bind: bool) -> None:
    """bind/connect ``name`` inside ``directory`` by a relative path: a Unix socket path is limited to ~107
    bytes, a state directory under a deep HOME is not."""
    here = os.getcwd()
    os.chdir(directory)
    try:
        (action.bind if bind else action.connect)(name)
    finally:
        os.chdir(here)


def _budget() -> float:
    """The delivery budget (``FOOTHOLD_HOOK_TIMEOUT``, as for the in-process path)."""
    try:
        return float(os.environ.get("FOOTHOLD_HOOK_TIMEOUT") or 0.5)
    except ValueError:
        return 0.5


def _bound() -> float:
    """How long a client waits for an answer: the delivery budget twice over, plus the event's work (an answer
    waits for a send only at SessionEnd, and then one budget at most)."""
    return 2 * _budget() + 3.0


# --- client ---------------------------------------------------------------------------------------------------


def ask(argv: list[str], stdin: bytes) -> tuple[int, bytes, bytes] | None:
    """The forwarder's answer (exit code, stdout, stderr) to this event, or None when no forwarder answered."""
    directory = state_dir()
    if not _private(directory):
        return None
    request_key = key(argv)
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        connection.settimeout(_bound())
        _in_dir(directory, connection, socket_name(request_key), bind=False)
        if _peer_uid(connection) not in (None, os.geteuid()):
            return None
        header = EVENT + b"%d\n" % len(request_key) + request_key + b"%d\n" % len(cwd.encode()) + cwd.encode()
        connection.sendall(header + stdin)
        connection.shutdown(_socket.SHUT_WR)
        reply = _read_all(connection, MAX_REQUEST_BYTES)
    except OSError:  # none listening, a stale socket file, killed mid-event, past the bound
        return None
    finally:
        connection.close()
    return _parse_reply(reply)


def _read_all(connection: _socket.socket, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise OSError("message too large")
        chunks.append(chunk)


def _parse_reply(reply: bytes) -> tuple[int, bytes, bytes] | None:
    line, sep, rest = reply.partition(b"\n")
    try:
        code, out_size, err_size = (int(x) for x in line.split())
    except ValueError:  # no answer (the forwarder refused the key, or died before answering)
        return None
    if not sep or len(rest) != out_size + err_size:
        return None
    return code, rest[:out_size], rest[out_size:]


def _relay(argv: list[str], stdin: bytes) -> int | None:
    """The forwarder's answer written out as this process's own (its exit code returned), or None without one."""
    answer = ask(argv, stdin)
    if answer is None:
        return None
    code, out, err = answer
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    sys.stderr.buffer.write(err)
    sys.stderr.flush()
    return code


def main(argv: list[str], stdin: bytes | None = None, asked: bool = False) -> int:
    """``foothold-audit hook claude-code``: the forwarder's answer if one is running, else handle the event in this
    process and leave a forwarder behind for the next ones. ``asked``: the caller already found no forwarder."""
    if stdin is None:
        stdin = sys.stdin.buffer.read()
    if not enabled():
        from .claude_code import main as handle

        return handle(argv, stdin.decode("utf-8", "replace"))
    relayed = None if asked else _relay(argv, stdin)
    if relayed is not None:
        return relayed
    from .claude_code import main as handle

    code = handle(argv, stdin.decode("utf-8", "replace"))  # argparse exits here on bad flags: no forwarder then
    sys.stdout.flush()
    sys.stderr.flush()
    start(argv)
    return code


# --- forwarder ------------------------------------------------------------------------------------------------


def start(argv: list[str]) -> None:
    """Fork the forwarder off this process (which has handled an event, so has everything loaded) and return once
    it listens (or gave up), so the next event finds it. Never raises: without a forwarder, every event is handled
    in its own process."""
    ready_r, ready_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(ready_r)
        os.close(ready_w)
        return
    if pid:
        os.close(ready_w)
        try:
            _wait_readable(ready_r, _READY_SECONDS)
        finally:
            os.close(ready_r)
        return
    os.close(ready_r)
    try:  # the child: detach from Claude Code (its session, its pipes) before anything else
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        Forwarder(argv).run(ready_w)
    except Exception:  # events go on being handled in their own processes; say why in the hook's log
        import logging

        logging.getLogger("foothold.hook").exception("hook forwarder stopped")
    finally:
        os._exit(0)


def _wait_readable(fd: int, seconds: float) -> None:
    import select

    select.select([fd], [], [], seconds)


class Forwarder:
    """Serves hook events on a Unix socket in the state directory, one at a time, until idle."""

    def __init__(self, argv: list[str]) -> None:
        from .claude_code import config_from_argv

        self.argv = argv
        self.config = config_from_argv(argv)
        self.key = key(argv)
        self.directory = os.path.abspath(state_dir())
        self.name = socket_name(self.key)
        self.path = os.path.join(self.directory, self.name)
        try:
            self.idle = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_SECONDS)
        except ValueError:
            self.idle = DEFAULT_IDLE_SECONDS

    def run(self, ready: int) -> None:
        """Listen and serve; ``ready`` (a pipe to the process that started it) gets a byte once it listens, and
        closes when this process gives up (its exit closes it)."""
        import fcntl
        from pathlib import Path

        from . import hook_state

        hook_state.private_dir(hook_state.state_root())  # the in-process path's checks (raises if unsafe)
        lock = hook_state.open_private(Path(self.path + ".lock"), os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one forwarder per socket: a second one leaves
        except OSError:
            os.close(lock)
            return
        os.ftruncate(lock, 0)
        os.write(lock, b"%d\n" % os.getpid())  # who holds it, for whoever has to stop it
        try:
            os.unlink(self.path)  # a dead forwarder's socket file (the lock says none is alive)
        except FileNotFoundError:
            pass
        import socket  # the forwarder's own: accept() is socket.py's

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            _in_dir(self.directory, listener, self.name, bind=True)
            os.chmod(self.path, 0o600)
            inode = os.lstat(self.path).st_ino
            listener.listen(64)
            listener.settimeout(min(_TICK_SECONDS, self.idle))
            self._leave_cwd()
            os.write(ready, b"1")
            os.close(ready)
            try:
                self._serve(listener, inode)
            finally:
                if self._ours(inode):
                    os.unlink(self.path)
        os.close(lock)

    def _leave_cwd(self) -> None:
        """Run from the state directory, not the first event's project (it may be deleted or unmounted meanwhile);
        relative paths in the environment are made absolute first, as they were meant from there."""
        import dataclasses

        for name in (STATE_DIR_ENV, "FOOTHOLD_HOOK_LOG", "FOOTHOLD_FINGERPRINT_KEY_FILE"):
            if os.environ.get(name):
                os.environ[name] = os.path.abspath(os.path.expanduser(os.environ[name]))
        if self.config.token_file:
            token_file = os.path.abspath(os.path.expanduser(self.config.token_file))
            self.config = dataclasses.replace(self.config, token_file=token_file)
        os.chdir(self.directory)

    def _serve(self, listener: socket.socket, inode: int) -> None:
        import time

        sender = _Sender(self.config)
        sender.wake()  # whatever earlier processes left in the spool
        last = time.monotonic()
        while True:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                if time.monotonic() - last >= self.idle or not self._ours(inode):
                    sender.wait_idle(_bound())  # leave no send half done
                    return
                continue
            with connection:
                self._handle(connection, sender)
            last = time.monotonic()

    def _ours(self, inode: int) -> bool:
        try:
            return os.lstat(self.path).st_ino == inode
        except OSError:
            return False

    def _handle(self, connection: socket.socket, sender: _Sender) -> None:
        from .claude_code import run

        connection.settimeout(_bound())
        try:
            if _peer_uid(connection) not in (None, os.geteuid()):
                return
            request = _read_all(connection, MAX_REQUEST_BYTES)
            kind, request = request[:1], request[1:]
            if kind == FLUSH:
                sender.wake()
                idle = sender.wait_idle(_bound())
                connection.sendall(b"0 0 0\n" if idle else b"1 0 0\n")  # 1: still sending when the wait ended
                return
            request_key, rest = _field(request)
            if kind != EVENT or request_key != self.key:
                return  # another configuration (a digest collision) or another code version: it handles itself
            cwd, stdin = _field(rest)
            answer = run(
                stdin.decode("utf-8", "replace"),
                self.config,
                cwd=cwd.decode("utf-8", "surrogateescape"),
                spool_only=True,  # on disk before the answer; sent once Claude Code has it (the sender)
            )
            try:
                if answer.send_first:
                    sender.wake()
                    sender.wait_idle(_budget() + 1.0)  # one send pass, well within the client's bound
                out = (answer.stdout + "\n").encode() if answer.stdout else b""
                err = (answer.stderr + "\n").encode() if answer.stderr else b""
                connection.sendall(b"%d %d %d\n" % (answer.exit_code, len(out), len(err)) + out + err)
            finally:
                sender.wake()  # what this event spooled, whether or not its client is still there
        except (OSError, ValueError):  # the client went away or sent garbage: it handles the event itself
            return


class _Sender:
    """A thread that sends the spool after each event, so that Claude Code never waits for the collector (whose
    answer comes after its own spool's fsync); ``wait_idle`` is the flush."""

    def __init__(self, config: HookConfig) -> None:
        import threading

        self.config = config
        self.changed = threading.Condition()
        self.asked = 0
        self.done = 0
        threading.Thread(target=self._loop, name="foothold-hook-sender", daemon=True).start()

    def wake(self) -> None:
        with self.changed:
            self.asked += 1
            self.changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until every send asked for so far has run (delivered, or failed and left spooled)."""
        with self.changed:
            target = self.asked
            return self.changed.wait_for(lambda: self.done >= target, timeout)

    def _loop(self) -> None:
        from .claude_code import send_spooled

        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.asked > self.done)
                target = self.asked
            send_spooled(self.config)
            with self.changed:
                self.done = target
                self.changed.notify_all()


def _field(data: bytes) -> tuple[bytes, bytes]:
    """One length-prefixed field (``N\\n`` then N bytes) and what follows it."""
    size, sep, rest = data.partition(b"\n")
    if not sep:
        raise ValueError("truncated request")
    n = int(size)
    if n < 0 or n > len(rest):
        raise ValueError("truncated request")
    return rest[:n], rest[n:]


def flush(directory: str) -> int:
    """Ask every forwarder serving ``directory`` to send what is spooled now and answer when done (delivered, or
    failed and left in the spool); returns how many were done (not those still sending when their wait ran
    out). Tests and benchmarks read the collector after."""
    answered = 0
    try:
        names = [n for n in os.listdir(directory) if n.startswith("forwarder-") and n.endswith(".sock")]
    except OSError:
        return 0
    for name in names:
        connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            connection.settimeout(2 * _bound())
            _in_dir(directory, connection, name, bind=False)
            connection.sendall(FLUSH)
            connection.shutdown(_socket.SHUT_WR)
            answered += _read_all(connection, 64).startswith(b"0 ")
        except OSError:
            continue  # a socket left by a forwarder that is gone
        finally:
            connection.close()
    return answered


def stop(directory: str) -> int:
    """Stop the forwarders serving ``directory`` (SIGTERM to the process each held lock file names); returns how
    many. For tests and benchmarks that end before the forwarders' idle timeout."""
    import fcntl
    import signal

    stopped = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if not (name.startswith("forwarder-") and name.endswith(".sock.lock")):
            continue
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            continue  # nobody holds it: no forwarder behind this file
        except OSError:
            pid = int(os.read(fd, 32).strip() or 0)
        finally:
            os.close(fd)
        if pid > 0:
            os.kill(pid, signal.SIGTERM)
            stopped += 1
    return stopped


def _run_as_script() -> int:
    """``python -S .../hook_forwarder.py hook claude-code FLAGS``, the command ``hook install`` writes: without
    ``site`` the interpreter starts in ~11 ms instead of ~38 (the venv's .pth files and the editable install's
    finder), a part of every event once a forwarder answers. Only when none answers does this process need the
    package: it then does what ``-S`` skipped (``site.main()``) and handles the event as the console script
    would."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # no sibling module shadows a library
    argv, stdin = sys.argv[1:], sys.stdin.buffer.read()
    if argv[:2] == ["hook", "claude-code"]:  # written after the file so the entry reads (and is found) as ours
        argv = argv[2:]
    relayed = _relay(argv, stdin) if enabled() else None
    if relayed is not None:
        return relayed
    import site

    site.main()
    from foothold.instrumentation.integrations.hook_forwarder import main as package_main

    return package_main(argv, stdin, asked=True)


if __name__ == "__main__":
    sys.exit(_run_as_script())
