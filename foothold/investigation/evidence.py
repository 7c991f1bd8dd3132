"""How a timeline shows evidence: tool arguments field by field, results in excerpts that keep the telling
lines, and shell commands quoted the way a person would type them. Shared by the terminal and HTML views.

Everything here is display only: the stored text stays as it was recorded (already redacted at ingest).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

# Characters that keep their meaning inside double quotes; without them a double-quoted word reads better
# than POSIX single-quote escaping ('"'"').
_LIVE_IN_DOUBLE_QUOTES = re.compile(r'["$`\\!]')

# Lines worth keeping when a long text is cut: where data goes (a URL or host), what is read from the
# environment, and what runs. They are the usual carriers of exfiltration and persistence in a CI file, a
# script or an injected page, whatever the file type.
_TELLING = re.compile(
    r"://|\$\{?[A-Za-z_]|\$\(|`|\b(curl|wget|nc|ncat|ssh|scp|bash|sh|eval|exec|base64|crontab|sudo)\b"
    r"|authorized_keys|<!--|ignore (all |the )?(previous|above)|AI assistant",
    re.IGNORECASE,
)


def shell_word(word: str) -> str:
    """One shell word a person can read and paste: bare if safe, double quotes if they are inert, else POSIX."""
    quoted = shlex.quote(word)
    if quoted == word or "'" not in word:
        return quoted
    return f'"{word}"' if not _LIVE_IN_DOUBLE_QUOTES.search(word) else quoted


def readable_command(command_line: str) -> str:
    """A recorded command line (``shlex.join`` of argv) re-quoted for reading: ``sh -c "echo 'k' >> f"``."""
    try:
        argv = shlex.split(command_line)
    except ValueError:
        return command_line
    return " ".join(shell_word(word) for word in argv) if argv else command_line


@dataclass(frozen=True)
class Excerpt:
    """Lines to show, with ``None`` where lines were left out, and how many were left out in all."""

    lines: Sequence[str | None]
    omitted: int

    def text(self, gap: str = "⋮") -> str:
        return "\n".join(gap if line is None else line for line in self.lines)


def excerpt(text: str, max_lines: int = 12, max_line_chars: int = 240, head: int = 3, tail: int = 5) -> Excerpt:
    """The whole text when it is short; else its head, its tail and the telling lines in between.

    The tail stays because appended text (a new CI step, a key, a cron line) lands at the end; the telling
    lines because an injection or an exfiltration step can sit anywhere.
    """
    lines = [_cut(line, max_line_chars) for line in text.splitlines()] or [""]
    if len(lines) <= max_lines:
        return Excerpt(lines, 0)
    keep = set(range(head)) | set(range(len(lines) - tail, len(lines)))
    budget = max(max_lines - head - tail, 0)
    for index in range(head, len(lines) - tail):
        if budget and _TELLING.search(lines[index]):
            keep.add(index)
            budget -= 1
    shown: list[str | None] = []
    for index, line in enumerate(lines):
        if index in keep:
            shown.append(line)
        elif shown and shown[-1] is not None:
            shown.append(None)
    return Excerpt(shown, len(lines) - len(keep))


def _cut(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


def argument_fields(arguments: str) -> list[tuple[str, str]]:
    """A call's arguments as (name, value) pairs when they are a JSON object; else one unnamed field."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return [("", arguments)]
    if not isinstance(parsed, dict):
        return [("", arguments)]
    return [(str(k), v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in parsed.items()]
