"""The parsed script both parsers produce: pipelines of simple commands and ``( ... )``/``{ ... }`` groups;
and the program a command word names."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Command:
    words: list[str]
    redirects: list[tuple[str, str]]  # (operator, target word or here-string text)
    assigns: list[str] = field(default_factory=list)
    heredoc: str | None = None  # bashlex's own heredoc body, when the pre-pass missed it


@dataclass
class Group:
    body: list[list[Stage]]  # pipelines run in order inside ( ... ) or { ... }
    redirects: list[tuple[str, str]]


Stage = Command | Group
Pipeline = list[Stage]


def program_name(word: str) -> str:
    """The program a command word names: no directory, no leading backslash, no ``.exe``, lower case."""
    name = word.lstrip("\\").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    return name[:-4] if name.endswith(".exe") else name
