"""Script text -> pipelines, with bashlex (a real bash grammar); ``fallback_parse`` when bashlex gives up."""

from __future__ import annotations

import re
import shlex
from typing import Any

from foothold.detections.shell.fallback_parse import fallback_parse
from foothold.detections.shell.simple import parse_simple
from foothold.detections.shell.syntax import Command, Group, Pipeline, Stage

# bashlex is a recursive LALR parser; huge inputs are slow and deep nesting can recurse too far.
MAX_BASHLEX_CHARS = 16_000


def parse(text: str) -> tuple[list[Pipeline], str]:
    """The pipelines of ``text`` in execution order, and the parser that read them (see ShellIntent.parser)."""
    simple = parse_simple(text)  # plain command lines, exactly as bashlex reads them, ~10-20x faster
    if simple is not None:
        return simple, "bashlex"
    if len(text) <= MAX_BASHLEX_CHARS:
        # Imported here: bashlex builds its parser tables at import (~90 ms), a Read or an Edit never parses.
        import bashlex

        for candidate in dict.fromkeys((text, _close_list_substitutions(text))):
            try:
                nodes = bashlex.parse(candidate)
                _dequote_words(nodes, candidate, rewritten=candidate != text)
                pipelines: list[Pipeline] = []
                for node in nodes:
                    _collect(node, pipelines)
                return pipelines, "bashlex"
            except Exception:  # ParsingError, NotImplementedError, RecursionError ...: all mean "fall back"
                continue
    return fallback_parse(text)


# bashlex rejects "$(a || b)" and "$(a && b)" (a list ending at the closing parenthesis) but reads the same
# list with a newline before the parenthesis: "PY=$(command -v python3 || command -v python)" is common.
_LIST_SUBSTITUTION = re.compile(r"\$\(([^()]*(?:\|\||&&)[^()]*)\)")


def _close_list_substitutions(text: str) -> str:
    return _LIST_SUBSTITUTION.sub(lambda m: f"$({m.group(1)}\n)", text)


def _dequote_words(nodes: list[Any], text: str, *, rewritten: bool = False) -> None:
    """bashlex leaves quotes in a word that joins a single-quoted part with a double-quoted quote, the way
    shlex.quote and most tools quote a single quote ('it'"'"'s'): take such words from the text with shlex.
    ``rewritten``: the text went through _close_list_substitutions, whose newlines are taken out again."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not hasattr(node, "kind"):
            continue
        word = getattr(node, "word", None)
        if rewritten and isinstance(word, str) and "\n)" in word:
            node.word = word = word.replace("\n)", ")")
        if node.kind in ("word", "assignment") and isinstance(word, str) and ("'" in word or '"' in word):
            source = text[node.pos[0] : node.pos[1]]
            if "$(" not in source and "`" not in source:
                try:
                    tokens = shlex.split(source)
                except ValueError:
                    tokens = []
                if len(tokens) == 1:
                    node.word = tokens[0]
        stack.extend(v for k, v in vars(node).items() if k not in ("kind", "pos", "word") and not isinstance(v, str))


def _collect(node: object, out: list[Pipeline]) -> None:
    """Append the pipelines found under ``node`` to ``out``, in execution order."""
    kind = getattr(node, "kind", "")
    if kind == "pipeline":
        # bashlex's nodes are untyped (an object here): a pipeline node has .parts, a substitution .command
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
        _collect(node.command, out)  # type: ignore[attr-defined]  # bashlex node, see above


def _stage(node: object, out: list[Pipeline]) -> Stage | None:
    kind = getattr(node, "kind", "")
    if kind == "command":
        return _command(node, out)
    if kind == "compound":
        body: list[Pipeline] = []
        for part in getattr(node, "list", []):
            _collect(part, body)
        redirects = [r for n in getattr(node, "redirects", []) or [] if (r := _redirect(n, out))]
        return Group(body, redirects)
    if kind in ("if", "for", "while", "until", "function", "list"):
        body = []
        _collect(node, body)
        return Group(body, [])
    return None


def _command(node: object, out: list[Pipeline]) -> Command:
    cmd = Command(words=[], redirects=[])
    for part in getattr(node, "parts", []):
        kind = getattr(part, "kind", "")
        _lift_substitutions(part, out)
        if kind == "word":
            cmd.words.append(part.word)
        elif kind == "assignment":
            if cmd.words:  # after the command name it is an argument (sudo VAR=x cmd)
                cmd.words.append(part.word)
            else:
                cmd.assigns.append(part.word)
        elif kind == "redirect":
            redirect = _redirect(part, out)
            if redirect:
                cmd.redirects.append(redirect)
            heredoc = getattr(part, "heredoc", None)
            if heredoc is not None:
                cmd.heredoc = _strip_heredoc_end(heredoc.value)
    return cmd


def _lift_substitutions(node: object, out: list[Pipeline]) -> None:
    """``$(...)``, backticks and ``<(...)`` run before their command: analyse them as commands too."""
    for part in getattr(node, "parts", []) or []:
        if getattr(part, "kind", "") in ("commandsubstitution", "processsubstitution"):
            _collect(part.command, out)
        else:
            _lift_substitutions(part, out)
    output = getattr(node, "output", None)
    if output is not None and not isinstance(output, int):
        _lift_substitutions(output, out)


def _redirect(node: object, out: list[Pipeline]) -> tuple[str, str] | None:
    output = getattr(node, "output", None)
    if output is None or isinstance(output, int):
        return None  # 2>&1 and friends duplicate descriptors, they name no file
    return (getattr(node, "type", ""), getattr(output, "word", ""))


def _strip_heredoc_end(value: str) -> str:
    lines = value.split("\n")
    return "\n".join(lines[:-1]) + "\n" if len(lines) > 1 else value
