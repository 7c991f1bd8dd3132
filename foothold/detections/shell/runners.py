"""Programs that run other code: ``bash -c``/``sh`` on stdin, ``eval``, ``su -c``, ``ssh HOST CMD`` and the
interpreters (``python -c``, ``perl -e``, ``node -e`` ...). The code they run is analysed one level down."""

from __future__ import annotations

import re

from foothold.detections.shell.context import Context, add_write, nested
from foothold.detections.shell.inline_code import analyze_code
from foothold.detections.shell.syntax import program_name


def shell(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """``bash -c STRING`` / ``sh -s`` / ``bash <<EOF``: analyse the inner script with the same context."""
    args = argv[1:]
    i = 0
    code: str | None = None
    script_file = False
    while i < len(args):
        tok = args[i]
        if tok in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", tok) and not tok.startswith("--"):
            code = args[i + 1] if i + 1 < len(args) else None
            break
        if tok.startswith(("-", "+")):
            i += 1
            continue
        script_file = True
        break
    label = f"{program_name(argv[0])} -c"
    if code is None and not script_file and stdin:
        code = stdin  # echo ... | sh, bash <<EOF, curl ... | base64 -d | sh
        label = f"stdin of {program_name(argv[0])}"
    if code:
        nested(code, ctx, label)


def eval_builtin(argv: list[str], ctx: Context, stdin: str | None) -> None:
    nested(" ".join(argv[1:]), ctx, "eval")


def su(argv: list[str], ctx: Context, stdin: str | None) -> None:
    args = argv[1:]
    for i, tok in enumerate(args):
        if tok in ("-c", "--command") and i + 1 < len(args):
            nested(args[i + 1], ctx, "su -c")
            return
        if tok.startswith("--command="):
            nested(tok.split("=", 1)[1], ctx, "su -c")
            return


def ssh(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """``ssh HOST CMD...``: the command runs remotely; still persistence, on another host."""
    value_opts = {
        "-b",
        "-c",
        "-D",
        "-E",
        "-e",
        "-F",
        "-I",
        "-i",
        "-J",
        "-L",
        "-l",
        "-m",
        "-O",
        "-o",
        "-p",
        "-Q",
        "-R",
        "-S",
        "-W",
        "-w",
        "-B",
    }
    args = argv[1:]
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in value_opts else 1
    remote = args[i + 1 :]
    if not remote:
        if stdin and i < len(args):
            remote = [stdin]
        else:
            return
    saved = (ctx.remote, ctx.cwd)
    ctx.remote, ctx.cwd = True, None
    try:
        nested(" ".join(remote), ctx, f"ssh {args[i] if i < len(args) else ''}".strip())
    finally:
        ctx.remote, ctx.cwd = saved


def interpreter(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """python -c / perl -e / node -e / ruby -e / php -r: look for file writes in the code string."""
    prog = program_name(argv[0])
    lang = "python" if prog.startswith(("python", "pypy")) or prog == "py" else prog
    flags = {
        "python": ("-c",),
        "perl": ("-e", "-E"),
        "node": ("-e", "--eval", "-p", "--print"),
        "nodejs": ("-e", "--eval", "-p"),
        "ruby": ("-e",),
        "php": ("-r",),
        "deno": ("eval",),
        "bun": ("-e", "--eval"),
    }
    args = argv[1:]
    codes: list[str] = []
    script_file = False
    rest: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if (
            tok in flags.get(lang, ())
            or (lang == "perl" and re.fullmatch(r"-[a-zA-Z]*[eE]", tok))
            or (lang == "python" and re.fullmatch(r"-[a-zA-Z]*c", tok))
        ):
            if i + 1 < len(args):
                codes.append(args[i + 1])
            i += 2
            continue
        if tok.startswith("-") and tok != "-":
            i += 1
            continue
        if codes:
            rest.append(tok)
        elif tok != "-":
            script_file = True
            break
        i += 1
    if not codes and not script_file and stdin:
        codes.append(stdin)  # python3 - <<'PY' ... PY
    ctx.via.append(f"{prog} inline code")
    try:
        for code in codes:
            analyze_code(code, lang, ctx)
    finally:
        ctx.via.pop()
    # perl -pi -e '...' FILE edits FILE in place
    if lang == "perl" and any(re.fullmatch(r"-[a-zA-Z]*i\S*", a) for a in args):
        for f in rest:
            add_write(ctx, f, "edit", f"perl -i {f}")
