"""Program -> handler: the table that says which programs have effects worth judging, and the dispatch."""

from __future__ import annotations

import re
from collections.abc import Callable

from foothold.detections.shell import builtins, runners, writers
from foothold.detections.shell.context import Context
from foothold.detections.shell.intent import Invocation
from foothold.detections.shell.syntax import program_name

# compiled once: every command of every analysed script is looked up here
_PYTHON_RE = re.compile(r"(python|pypy)[\d.]*|py")

Handler = Callable[[list[str], Context, str | None], None]


def effects(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """Record what running ``argv`` (prefixes already stripped) does, with ``stdin`` when it is known."""
    prog = program_name(argv[0])
    if _PYTHON_RE.fullmatch(prog):
        prog = "python"
    handler = _HANDLERS.get(prog)
    if handler is not None:
        handler(argv, ctx, stdin)


def _find_exec(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """``find ... -exec CMD {} \\;``: the -exec command runs; {} is whatever find matched."""
    args = argv[1:]
    for i, tok in enumerate(args):
        if tok in ("-exec", "-execdir", "-ok", "-okdir"):
            inner: list[str] = []
            for t in args[i + 1 :]:
                if t in (";", "\\;", "+"):
                    break
                inner.append(t)
            if inner:
                ctx.intent.invocations.append(Invocation(tuple(inner), None, ctx.cwd, ctx.remote))
                effects(inner, ctx, None)


_HANDLERS: dict[str, Handler] = {
    "cd": builtins.cd,
    "pushd": builtins.cd,
    "export": builtins.export,
    "tee": writers.tee,
    "sponge": writers.sponge,
    "sed": writers.sed,
    "gsed": writers.sed,
    "cp": writers.copy,
    "mv": writers.copy,
    "tar": writers.extract,
    "gtar": writers.extract,
    "bsdtar": writers.extract,
    "unzip": writers.extract,
    "install": writers.copy,
    "ln": writers.copy,
    "rsync": writers.copy,
    "scp": writers.copy,
    "dd": writers.dd,
    "curl": writers.curl,
    "wget": writers.wget,
    "vi": writers.editor,
    "vim": writers.editor,
    "nvim": writers.editor,
    "nano": writers.editor,
    "emacs": writers.editor,
    "ed": writers.editor,
    "ex": writers.editor,
    "pico": writers.editor,
    "micro": writers.editor,
    "ee": writers.editor,  # FreeBSD's default editor
    "joe": writers.editor,
    "mcedit": writers.editor,
    "view": writers.editor,
    "sudoedit": writers.sudo_edit,
    "chmod": writers.chmod,
    "touch": writers.touch,
    "plutil": writers.plutil,
    "sh": runners.shell,
    "bash": runners.shell,
    "zsh": runners.shell,
    "dash": runners.shell,
    "ksh": runners.shell,
    "ash": runners.shell,
    "fish": runners.shell,
    "eval": runners.eval_builtin,
    "su": runners.su,
    "ssh": runners.ssh,
    "find": _find_exec,
    "python": runners.interpreter,
    "perl": runners.interpreter,
    "node": runners.interpreter,
    "nodejs": runners.interpreter,
    "ruby": runners.interpreter,
    "php": runners.interpreter,
    "bun": runners.interpreter,
}
