"""Inline code (``python -c``, ``perl -e``, ``node -e``, ``ruby -e``, ``php -r``): the files it writes and the
commands it runs, found by heuristics over the code text (open/writeFileSync/shutil.copy/subprocess.run ...)."""

from __future__ import annotations

import re
import shlex

from foothold.detections.shell.context import MAX_DEPTH, Context, add_write, nested
from foothold.detections.shell.known_output import b64decode

_STR = r"""(?:'[^'\n]*'|"[^"\n]*"|`[^`\n]*`)"""
_HOME_TOKEN = (
    r"(?:os\.path\.expanduser\(\s*['\"]~['\"]\s*\)|os\.environ\[\s*['\"]HOME['\"]\s*\]"
    r"|os\.environ\.get\(\s*['\"]HOME['\"][^)]*\)|os\.getenv\(\s*['\"]HOME['\"][^)]*\)"
    r"|(?:pathlib\.)?Path\.home\(\)|(?:require\(\s*['\"]os['\"]\s*\)|os)\.homedir\(\)|process\.env\.HOME|process\.env\[['\"]HOME['\"]\]"
    r"|\$ENV\{['\"]?HOME['\"]?\}|ENV\[['\"]HOME['\"]\]|Dir\.home)"
)
_PATH_TOKEN_RE = re.compile(rf"{_HOME_TOKEN}|{_STR}")
_WRITE_CALLS = [
    # (regex locating the call; group "args" starts right after the opening parenthesis)
    re.compile(r"\bopen\s*\((?P<args>)"),
    re.compile(
        r"\b(?:writeFileSync|appendFileSync|writeFile|appendFile|createWriteStream|outputFileSync)\s*\((?P<args>)"
    ),
    re.compile(r"\bfile_put_contents\s*\((?P<args>)"),
    re.compile(r"\bFile\.(?:write|open|new)\s*\((?P<args>)"),
    re.compile(r"\bsysopen\s*\((?P<args>)"),
]
_COPY_CALLS = re.compile(
    r"\b(?:shutil\.(?:copy\w*|move)|os\.(?:symlink|rename|replace|link)|copyFileSync|copyFile"
    r"|renameSync|symlinkSync|FileUtils\.(?:cp|mv|ln_s|install))\s*\((?P<args>)"
)
_PATHLIB_WRITE = re.compile(r"\bPath\s*\((?P<args>)")
_RUN_CALLS = re.compile(
    r"\b(?:os\.system|os\.popen|subprocess\.(?:run|call|check_call|check_output|Popen|getoutput)"
    r"|execSync|spawnSync|exec|system|shell_exec|passthru|popen)\s*\((?P<args>)"
)
_B64_CALLS = re.compile(
    r"\b(?:b64decode|decodebytes|Buffer\.from|decode_base64|base64_decode)\s*\(\s*(?:b)?(?P<s>'[A-Za-z0-9+/=\s]{8,}'|\"[A-Za-z0-9+/=\s]{8,}\")"
)


def analyze_code(code: str, lang: str, ctx: Context) -> None:
    if ctx.depth >= MAX_DEPTH or len(code) > 200_000:
        return
    assigns = _code_assignments(code)
    for pattern in _WRITE_CALLS:
        for m in pattern.finditer(code):
            args = _call_args(code, m.end("args"))
            _code_open(args, lang, ctx, assigns, m.group(0))
    for m in _COPY_CALLS.finditer(code):
        args = _call_args(code, m.end("args"))
        if len(args) >= 2 and (path := _eval_path(args[1], assigns)):
            add_write(ctx, path, "copy", f"{lang} {m.group(0).rstrip('( ')} -> {path}")
    for m in _PATHLIB_WRITE.finditer(code):
        args = _call_args(code, m.end("args"))
        tail = code[m.end("args") : m.end("args") + 400]
        close = _matching_paren(tail)
        after = tail[close + 1 : close + 80] if close >= 0 else ""
        if args and re.match(r"\s*(\.expanduser\(\))?\s*\.(write_text|write_bytes|open\(\s*['\"][wax+])", after):
            if path := _eval_path(args[0], assigns):
                add_write(ctx, path, "write", f"{lang} Path({path}).write")
    for m in re.finditer(
        rf"(?P<expr>{_HOME_TOKEN}(?:\s*/\s*{_STR})+)\s*\)?\s*\.(?:write_text|write_bytes|open\(\s*['\"][wax+])", code
    ):
        if path := _eval_path(m.group("expr"), assigns):
            add_write(ctx, path, "write", f"{lang} write to {path}")
    for m in _RUN_CALLS.finditer(code):
        args = _call_args(code, m.end("args"))
        if args:
            _code_run(args, ctx)
    for m in _B64_CALLS.finditer(code):
        # exec(base64.b64decode('...')) / os.system(b64decode(...)): the payload is code or a shell line
        decoded = b64decode(m.group("s")[1:-1])
        if decoded and sum(c.isprintable() or c.isspace() for c in decoded) > 0.9 * len(decoded):
            saved = ctx.depth
            ctx.depth += 1
            ctx.via.append("base64 literal in inline code")
            try:
                analyze_code(decoded, lang, ctx)
                ctx.run_script(decoded, ctx)
            finally:
                ctx.depth = saved
                ctx.via.pop()


def _code_open(args: list[str], lang: str, ctx: Context, assigns: dict[str, str], call: str) -> None:
    if not args:
        return
    if (
        lang == "perl"
        or call.startswith("open")
        and len(args) >= 2
        and re.fullmatch(r"\s*(my\s+)?[\$\w]+\s*", args[0])
        and lang != "python"
    ):
        _perl_open(args, ctx, assigns)
        return
    mode = None
    for a in args[1:]:
        a = a.strip()
        m = re.fullmatch(r"(?:mode\s*=\s*|flag\s*:\s*|\{\s*flag\s*:\s*)?['\"]([rwxabt+]{1,3})['\"]\s*\}?", a)
        if m:
            mode = m.group(1)
            break
    is_open = call.lstrip().startswith(("open", "File.open", "File.new", "sysopen"))
    if is_open and (mode is None or not re.search(r"[wax+]", mode)):
        return  # open(path) / open(path, 'r') only reads
    path = _eval_path(args[0], assigns)
    if path:
        action = "append" if (mode and "a" in mode) or "append" in call.lower() else "write"
        add_write(ctx, path, action, f"{lang} {call.rstrip('( ')}({path}, {mode or 'w'})")


def _perl_open(args: list[str], ctx: Context, assigns: dict[str, str]) -> None:
    if len(args) >= 3:  # open(my $fh, '>>', $path)
        mode = args[1].strip().strip("'\"")
        if mode.startswith((">", "+")) and (path := _eval_path(args[2], assigns)):
            add_write(ctx, path, "append" if mode.startswith(">>") else "write", f"perl open {mode} {path}")
        return
    if len(args) == 2:  # open(FH, ">>/root/.ssh/authorized_keys")
        m = re.fullmatch(r"\s*['\"](>>?|\+<|\+>)\s*([^'\"]+)['\"]\s*", args[1])
        if m:
            add_write(
                ctx, m.group(2), "append" if m.group(1) == ">>" else "write", f"perl open {m.group(1)}{m.group(2)}"
            )


def _code_run(args: list[str], ctx: Context) -> None:
    first = args[0].strip()
    if re.fullmatch(_STR, first):
        nested(first[1:-1], ctx, "inline code runs a shell command")
        return
    if first.startswith("["):  # subprocess.run(["crontab", "/tmp/x"])
        words = [w[1:-1] for w in re.findall(_STR, first)]
        if words:
            nested(shlex.join(words), ctx, "inline code runs a command")
    elif re.fullmatch(r"['\"][\w.\-/]+['\"]", first) and len(args) > 1 and args[1].strip().startswith("["):
        words = [first[1:-1]] + [w[1:-1] for w in re.findall(_STR, args[1])]  # spawnSync('crontab', [...])
        nested(shlex.join(words), ctx, "inline code runs a command")


def _code_assignments(code: str) -> dict[str, str]:
    """name -> expression text for simple ``p = '/root/.ssh/authorized_keys'`` style assignments."""
    out: dict[str, str] = {}
    for m in re.finditer(r"(?:^|[;\n{(]|\b(?:const|let|var|my))\s*\$?(\w+)\s*=\s*([^;\n]+)", code):
        if len(out) < 64:
            out[m.group(1)] = m.group(2).strip()
    return out


def _call_args(code: str, start: int) -> list[str]:
    """Top-level comma-separated arguments of the call whose '(' ends right before ``start``."""
    depth = 0
    args: list[str] = []
    current: list[str] = []
    quote = ""
    for ch in code[start : start + 2000]:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if current:
        args.append("".join(current).strip())
    return args


def _matching_paren(text: str) -> int:
    depth = 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return i
            depth -= 1
    return -1


def _eval_path(expr: str, assigns: dict[str, str], _depth: int = 0) -> str | None:
    """Evaluate a path expression made of string literals, home lookups, joins, + and / operators."""
    expr = expr.strip()
    if re.fullmatch(r"\$?\w+", expr) and expr.lstrip("$") in assigns and _depth < 3:
        return _eval_path(assigns[expr.lstrip("$")], assigns, _depth + 1)
    if expr.startswith("`"):  # JS template literal: `${os.homedir()}/.bashrc`
        expr = re.sub(r"\$\{\s*" + _HOME_TOKEN + r"\s*\}", "~", expr.strip("`"))
        return expr if expr.startswith(("/", "~")) else None
    parts: list[str] = []
    for m in _PATH_TOKEN_RE.finditer(expr):
        token = m.group(0)
        parts.append("~" if token[0] not in "'\"`" else token[1:-1])
    if not parts:
        return None
    joined = (
        "/".join(parts)
        if ("join" in expr or re.search(r"\)\s*/", expr) or len(parts) > 1 and "/" in re.sub(_STR, "", expr))
        else "".join(parts)
    )
    joined = re.sub(r"(?<!^)/+", "/", joined)
    if not joined.startswith(("/", "~")) and "/" not in joined and "." not in joined:
        return None  # "w", "utf-8": not a path
    return joined
