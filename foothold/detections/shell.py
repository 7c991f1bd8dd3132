"""Shell intent analysis: what files does a command line write, and which programs does it run?

A keyword regex over the raw command cannot tell ``cat ~/.ssh/authorized_keys`` (a read) from
``cat key >> ~/.ssh/authorized_keys`` (a write), so this module parses the command with bashlex, a real
bash grammar, and judges the *effect* of every simple command: redirections, ``tee``, ``sed -i``,
``cp``/``mv``/``install``/``ln`` destinations, ``dd of=``, heredocs, and code hidden one level down
(``bash -c``, ``eval``, ``python -c``, ``ssh host CMD``, base64-decoded pipelines).

When bashlex cannot parse the text (``[[ ]]``, ``case``, arithmetic, unbalanced quotes ...) the command
is split with ``shlex`` on ``; | && || &`` and newlines instead, and the result says so in ``parser``.

Nothing here knows what persistence is; ``classify.py`` maps the writes and invocations onto the rules.
Pure stdlib + bashlex. Every public function is total: weird input yields an empty result, never an error.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import posixpath
import re
import shlex
from dataclasses import dataclass, field

# bashlex is a recursive LALR parser; huge inputs are slow and deep nesting can recurse too far.
MAX_BASHLEX_CHARS = 16_000
MAX_DEPTH = 4  # nested bash -c / eval / base64 layers followed
MAX_CONTENT = 64_000  # content kept per write (enough for any rc file or unit)

_HEREDOC_TOKEN = "__FOOTHOLD_HEREDOC_{}__"
_HEREDOC_RE = re.compile(r"(?<![<\w])<<(?!<)(-?)[ \t]*(['\"]?)([A-Za-z_][\w.\-]*)\2")
_PLACEHOLDER_RE = re.compile(r"__FOOTHOLD_HEREDOC_(\d+)__")
_VAR_RE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class FileWrite:
    """A file the command writes (or makes executable)."""

    path: str  # resolved: absolute when cwd/home are known, else "~/..." or relative
    action: str  # write | append | create | link | copy | move | edit | chmod | download
    evidence: str
    content: str | None = None  # what is written, when the command line shows it
    alt_path: str | None = None  # DEST/basename(SRC): used when DEST turns out to be a directory


@dataclass(frozen=True)
class Invocation:
    """A simple command that runs, after sudo/env/nohup/... prefixes are stripped."""

    argv: tuple[str, ...]
    stdin: str | None  # known standard input (heredoc, here-string, echo ... |)
    cwd: str | None
    remote: bool = False  # runs on another host (ssh HOST CMD)


@dataclass
class ShellIntent:
    writes: list[FileWrite] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    parser: str = "bashlex"  # bashlex | shlex-fallback | split-fallback (and "+fallback" when nested)
    notes: list[str] = field(default_factory=list)


# --- intermediate model shared by both parsers -----------------------------------------------------------


@dataclass
class _Cmd:
    words: list[str]
    redirects: list[tuple[str, str]]  # (operator, target word or here-string text)
    assigns: list[str] = field(default_factory=list)
    heredoc: str | None = None  # bashlex's own heredoc body, when the pre-pass missed it


@dataclass
class _Group:
    body: list[list[_Stage]]  # pipelines run in order inside ( ... ) or { ... }
    redirects: list[tuple[str, str]]


_Stage = _Cmd | _Group
_Pipeline = list[_Stage]


@dataclass
class _Ctx:
    cwd: str | None
    home: str | None
    heredocs: dict[int, str]
    intent: ShellIntent
    depth: int = 0
    remote: bool = False
    env: dict[str, str] = field(default_factory=dict)
    via: list[str] = field(default_factory=list)  # how we got here: "bash -c", "base64 -d | sh", "ssh HOST"


# --- public entry points ----------------------------------------------------------------------------------


def analyze(command: str, *, cwd: str | None = None, home: str | None = None) -> ShellIntent:
    """Parse ``command`` and return the files it writes and the programs it runs. Never raises.

    Memoised: the collector judges a command for its findings and for its flow categories, and agents
    repeat commands. The result is shared between callers, so treat it as read-only.
    """
    if not isinstance(command, str):
        return ShellIntent()
    return _analyze(command, _text_or_none(cwd), _text_or_none(home))


def _text_or_none(value: object) -> str | None:
    """cwd/home from span attributes: anything but a string is unknown (and would not hash for the cache)."""
    return value if isinstance(value, str) else None


@functools.lru_cache(maxsize=4096)
def _analyze(command: str, cwd: str | None, home: str | None) -> ShellIntent:
    intent = ShellIntent()
    if not command or not command.strip():
        return intent
    ctx = _Ctx(cwd=_clean_dir(cwd), home=_clean_dir(home), heredocs={}, intent=intent)
    try:
        _run_script(command, ctx)
    except Exception as exc:  # the analyser must never take a tool call down with it
        intent.notes.append(f"analysis aborted: {type(exc).__name__}")
    return intent


def _clean_dir(value: object) -> str | None:
    """cwd/home come from span attributes: accept only a non-empty string, without a trailing slash."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return None
    value = value.strip()
    return value.rstrip("/") or "/"


def resolve_path(raw: str, cwd: str | None = None, home: str | None = None) -> str:
    """Expand ``~``/``~user``/``$HOME`` and make ``raw`` absolute against ``cwd``; keeps ``~`` if home is unknown."""
    p = raw.strip()
    if not p:
        return p
    if re.match(r"^[A-Za-z]:[\\/]", p):  # Windows path: normalise separators, nothing to resolve
        return p[0].upper() + p[1:].replace("\\", "/")
    p = _VAR_RE.sub(lambda m: (home or "~") if (m.group(1) or m.group(2)) == "HOME" else m.group(0), p)
    if p == "~" or p.startswith("~/"):
        p = (home or "~") + p[1:]
    elif p.startswith("~") and re.match(r"^~[a-z_][\w.-]*(/|$)", p):
        user, _, rest = p[1:].partition("/")
        p = ("/root" if user == "root" else f"/home/{user}") + ("/" + rest if rest else "")
    if not p.startswith(("/", "~")) and cwd:
        p = posixpath.join(resolve_path(cwd, None, home), p)
    p = posixpath.normpath(p)
    if p.startswith("//"):
        p = "/" + p.lstrip("/")
    return p


# --- script level -----------------------------------------------------------------------------------------


def _run_script(text: str, ctx: _Ctx) -> None:
    text = _extract_heredocs(text, ctx)
    pipelines, parser = _parse(text)
    if ctx.depth == 0:
        ctx.intent.parser = parser
    elif parser != "bashlex" and "+fallback" not in ctx.intent.parser:
        ctx.intent.parser += "+fallback"
    if parser != "bashlex":
        ctx.intent.notes.append(f"bashlex could not parse{' nested code' if ctx.depth else ''}; used {parser}")
    for pipeline in pipelines:
        _run_pipeline(pipeline, ctx, stdin=None)


def _extract_heredocs(text: str, ctx: _Ctx) -> str:
    """Cut heredoc bodies out of the script and replace ``<<EOF`` with ``< PLACEHOLDER``.

    bashlex rejects quoted delimiters (``<<'EOF'``, the form agents use most) and the fallback splitter
    knows nothing of heredocs, so both parsers get a heredoc-free script and the body travels on the side.
    """
    if "<<" not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        pending: list[tuple[str, bool]] = []

        def _sub(m: re.Match[str], pending: list[tuple[str, bool]] = pending) -> str:
            index = len(ctx.heredocs) + len(pending)
            pending.append((m.group(3), m.group(1) == "-"))
            return "< " + _HEREDOC_TOKEN.format(index)

        out.append(_HEREDOC_RE.sub(_sub, line))
        i += 1
        for delimiter, strip_tabs in pending:
            body: list[str] = []
            while i < len(lines):
                candidate = lines[i].lstrip("\t") if strip_tabs else lines[i]
                i += 1
                if candidate.rstrip("\r") == delimiter:
                    break
                body.append(candidate)
            ctx.heredocs[len(ctx.heredocs)] = "\n".join(body) + ("\n" if body else "")
    return "\n".join(out)


def _parse(text: str) -> tuple[list[_Pipeline], str]:
    if len(text) <= MAX_BASHLEX_CHARS:
        # Imported here: bashlex builds its parser tables at import (~90 ms), a Read or an Edit never parses.
        import bashlex

        try:
            nodes = bashlex.parse(text)
            pipelines: list[_Pipeline] = []
            for node in nodes:
                _collect(node, pipelines)
            return pipelines, "bashlex"
        except Exception:  # ParsingError, NotImplementedError, RecursionError ...: all mean "fall back"
            pass
    return _fallback_parse(text)


# --- bashlex AST -> pipelines -------------------------------------------------------------------------------


def _collect(node: object, out: list[_Pipeline]) -> None:
    """Append the pipelines found under ``node`` to ``out``, in execution order."""
    kind = getattr(node, "kind", "")
    if kind == "pipeline":
        stages = [s for part in node.parts if (s := _stage(part, out)) is not None]  # type: ignore[attr-defined]
        if stages:
            out.append(stages)
    elif kind in ("command", "compound"):
        stage = _stage(node, out)
        if stage is not None:
            out.append([stage])
    elif kind in ("list", "if", "for", "while", "until", "function"):
        for part in getattr(node, "parts", []):
            _collect(part, out)
    elif kind in ("commandsubstitution", "processsubstitution"):
        _collect(node.command, out)  # type: ignore[attr-defined]


def _stage(node: object, out: list[_Pipeline]) -> _Stage | None:
    kind = getattr(node, "kind", "")
    if kind == "command":
        return _command(node, out)
    if kind == "compound":
        body: list[_Pipeline] = []
        for part in getattr(node, "list", []):
            _collect(part, body)
        redirects = [r for n in getattr(node, "redirects", []) or [] if (r := _redirect(n, out))]
        return _Group(body, redirects)
    if kind in ("if", "for", "while", "until", "function", "list"):
        body = []
        _collect(node, body)
        return _Group(body, [])
    return None


def _command(node: object, out: list[_Pipeline]) -> _Cmd:
    cmd = _Cmd(words=[], redirects=[])
    for part in getattr(node, "parts", []):
        kind = getattr(part, "kind", "")
        _lift_substitutions(part, out)
        if kind == "word":
            cmd.words.append(part.word)  # type: ignore[attr-defined]
        elif kind == "assignment":
            if cmd.words:  # after the command name it is an argument (sudo VAR=x cmd)
                cmd.words.append(part.word)  # type: ignore[attr-defined]
            else:
                cmd.assigns.append(part.word)  # type: ignore[attr-defined]
        elif kind == "redirect":
            redirect = _redirect(part, out)
            if redirect:
                cmd.redirects.append(redirect)
            heredoc = getattr(part, "heredoc", None)
            if heredoc is not None:
                cmd.heredoc = _strip_heredoc_end(heredoc.value)
    return cmd


def _lift_substitutions(node: object, out: list[_Pipeline]) -> None:
    """``$(...)``, backticks and ``<(...)`` run before their command: analyse them as commands too."""
    for part in getattr(node, "parts", []) or []:
        if getattr(part, "kind", "") in ("commandsubstitution", "processsubstitution"):
            _collect(part.command, out)  # type: ignore[attr-defined]
        else:
            _lift_substitutions(part, out)
    output = getattr(node, "output", None)
    if output is not None and not isinstance(output, int):
        _lift_substitutions(output, out)


def _redirect(node: object, out: list[_Pipeline]) -> tuple[str, str] | None:
    output = getattr(node, "output", None)
    if output is None or isinstance(output, int):
        return None  # 2>&1 and friends duplicate descriptors, they name no file
    return (getattr(node, "type", ""), getattr(output, "word", ""))


def _strip_heredoc_end(value: str) -> str:
    lines = value.split("\n")
    return "\n".join(lines[:-1]) + "\n" if len(lines) > 1 else value


# --- fallback: shlex per ; | && || & newline -------------------------------------------------------------------

_REDIRECT_OPS = {">", ">>", ">|", "&>", "&>>", "<", "<<<", "<>"}
_SEPARATORS = {";", "&&", "||", "&", "\n", "(", ")", "{", "}", ";;"}


def _fallback_parse(text: str) -> tuple[list[_Pipeline], str]:
    text = re.sub(r"(?<=\s)\d+(?=>)", "", text)  # "2>/dev/null" -> ">/dev/null": fds do not matter here
    text = re.sub(r"\d*>&\d+", "", text)
    tokens, parser = _tokenize(text)
    pipelines: list[_Pipeline] = []
    stages: list[_Stage] = []
    cmd = _Cmd(words=[], redirects=[])

    def _end_command() -> None:
        nonlocal cmd
        if cmd.words or cmd.redirects or cmd.assigns:
            stages.append(cmd)
        cmd = _Cmd(words=[], redirects=[])

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _REDIRECT_OPS and i + 1 < len(tokens):
            cmd.redirects.append((tok, tokens[i + 1]))
            i += 2
            continue
        if tok == "|":
            _end_command()
        elif tok in _SEPARATORS or tok in ("[[", "]]"):
            _end_command()
            if stages:
                pipelines.append(stages)
                stages = []
        elif not cmd.words and re.match(r"^[A-Za-z_]\w*=", tok):
            cmd.assigns.append(tok)
        elif not cmd.words and tok in ("if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!"):
            pass  # keywords in front of a command
        else:
            cmd.words.append(tok)
        i += 1
    _end_command()
    if stages:
        pipelines.append(stages)
    return pipelines, parser


def _tokenize(text: str) -> tuple[list[str], str]:
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>\n")
        lexer.whitespace = " \t\r"
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer), "shlex-fallback"
    except ValueError:  # unbalanced quotes: a plain split still finds "> file" and program names
        return re.findall(r"[;&|<>()\n]+|[^\s;&|<>()]+", text), "split-fallback"


# --- interpretation -------------------------------------------------------------------------------------------


def _run_pipeline(pipeline: _Pipeline, ctx: _Ctx, stdin: str | None) -> str | None:
    """Run each stage with the previous stage's known output as stdin; return the last stage's output."""
    data = stdin
    for stage in pipeline:
        data = _run_group(stage, ctx, data) if isinstance(stage, _Group) else _run_cmd(stage, ctx, data)
    return data


def _run_group(group: _Group, ctx: _Ctx, stdin: str | None) -> str | None:
    outputs = [o for p in group.body if (o := _run_pipeline(p, ctx, stdin)) is not None]
    output = "".join(outputs) if outputs else None
    _record_redirects(group.redirects, ctx, output, "{ ... }")
    return output


def _run_cmd(cmd: _Cmd, ctx: _Ctx, stdin: str | None) -> str | None:
    argv = [_expand(w, ctx) for w in cmd.words]
    if not argv:
        for assign in cmd.assigns:  # F=~/.ssh/authorized_keys; echo k >> $F
            _assign(assign, ctx)
        _record_redirects(cmd.redirects, ctx, None, "redirect")
        return None
    stdin = _stdin_from_redirects(cmd, ctx, stdin)
    argv = _strip_prefixes(argv, ctx)
    output = _stdout_of(argv, stdin) if argv else None
    _record_redirects(cmd.redirects, ctx, output, _prog(argv[0]) if argv else "redirect")
    if argv:
        ctx.intent.invocations.append(Invocation(tuple(argv), stdin, ctx.cwd, ctx.remote))
        _effects(argv, ctx, stdin)
    return output


def _stdin_from_redirects(cmd: _Cmd, ctx: _Ctx, stdin: str | None) -> str | None:
    if cmd.heredoc is not None:
        stdin = cmd.heredoc
    for op, target in cmd.redirects:
        if op == "<<<":
            stdin = _expand(target, ctx) + "\n"
        elif op == "<" and (m := _PLACEHOLDER_RE.fullmatch(target)):
            stdin = ctx.heredocs.get(int(m.group(1)), "")
    return stdin


def _record_redirects(redirects: list[tuple[str, str]], ctx: _Ctx, content: str | None, who: str) -> None:
    for op, target in redirects:
        if op not in (">", ">>", ">|", "&>", "&>>", "<>"):
            continue
        raw = _expand(target, ctx)
        if not raw or raw.startswith("/dev/") or _PLACEHOLDER_RE.fullmatch(raw):
            continue
        action = "append" if op.endswith(">>") else "write"
        _add_write(ctx, raw, action, f"redirect {op} to {raw} ({who})", content)


def _add_write(
    ctx: _Ctx, raw: str, action: str, evidence: str, content: str | None = None, alt: str | None = None
) -> None:
    path = _resolve(raw, ctx)
    if not path:
        return
    alt_path = _resolve(alt, ctx) if alt else None
    if content is not None:
        content = content[:MAX_CONTENT]
    if ctx.via:
        evidence += " via " + " > ".join(ctx.via)
    ctx.intent.writes.append(FileWrite(path, action, evidence[:200], content, alt_path))


def _resolve(raw: str, ctx: _Ctx) -> str:
    if ctx.remote:  # ssh HOST CMD: relative paths start in the remote home, which we do not know
        raw = raw if raw.startswith(("/", "~")) else "~/" + raw
        return resolve_path(raw, None, None)
    return resolve_path(raw, ctx.cwd, ctx.home)


def _expand(word: str, ctx: _Ctx) -> str:
    """Expand the parameters we can know: $HOME and variables assigned earlier in the same script."""
    if "$" not in word:
        return word

    def _sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "HOME":
            return "~" if ctx.remote else (ctx.home or "~")
        return ctx.env.get(name, m.group(0))

    return _VAR_RE.sub(_sub, word)


def _assign(assign: str, ctx: _Ctx) -> None:
    name, _, value = assign.partition("=")
    if re.fullmatch(r"[A-Za-z_]\w*", name) and len(ctx.env) < 256:
        ctx.env[name] = _expand(value, ctx)


# --- prefixes ---------------------------------------------------------------------------------------------------

# prefix -> options of that prefix that take a value (so "sudo -u bob crontab f" runs "crontab f")
_PREFIXES: dict[str, frozenset[str]] = {
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


def _strip_prefixes(argv: list[str], ctx: _Ctx) -> list[str]:
    for _ in range(8):  # sudo env nohup timeout 5 crontab f: bounded, prefixes do not nest forever
        if not argv:
            return argv
        prog = _prog(argv[0])
        if prog == "command" and len(argv) > 1 and argv[1] in ("-v", "-V"):
            return []  # "command -v crontab" only looks the program up
        if prog not in _PREFIXES:
            return argv
        value_opts = _PREFIXES[prog]
        i = 1
        while i < len(argv):
            tok = argv[i]
            if tok == "--":
                i += 1
                break
            if prog == "env":
                _env_chdir(argv, i, ctx)
            if prog == "sudo" and (tok in ("-e", "--edit") or re.fullmatch(r"-[a-zA-Z]*e", tok)):
                return ["sudoedit", *argv[i + 1 :]]  # sudo -e FILE is sudoedit FILE
            if tok.startswith("-") and len(tok) > 1:
                i += 2 if tok in value_opts else 1
                continue
            if re.match(r"^[A-Za-z_]\w*=", tok):  # sudo EDITOR='tee -a' visudo, env FOO=1 cmd
                i += 1
                continue
            break
        if prog in _DURATION_PREFIXES and i < len(argv):
            i += 1
        if prog == "nice" and i < len(argv) and re.fullmatch(r"-?\d+", argv[i]):
            i += 1
        argv = argv[i:]
    return argv


def _env_chdir(argv: list[str], i: int, ctx: _Ctx) -> None:
    """env -C DIR / --chdir=DIR runs the command elsewhere: relative paths move with it."""
    tok = argv[i]
    target = None
    if tok in ("-C", "--chdir") and i + 1 < len(argv):
        target = argv[i + 1]
    elif tok.startswith("--chdir="):
        target = tok.split("=", 1)[1]
    if target and not ctx.remote:
        ctx.cwd = resolve_path(target, ctx.cwd, ctx.home)


def _prog(word: str) -> str:
    name = word.lstrip("\\").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    return name[:-4] if name.endswith(".exe") else name


# --- what a command prints (so pipelines carry known content) ------------------------------------------------


def _stdout_of(argv: list[str], stdin: str | None) -> str | None:
    prog = _prog(argv[0])
    args = argv[1:]
    if prog == "echo":
        while args and re.fullmatch(r"-[neE]+", args[0]):
            args = args[1:]
        return _unescape(" ".join(args)) + "\n"
    if prog == "printf":
        return _printf(args)
    if prog in ("cat", "tee", "tac") and not [a for a in args if not a.startswith("-")]:
        return stdin
    if prog == "tee":
        return stdin
    if prog in ("base64", "openssl", "basenc") and _decodes(args):
        return _b64decode(stdin) if stdin else None  # base64 -d FILE reads a file we cannot see
    if prog == "xxd" and "-r" in args and stdin:
        try:
            return _bytes_to_text(binascii.unhexlify(re.sub(r"\s+", "", stdin)))
        except (binascii.Error, ValueError):
            return None
    if (prog in ("gunzip", "zcat") or (prog == "gzip" and "-d" in args)) and stdin:
        try:
            return _bytes_to_text(gzip.decompress(stdin.encode("latin-1")))
        except Exception:
            return None
    if prog == "rev" and stdin:
        return "\n".join(line[::-1] for line in stdin.split("\n"))
    return None


def _decodes(args: list[str]) -> bool:
    return any(a in ("-d", "-D", "--decode", "-decode") or re.fullmatch(r"-[a-zA-Z]*d[a-zA-Z]*", a) for a in args)


def _b64decode(text: str) -> str | None:
    compact = re.sub(r"\s+", "", text)
    if not compact:
        return None
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None
    return _bytes_to_text(raw)


def _bytes_to_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # round-trips binary (gzip) for the next stage


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _printf(args: list[str]) -> str | None:
    if not args:
        return None
    fmt, rest = _unescape(args[0]), list(args[1:])
    if not rest:
        return fmt
    pieces = fmt.split("%s") if "%s" in fmt else fmt.split("%b")
    if len(pieces) == 1:
        return fmt + "".join(rest)
    out = pieces[0]
    for i, piece in enumerate(pieces[1:]):
        out += (rest[i] if i < len(rest) else "") + piece
    return out + ("".join(rest[len(pieces) - 1 :]) if len(rest) >= len(pieces) else "")


# --- per-program effects ----------------------------------------------------------------------------------------


def _effects(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    prog = _prog(argv[0])
    if re.fullmatch(r"(python|pypy)[\d.]*|py", prog):
        prog = "python"
    handler = _HANDLERS.get(prog)
    if handler is not None:
        handler(argv, ctx, stdin)


def _split_opts(args: list[str], value_opts: frozenset[str] | set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """Split arguments into (options, positionals); options in ``value_opts`` swallow the next token."""
    opts: list[str] = []
    pos: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            pos.extend(args[i + 1 :])
            break
        if tok.startswith("-") and len(tok) > 1:
            opts.append(tok)
            if tok in value_opts and i + 1 < len(args):
                opts.append(args[i + 1])
                i += 1
        else:
            pos.append(tok)
        i += 1
    return opts, pos


def _h_cd(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    target = argv[1] if len(argv) > 1 else "~"
    if target != "-" and not ctx.remote:
        ctx.cwd = resolve_path(target, ctx.cwd, ctx.home)


def _h_export(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    for tok in argv[1:]:
        if "=" in tok:
            _assign(tok, ctx)


def _h_tee(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    opts, files = _split_opts(argv[1:])
    append = any(o in ("-a", "--append") or re.fullmatch(r"-[a-z]*a[a-z]*", o) for o in opts)
    for f in files:
        if not f.startswith("/dev/"):
            _add_write(ctx, f, "append" if append else "write", f"tee{' -a' if append else ''} {f}", stdin)


def _h_sponge(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    opts, files = _split_opts(argv[1:])
    for f in files[:1]:
        _add_write(ctx, f, "append" if "-a" in opts else "write", f"sponge {f}", stdin)


def _h_sed(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    args = argv[1:]
    in_place = any(a.startswith("--in-place") or re.fullmatch(r"-[nrEsuz]*i\S*", a) for a in args)
    if not in_place:
        return
    opts, pos = _split_opts(args, {"-e", "--expression", "-f", "--file", "-l", "--line-length"})
    has_script_opt = any(
        o in ("-e", "--expression", "-f", "--file") or o.startswith(("--expression=", "--file=")) for o in opts
    )
    files = pos if has_script_opt else pos[1:]
    # The sed script is what the edit writes: rules that judge content (CI files, registries) read it.
    scripts = [v for o, v in zip(opts, opts[1:], strict=False) if o in ("-e", "--expression")]
    scripts += [o.split("=", 1)[1] for o in opts if o.startswith("--expression=")]
    script = "\n".join(scripts) if has_script_opt else (pos[0] if pos else None)
    if any(o in ("-f", "--file") or o.startswith("--file=") for o in opts):
        script = None  # the script lives in a file we cannot see
    for f in files:
        _add_write(ctx, f, "edit", f"sed -i {f}", script)


def _h_copy(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    prog = _prog(argv[0])
    value_opts = {
        "-t",
        "--target-directory",
        "-S",
        "--suffix",
        "-m",
        "--mode",
        "-o",
        "--owner",
        "-g",
        "--group",
        "--backup",
        "-Z",
        "--context",
        "--reflink",
        "--sparse",
        "--preserve",
        "--no-preserve",
    }
    if prog == "install":
        value_opts -= {"--preserve"}
    opts, pos = _split_opts(argv[1:], value_opts)
    if prog == "install" and any(o in ("-d", "--directory") for o in opts):
        return  # install -d only creates directories
    target_dir = _opt_value(opts, "-t", "--target-directory")
    action = {"cp": "copy", "mv": "move", "install": "create", "ln": "link", "rsync": "copy", "scp": "copy"}[prog]
    if target_dir is not None:
        for src in pos:
            _add_write(
                ctx,
                posixpath.join(target_dir, posixpath.basename(src.rstrip("/"))),
                action,
                f"{prog} {src} -t {target_dir}",
            )
        return
    if prog == "ln" and len(pos) == 1:  # ln -s TARGET: the link is created in the cwd
        pos = [pos[0], posixpath.basename(pos[0].rstrip("/"))]
    if len(pos) < 2:
        return
    *sources, dest = pos
    if prog in ("scp", "rsync"):
        remote = re.match(r"^(?:[^/@:\s]+@)?[A-Za-z0-9_.\-\[\]]+:(.*)$", dest)
        if remote:  # user@host:PATH plants the file on another host; its relative paths start in $HOME
            path = remote.group(1) or "."
            dest_path = path if path.startswith(("/", "~")) else "~/" + path
            for src in sources:
                alt = posixpath.join(dest_path, posixpath.basename(src.rstrip("/")))
                ctx.intent.writes.append(
                    FileWrite(
                        resolve_path(dest_path), action, f"{prog} {src} -> {dest} (remote)", None, resolve_path(alt)
                    )
                )
            return
    for src in sources:
        alt = posixpath.join(dest, posixpath.basename(src.rstrip("/")))
        if dest.endswith("/") or len(sources) > 1:
            _add_write(ctx, alt, action, f"{prog} {src} {dest}")
        else:
            _add_write(ctx, dest, action, f"{prog} {src} {dest}", alt=alt)


def _h_extract(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    """tar -x / unzip write files of unknown names into a directory: recorded as ``DIR/*``, which a rule
    for the whole directory (``~/.config/systemd/user/**``) matches and a rule for one file name does not."""
    prog, args = _prog(argv[0]), argv[1:]
    if prog == "unzip":
        if any(a in ("-l", "-v", "-t", "-Z", "-z") for a in args):
            return  # list, test, comment: nothing written
        opts, _pos = _split_opts(args, {"-d", "-x", "-P"})
        directory = _opt_value(opts, "-d", "--directory")
    else:
        # mode letters: the old style's first word (tar xzf) or any short-option cluster (-xzf, -C DIR -x)
        clusters = [
            a.lstrip("-") for i, a in enumerate(args) if (a.startswith("-") and not a.startswith("--")) or i == 0
        ]
        if not any("x" in c for c in clusters) and not any(a in ("--extract", "--get") for a in args):
            return  # create, list, append: the archive is the only file written, not an extraction
        opts, _pos = _split_opts(args, {"-C", "--directory", "-f", "--file"})
        directory = _opt_value(opts, "-C", "--directory")
    _add_write(ctx, posixpath.join(directory or ".", "*"), "extract", f"{prog} extracting into {directory or '.'}")


def _opt_value(opts: list[str], short: str, long: str) -> str | None:
    for i, o in enumerate(opts):
        if o in (short, long) and i + 1 < len(opts):
            return opts[i + 1]
        if o.startswith(long + "="):
            return o.split("=", 1)[1]
        if o.startswith(short) and len(o) > len(short) and not o.startswith("--"):
            return o[len(short) :]
    return None


def _h_dd(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    for tok in argv[1:]:
        if tok.startswith("of=") and not tok[3:].startswith("/dev/"):
            _add_write(ctx, tok[3:], "write", f"dd {tok}", stdin)


def _h_curl(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    args = argv[1:]
    for i, tok in enumerate(args):
        target = None
        if tok in ("-o", "--output") and i + 1 < len(args):
            target = args[i + 1]
        elif tok.startswith("--output="):
            target = tok.split("=", 1)[1]
        elif re.fullmatch(r"-[a-zA-Z]*o\S+", tok) and not tok.startswith("--"):
            target = tok.split("o", 1)[1]
        elif re.fullmatch(r"-[a-zA-Z]*o", tok) and i + 1 < len(args):  # -fsSLo FILE
            target = args[i + 1]
        if target and target != "-":
            _add_write(ctx, target, "download", f"curl -o {target}")


def _h_wget(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    args = argv[1:]
    for i, tok in enumerate(args):
        target = None
        if tok in ("-O", "--output-document") and i + 1 < len(args):
            target = args[i + 1]
        elif tok.startswith("--output-document="):
            target = tok.split("=", 1)[1]
        elif tok.startswith("-O") and len(tok) > 2:
            target = tok[2:]
        if target and target != "-":
            _add_write(ctx, target, "download", f"wget -O {target}")


def _h_editor(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    prog = _prog(argv[0])
    opts, files = _split_opts(argv[1:], {"-c", "-S", "-u", "-i", "-T", "--cmd"})
    if prog == "view" or "-R" in opts or "-M" in opts:
        return  # read-only modes
    for f in files:
        if not f.startswith("+"):
            _add_write(ctx, f, "edit", f"{prog} {f}")


def _h_sudo_edit(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    _opts, files = _split_opts(argv[1:], {"-u", "-g"})
    for f in files:
        _add_write(ctx, f, "edit", f"sudoedit {f}")


def _h_touch(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    """``touch FILE`` creates FILE when it is missing: planting an empty marker is a write too (emond, StartupItems)."""
    opts, pos = _split_opts(argv[1:], {"-r", "--reference", "-d", "--date", "-t"})
    for f in pos:
        _add_write(ctx, f, "create", f"touch {f}", "")


def _h_plutil(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    """``plutil -insert/-replace/-remove/-convert ... FILE [-o OUT]`` edits FILE in place, or writes OUT."""
    args = argv[1:]
    if not any(a in ("-insert", "-replace", "-remove", "-convert", "-create") for a in args):
        return
    if "-o" in args and args.index("-o") + 1 < len(args):
        out = args[args.index("-o") + 1]
        if out != "-":
            _add_write(ctx, out, "edit", f"plutil -o {out}")
        return
    if args and not args[-1].startswith("-"):
        _add_write(ctx, args[-1], "edit", f"plutil {args[-1]}")


def _h_chmod(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    opts, pos = _split_opts(argv[1:], {"--reference"})
    # "-x" style modes look like options to the splitter; recover "+x"/"u+x"/"755" as the first positional.
    if not pos:
        return
    mode, files = pos[0], pos[1:]
    if not _mode_sets_exec(mode):
        return
    for f in files:
        _add_write(ctx, f, "chmod", f"chmod {mode} {f}")


def _mode_sets_exec(mode: str) -> bool:
    if re.fullmatch(r"[0-7]{3,4}", mode):
        return any(int(d) & 1 for d in mode[-3:])
    return any(re.fullmatch(r"[ugoa]*[+=][rwxXst]*x[rwxXst]*", part) for part in mode.split(","))


def _h_shell(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
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
    label = f"{_prog(argv[0])} -c"
    if code is None and not script_file and stdin:
        code = stdin  # echo ... | sh, bash <<EOF, curl ... | base64 -d | sh
        label = f"stdin of {_prog(argv[0])}"
    if code:
        _nested(code, ctx, label)


def _h_eval(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    _nested(" ".join(argv[1:]), ctx, "eval")


def _h_su(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    args = argv[1:]
    for i, tok in enumerate(args):
        if tok in ("-c", "--command") and i + 1 < len(args):
            _nested(args[i + 1], ctx, "su -c")
            return
        if tok.startswith("--command="):
            _nested(tok.split("=", 1)[1], ctx, "su -c")
            return


def _h_ssh(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
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
        _nested(" ".join(remote), ctx, f"ssh {args[i] if i < len(args) else ''}".strip())
    finally:
        ctx.remote, ctx.cwd = saved


def _h_find(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
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
                _effects(inner, ctx, None)


def _h_interpreter(argv: list[str], ctx: _Ctx, stdin: str | None) -> None:
    """python -c / perl -e / node -e / ruby -e / php -r: look for file writes in the code string."""
    prog = _prog(argv[0])
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
            _analyze_code(code, lang, ctx)
    finally:
        ctx.via.pop()
    # perl -pi -e '...' FILE edits FILE in place
    if lang == "perl" and any(re.fullmatch(r"-[a-zA-Z]*i\S*", a) for a in args):
        for f in rest:
            _add_write(ctx, f, "edit", f"perl -i {f}")


def _nested(code: str, ctx: _Ctx, label: str = "nested code") -> None:
    if ctx.depth >= MAX_DEPTH or not code.strip():
        return
    saved_depth = ctx.depth
    ctx.depth += 1
    ctx.via.append(label)
    try:
        _run_script(code, ctx)
    finally:
        ctx.depth = saved_depth
        ctx.via.pop()


# --- inline code heuristics (python / perl / node / ruby / php) ---------------------------------------------------

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


def _analyze_code(code: str, lang: str, ctx: _Ctx) -> None:
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
            _add_write(ctx, path, "copy", f"{lang} {m.group(0).rstrip('( ')} -> {path}")
    for m in _PATHLIB_WRITE.finditer(code):
        args = _call_args(code, m.end("args"))
        tail = code[m.end("args") : m.end("args") + 400]
        close = _matching_paren(tail)
        after = tail[close + 1 : close + 80] if close >= 0 else ""
        if args and re.match(r"\s*(\.expanduser\(\))?\s*\.(write_text|write_bytes|open\(\s*['\"][wax+])", after):
            if path := _eval_path(args[0], assigns):
                _add_write(ctx, path, "write", f"{lang} Path({path}).write")
    for m in re.finditer(
        rf"(?P<expr>{_HOME_TOKEN}(?:\s*/\s*{_STR})+)\s*\)?\s*\.(?:write_text|write_bytes|open\(\s*['\"][wax+])", code
    ):
        if path := _eval_path(m.group("expr"), assigns):
            _add_write(ctx, path, "write", f"{lang} write to {path}")
    for m in _RUN_CALLS.finditer(code):
        args = _call_args(code, m.end("args"))
        if args:
            _code_run(args, ctx)
    for m in _B64_CALLS.finditer(code):
        # exec(base64.b64decode('...')) / os.system(b64decode(...)): the payload is code or a shell line
        decoded = _b64decode(m.group("s")[1:-1])
        if decoded and sum(c.isprintable() or c.isspace() for c in decoded) > 0.9 * len(decoded):
            saved = ctx.depth
            ctx.depth += 1
            ctx.via.append("base64 literal in inline code")
            try:
                _analyze_code(decoded, lang, ctx)
                _run_script(decoded, ctx)
            finally:
                ctx.depth = saved
                ctx.via.pop()


def _code_open(args: list[str], lang: str, ctx: _Ctx, assigns: dict[str, str], call: str) -> None:
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
        _add_write(ctx, path, action, f"{lang} {call.rstrip('( ')}({path}, {mode or 'w'})")


def _perl_open(args: list[str], ctx: _Ctx, assigns: dict[str, str]) -> None:
    if len(args) >= 3:  # open(my $fh, '>>', $path)
        mode = args[1].strip().strip("'\"")
        if mode.startswith((">", "+")) and (path := _eval_path(args[2], assigns)):
            _add_write(ctx, path, "append" if mode.startswith(">>") else "write", f"perl open {mode} {path}")
        return
    if len(args) == 2:  # open(FH, ">>/root/.ssh/authorized_keys")
        m = re.fullmatch(r"\s*['\"](>>?|\+<|\+>)\s*([^'\"]+)['\"]\s*", args[1])
        if m:
            _add_write(
                ctx, m.group(2), "append" if m.group(1) == ">>" else "write", f"perl open {m.group(1)}{m.group(2)}"
            )


def _code_run(args: list[str], ctx: _Ctx) -> None:
    first = args[0].strip()
    if re.fullmatch(_STR, first):
        _nested(first[1:-1], ctx, "inline code runs a shell command")
        return
    if first.startswith("["):  # subprocess.run(["crontab", "/tmp/x"])
        words = [w[1:-1] for w in re.findall(_STR, first)]
        if words:
            _nested(shlex.join(words), ctx, "inline code runs a command")
    elif re.fullmatch(r"['\"][\w.\-/]+['\"]", first) and len(args) > 1 and args[1].strip().startswith("["):
        words = [first[1:-1]] + [w[1:-1] for w in re.findall(_STR, args[1])]  # spawnSync('crontab', [...])
        _nested(shlex.join(words), ctx, "inline code runs a command")


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


# --- handler table ----------------------------------------------------------------------------------------------

_HANDLERS = {
    "cd": _h_cd,
    "pushd": _h_cd,
    "export": _h_export,
    "tee": _h_tee,
    "sponge": _h_sponge,
    "sed": _h_sed,
    "gsed": _h_sed,
    "cp": _h_copy,
    "mv": _h_copy,
    "tar": _h_extract,
    "gtar": _h_extract,
    "bsdtar": _h_extract,
    "unzip": _h_extract,
    "install": _h_copy,
    "ln": _h_copy,
    "rsync": _h_copy,
    "scp": _h_copy,
    "dd": _h_dd,
    "curl": _h_curl,
    "wget": _h_wget,
    "vi": _h_editor,
    "vim": _h_editor,
    "nvim": _h_editor,
    "nano": _h_editor,
    "emacs": _h_editor,
    "ed": _h_editor,
    "ex": _h_editor,
    "pico": _h_editor,
    "micro": _h_editor,
    "view": _h_editor,
    "sudoedit": _h_sudo_edit,
    "chmod": _h_chmod,
    "touch": _h_touch,
    "plutil": _h_plutil,
    "sh": _h_shell,
    "bash": _h_shell,
    "zsh": _h_shell,
    "dash": _h_shell,
    "ksh": _h_shell,
    "ash": _h_shell,
    "fish": _h_shell,
    "eval": _h_eval,
    "su": _h_su,
    "ssh": _h_ssh,
    "find": _h_find,
    "python": _h_interpreter,
    "perl": _h_interpreter,
    "node": _h_interpreter,
    "nodejs": _h_interpreter,
    "ruby": _h_interpreter,
    "php": _h_interpreter,
    "bun": _h_interpreter,
}
