"""Heredoc bodies cut out of a script before it is parsed; each ``<<EOF`` becomes ``< PLACEHOLDER``."""

from __future__ import annotations

import re

_HEREDOC_TOKEN = "__FOOTHOLD_HEREDOC_{}__"
_HEREDOC_RE = re.compile(r"(?<![<\w])<<(?!<)(-?)[ \t]*(['\"]?)([A-Za-z_][\w.\-]*)\2")
PLACEHOLDER_RE = re.compile(r"__FOOTHOLD_HEREDOC_(\d+)__")


def extract_heredocs(text: str, heredocs: dict[int, str]) -> str:
    """Cut heredoc bodies out of the script into ``heredocs`` and replace ``<<EOF`` with ``< PLACEHOLDER``.

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
            index = len(heredocs) + len(pending)
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
            heredocs[len(heredocs)] = "\n".join(body) + ("\n" if body else "")
    return "\n".join(out)
