"""The parser of last resort: shlex tokens split into pipelines on ``; | && || &`` and newlines.

Used when bashlex cannot read the script (``[[ ]]``, ``case``, arithmetic, unbalanced quotes, huge input);
it still finds program names, their arguments and ``> file`` redirections.
"""

from __future__ import annotations

import re
import shlex

from foothold.detections.shell.syntax import Command, Pipeline, Stage

_REDIRECT_OPS = {">", ">>", ">|", "&>", "&>>", "<", "<<<", "<>"}
_SEPARATORS = {";", "&&", "||", "&", "\n", "(", ")", "{", "}", ";;"}


def fallback_parse(text: str) -> tuple[list[Pipeline], str]:
    text = re.sub(r"(?<=\s)\d+(?=>)", "", text)  # "2>/dev/null" -> ">/dev/null": fds do not matter here
    text = re.sub(r"\d*>&\d+", "", text)
    tokens, parser = _tokenize(text)
    pipelines: list[Pipeline] = []
    stages: list[Stage] = []
    cmd = Command(words=[], redirects=[])

    def _end_command() -> None:
        nonlocal cmd
        if cmd.words or cmd.redirects or cmd.assigns:
            stages.append(cmd)
        cmd = Command(words=[], redirects=[])

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
        return [op for tok in lexer for op in _split_operators(tok)], "shlex-fallback"
    except ValueError:  # unbalanced quotes: a plain split still finds "> file" and program names
        return re.findall(r"[;&|<>()\n]+|[^\s;&|<>()]+", text), "split-fallback"


_OPERATOR = re.compile(r"&>>|<<<|;;|&&|\|\||>>|&>|>\||<>|<<|[;&|()<>\n]")


def _split_operators(token: str) -> list[str]:
    """shlex returns a run of punctuation as one token (")\\n", ";;\\n"): split it into the operators it holds."""
    if not token or token.strip(";&|()<>\n"):
        return [token]
    return _OPERATOR.findall(token)
