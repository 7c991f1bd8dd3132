"""The agent's watch list, derived from the persistence path rules (one vocabulary, see persistence.yaml).

A rule glob becomes a watch entry the snapshotter understands (instrumentation/watch.py): a literal path is
watched as that file, ``DIR/*`` as DIR listed one level (``DIR/``), ``DIR/**`` two levels (``DIR/**``).
Globs that cannot be watched by listing a fixed directory (any depth, a glob in a middle segment, Windows)
return None: the tool-call classifier still judges writes to them.
"""

from __future__ import annotations

import functools
import re

from foothold.detections.classify import Rules, load_rules

_GLOB_CHARS = re.compile(r"[*?\[{]")
_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_braces(glob: str) -> list[str]:
    match = _BRACES.search(glob)
    if match is None:
        return [glob]
    head, tail = glob[: match.start()], glob[match.end() :]
    return [out for alt in match.group(1).split(",") for out in expand_braces(head + alt + tail)]


def watch_entry(glob: str) -> str | None:
    """The watch entry that sees writes matching ``glob`` (brace-free), or None when none can cheaply."""
    if re.match(r"^[A-Za-z]:/", glob) or glob.startswith(("*", "/home/*", "/Users/*")):
        return None
    segments = glob.split("/")
    first = next((i for i, seg in enumerate(segments) if _GLOB_CHARS.search(seg)), None)
    if first is None:
        return glob
    parent = "/".join(segments[:first])
    if not parent:
        return None
    if segments[first] == "**":  # two levels; deeper matches (modules/VER/kernel/x.ko) are the classifier's
        return parent + "/**" if first == len(segments) - 1 else None
    if first == len(segments) - 1:
        return parent + "/"
    return None  # a glob in a middle segment (python3*/site-packages/...): no fixed directory to list


def derived_entries(rules: Rules) -> dict[str, list[str]]:
    """Every watchable rule glob (after brace expansion) -> its watch entry, before replace/exclude."""
    out: dict[str, list[str]] = {}
    for rule in rules.paths:
        for raw in rule.globs:
            for glob in expand_braces(raw):
                entry = watch_entry(glob)
                if entry is not None:
                    out.setdefault(entry, []).append(glob)
    return out


@functools.cache
def watch_list() -> tuple[str, ...]:
    """The default watch list: derived entries, with the rule file's `watch.replace` and `watch.exclude` applied."""
    rules = load_rules()
    replace: dict[str, list[str]] = rules.watch.get("replace") or {}
    exclude = set(rules.watch.get("exclude") or ())
    entries: list[str] = []
    for entry in derived_entries(rules):
        for item in replace.get(entry, [entry]):
            if item not in exclude and item not in entries:
                entries.append(item)
    return tuple(_drop_covered(entries))


def _drop_covered(entries: list[str]) -> list[str]:
    """A file or directory already listed by a broader entry (its parent, or grandparent for "/**") is not
    watched twice."""
    depth_of = {
        e.removesuffix("/**").rstrip("/"): 2 if e.endswith("/**") else 1 for e in entries if e.endswith(("/", "/**"))
    }

    def covered(entry: str) -> bool:
        path = entry.removesuffix("/**").rstrip("/")
        parts = path.split("/")
        for up in (1, 2):
            if len(parts) > up:
                parent = "/".join(parts[:-up]) or "/"
                if depth_of.get(parent, 0) >= up + (1 if entry.endswith(("/", "/**")) else 0):
                    return True
        return False

    return [e for e in entries if not covered(e)]


GENERATED = "instrumentation/watch_paths.py"


def render_module() -> str:
    """The agent side's copy of the watch list (loading the rules costs ~0.5 s: too slow for a hook process).
    tests/test_watchlist.py fails when the copy drifts from the rules; regenerate with
    ``python -m foothold.detections.watchlist``."""
    lines = [
        '"""GENERATED from foothold/detections/rules/persistence.yaml by detections/watchlist.py: do not edit.',
        "",
        "Regenerate with `python -m foothold.detections.watchlist`; tests/test_watchlist.py checks it is current.",
        '"""',
        "",
        "DERIVED_WATCH: tuple[str, ...] = (",
        *(f"    {entry!r}," for entry in watch_list()),
        ")",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    from pathlib import Path

    target = Path(__file__).resolve().parents[2] / GENERATED
    target.write_text(render_module(), encoding="utf-8")
    print(f"wrote {len(watch_list())} watch entries to {target}")
