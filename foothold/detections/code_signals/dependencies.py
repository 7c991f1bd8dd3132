"""New dependencies in a manifest (requirements.txt, package.json, pyproject.toml, Cargo.toml, go.mod)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals.rules import CodeRules

_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*(?:[<>=!~;@ ]|$)")
_JSON_DEP = re.compile(r"""^\s*"(@?[A-Za-z0-9][\w.\-/]*)"\s*:\s*"([^"]*)"\s*,?\s*$""")
_TOML_DEP = re.compile(
    r"""^\s*["']([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*(?:[<>=!~;@ ][^"']*)?["']\s*,?\s*$"""
)
_TOML_TABLE_DEP = re.compile(r"""^\s*([A-Za-z0-9][A-Za-z0-9_\-]*)\s*=\s*(?:["'{])""")
_GO_DEP = re.compile(r"^\s*(?:require\s+)?([a-z0-9.\-]+\.[a-z]{2,}/[\w.\-/]+)\s+v\d")
# fmt: skip below: a word list kept packed (the formatter would put each of ~40 words on its own line)
_NOT_DEPS = frozenset(
    {"name", "version", "description", "main", "license", "author", "type", "module", "private", "scripts",
     "requires-python", "readme", "homepage", "repository", "edition", "build-backend", "python", "test", "start",
     "build", "lint", "dev", "format", "packages", "include", "exclude", "keywords", "authors", "go"}
)  # fmt: skip


def _dependency_names(lines: Iterable[str], path: str) -> set[str]:
    names: set[str] = set()
    for line in lines:
        if line.lstrip().startswith(("#", "//", "-")) and not line.lstrip().startswith("-e"):
            continue
        if path.endswith(".json"):
            m = _JSON_DEP.match(line)
            if m and _looks_like_version(m.group(2)):
                names.add(m.group(1).lower())
        elif path.endswith(".txt"):
            m = _REQ_NAME.match(line)
            if m:
                names.add(m.group(1).lower())
        elif path.endswith(".mod"):
            m = _GO_DEP.match(line)
            if m:
                names.add(m.group(1))
        else:
            m = _TOML_DEP.match(line) or _TOML_TABLE_DEP.match(line) or _REQ_NAME.match(line.strip().strip("\"',"))
            if m:
                names.add(m.group(1).lower())
    return names - _NOT_DEPS


def _looks_like_version(spec: str) -> bool:
    return bool(re.match(r"^(?:[\^~<>=*]|\d|latest|next|workspace:|npm:|git|github:|https?:|file:|link:)", spec))


def new_dependency(added: list[str], removed: list[str], change: CodeChange, _rules: CodeRules) -> str | None:
    new = sorted(_dependency_names(added, change.path) - _dependency_names(removed, change.path))
    return f"new: {', '.join(new[:8])}" if new else None
