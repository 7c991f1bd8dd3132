"""A fast path in front of bashlex for the plain command lines agents run most (``git status``, ``pytest -q``,
``grep -rn 'x' src/ | wc -l``, ``echo '…' >> ~/.bashrc``).

bashlex is a pure-Python LALR parser: ~200 µs a command, the largest per-span cost of ingesting fresh tool
calls (docs/performance.md, round 5). Most agent commands use a tiny part of the grammar, so this tokenizer
reads that part and returns exactly what :mod:`foothold.detections.shell.parse` builds from bashlex's tree for it;
anything outside it (substitutions, ``$(…)``, backticks, backslashes, braces, parentheses, globs in
brackets, background ``&``, reserved words, heredocs, newlines, words mixing quoted and unquoted parts)
returns None and goes to bashlex as before. ``tests/test_shell_simple.py`` checks the equality against
bashlex on the rule corpora and on generated commands.
"""

from __future__ import annotations

import re

from foothold.detections.shell.syntax import Command, Pipeline, Stage

# One token at a time: an operator, a whole single- or double-quoted word, an unquoted word, or a comment.
# Unquoted words hold only characters bash gives no meaning to here; '$' only as $NAME (no ${, $(, $').
_TOKEN = re.compile(
    r"""
    [ \t]+
  | (?P<op>\|\||&&|\||;|(?:[12]?>>|[12]?>&[12](?![^\s;|&<>])|[12]?>|<)(?!>|&|\|))
  | (?P<comment>\#.*)
  | '(?P<single>[^']*)'(?=[\s;|&<>]|$)
  | "(?P<double>[^"$`\\!]*)"(?=[\s;|&<>]|$)
  | (?P<assign>[A-Za-z_][A-Za-z0-9_]*=)(?:'(?P<asingle>[^']*)'|"(?P<adouble>[^"$`\\!]*)")(?=[\s;|&<>]|$)
  | (?P<word>(?:[A-Za-z0-9_./:=@%+,~^*?-]|\$[A-Za-z_])(?:[A-Za-z0-9_./:=@%+,~^*?#-]|\$[A-Za-z_])*)
        (?=[\s;|&<>]|$)
    """,
    re.VERBOSE,
)
# The token's kind from the last group it closed: only assign has inner named groups, and they close after it.
_KIND_OF_GROUP = {
    "op": "op",
    "comment": "comment",
    "single": "single",
    "double": "double",
    "asingle": "assign",
    "adouble": "assign",
    "word": "word",
}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Words that start a compound command or change how the next word is read: bashlex's business.
_RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in", "select"}
    | {"function", "time", "coproc", "{", "}", "!", "[[", "]]"}
)
_SEPARATORS = frozenset({";", "&&", "||"})
_MAX_CHARS = 2000  # longer lines are rare and worth bashlex's full judgement


def parse_simple(text: str) -> list[Pipeline] | None:
    """The pipelines of ``text`` as bashlex would give them, or None when the text is not a plain command line."""
    if len(text) > _MAX_CHARS or "\n" in text or "\r" in text:
        return None
    pipelines: list[Pipeline] = []
    stages: list[Stage] = []
    cmd = Command(words=[], redirects=[])
    redirect: str | None = None  # an operator waiting for its target word
    dangling = False  # the last token was | && or ||
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            return None
        at = match.end()
        kind = _KIND_OF_GROUP.get(match.lastgroup or "")  # no group: whitespace
        if kind is None:  # whitespace
            continue
        if kind == "comment":
            if match.start() and text[match.start() - 1] not in " \t;|&":
                return None  # '#' inside a word is not a comment
            break
        if kind == "op":
            op = match.group("op")
            if redirect is not None:
                return None
            if ">&" in op:  # 2>&1, >&2: duplicates a descriptor, names no file
                if not (cmd.words or cmd.assigns or cmd.redirects):
                    return None  # a command of nothing else: bashlex's shape, not ours
                continue
            if op in (">", ">>", "<", "1>", "1>>", "2>", "2>>"):
                redirect = op.lstrip("12")
                continue
            if not (cmd.words or cmd.assigns or cmd.redirects):
                return None  # an empty command: let bashlex say what it is
            stages.append(cmd)
            cmd = Command(words=[], redirects=[])
            dangling = op != ";"  # a | && || must be followed by a command
            if op in _SEPARATORS:
                pipelines.append(stages)
                stages = []
            continue
        word = _word(match, kind)
        dangling = False
        if kind == "word" and word.isdigit() and text[at : at + 1] in ("<", ">"):
            return None  # 12>f: a descriptor number, not a word
        if redirect is not None:
            cmd.redirects.append((redirect, word))
            redirect = None
        elif not (cmd.words or cmd.redirects) and kind in ("word", "assign") and _ASSIGNMENT.match(word):
            cmd.assigns.append(word)
        elif not cmd.words and word in _RESERVED and kind == "word":
            return None
        else:
            cmd.words.append(word)
    if redirect is not None or dangling:
        return None
    if cmd.words or cmd.assigns or cmd.redirects:
        stages.append(cmd)
    elif stages:
        return None  # a trailing | or && with nothing after it
    if stages:
        pipelines.append(stages)
    return pipelines or None  # only a comment, or nothing: bashlex's verdict


def _word(match: re.Match[str], kind: str) -> str:
    if kind == "assign":
        value = match.group("asingle")
        return match.group("assign") + (value if value is not None else match.group("adouble"))
    return match.group(kind)
