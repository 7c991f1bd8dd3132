"""The parsed script both parsers produce (pipelines of simple commands and ``( ... )``/``{ ... }`` groups),
and how a command's words read: the program a word names, options apart from operands."""

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


def split_options(
    args: list[str], value_opts: frozenset[str] | set[str] = frozenset(), *, keep_values: bool = True
) -> tuple[list[str], list[str]]:
    """Split arguments into (options, positionals); an option in ``value_opts`` takes the next token with it,
    kept after the option in the options list unless ``keep_values`` is False."""
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
                if keep_values:
                    opts.append(args[i + 1])
                i += 1
        else:
            pos.append(tok)
        i += 1
    return opts, pos
