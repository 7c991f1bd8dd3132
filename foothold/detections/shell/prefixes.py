"""Command prefixes that run another command (sudo, env, nohup, timeout, xargs ...), stripped to find it."""

from __future__ import annotations

import re

from foothold.detections.shell.context import Context
from foothold.detections.shell.paths import resolve_path
from foothold.detections.shell.syntax import program_name

_SUDO_EDIT_RE = re.compile(r"-[a-zA-Z]*e")
_ASSIGNMENT_RE = re.compile(r"^[A-Za-z_]\w*=")
_NICENESS_RE = re.compile(r"-?\d+")

# prefix -> options of that prefix that take a value (so "sudo -u bob crontab f" runs "crontab f")
PREFIXES: dict[str, frozenset[str]] = {
    "sudo": frozenset(
        {
            "-u",
            "-g",
            "-h",
            "-p",
            "-C",
            "-D",
            "-r",
            "-t",
            "-T",
            "-U",
            "--user",
            "--group",
            "--host",
            "--prompt",
            "--chdir",
            "--role",
            "--type",
            "--close-from",
            "--other-user",
        }
    ),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "nohup": frozenset(),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p", "--class", "--classdata"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "xargs": frozenset(
        {
            "-I",
            "-i",
            "-n",
            "-P",
            "-d",
            "-L",
            "-a",
            "-s",
            "-E",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
            "--replace",
        }
    ),
    "setsid": frozenset(),
    "unbuffer": frozenset(),
    "caffeinate": frozenset({"-t", "-w"}),
    "chronic": frozenset(),
    "busybox": frozenset(),
    "runuser": frozenset({"-u", "-g", "-G", "--user", "--group"}),
    "watch": frozenset({"-n", "--interval", "-d"}),
    "strace": frozenset({"-o", "-e", "-p", "-s"}),
}
_DURATION_PREFIXES = {"timeout"}  # take one positional (the duration) before the command


def strip_prefixes(argv: list[str], ctx: Context) -> list[str]:
    for _ in range(8):  # sudo env nohup timeout 5 crontab f: bounded, prefixes do not nest forever
        if not argv:
            return argv
        prog = program_name(argv[0])
        if prog == "command" and len(argv) > 1 and argv[1] in ("-v", "-V"):
            return []  # "command -v crontab" only looks the program up
        if prog not in PREFIXES:
            return argv
        value_opts = PREFIXES[prog]
        i = 1
        while i < len(argv):
            tok = argv[i]
            if tok == "--":
                i += 1
                break
            if prog == "env":
                _env_chdir(argv, i, ctx)
            if prog == "sudo" and (tok in ("-e", "--edit") or _SUDO_EDIT_RE.fullmatch(tok)):
                return ["sudoedit", *argv[i + 1 :]]  # sudo -e FILE is sudoedit FILE
            if tok.startswith("-") and len(tok) > 1:
                i += 2 if tok in value_opts else 1
                continue
            if _ASSIGNMENT_RE.match(tok):  # sudo EDITOR='tee -a' visudo, env FOO=1 cmd
                i += 1
                continue
            break
        if prog in _DURATION_PREFIXES and i < len(argv):
            i += 1
        if prog == "nice" and i < len(argv) and _NICENESS_RE.fullmatch(argv[i]):
            i += 1
        argv = argv[i:]
    return argv


def _env_chdir(argv: list[str], i: int, ctx: Context) -> None:
    """env -C DIR / --chdir=DIR runs the command elsewhere: relative paths move with it."""
    tok = argv[i]
    target = None
    if tok in ("-C", "--chdir") and i + 1 < len(argv):
        target = argv[i + 1]
    elif tok.startswith("--chdir="):
        target = tok.split("=", 1)[1]
    if target and not ctx.remote:
        ctx.cwd = resolve_path(target, ctx.cwd, ctx.home)
