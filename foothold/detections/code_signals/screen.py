"""One RE2 pass over a change's text that says which signals cannot fire, so their Python regexes never run.

The review runs ~100 Python-regex searches per change (every signal's alternation over every line), and
almost every change is ordinary code that none of them matches. The screen compiles every signal's patterns
(``added``, ``removed_only``, and each check's declared ``SCREEN``) into one RE2 Set and runs it once over
the change's lines joined by newlines; a signal whose patterns did not match there is skipped. Each signal
still decides with its own Python regex, so the screen can only skip work, never add a finding.

Skipping must never lose a finding, so every pattern is *relaxed* on its way to RE2, never narrowed: a
string Python's pattern matches, its RE2 form matches too. Lookarounds (RE2 has none) become empty;
counted repeats ``{m,n}`` become ``{min(m, 32),}`` (a smaller DFA); ``.`` matches newlines;
``^``/``$`` match at every line. RE2's ``\\s`` lacks ``\\v`` and ``\\x1c``-``\\x1f``, which Python's has, so
spaces are spelt out. Where Python and RE2 differ beyond that (Unicode ``\\w``, ``\\b``, case folding), the
text is not screened: only ASCII text is (code almost always is), and a non-ASCII change runs every signal.
If RE2's DFA gives up on a text (out of memory), the Set reports nothing; a pattern that always matches is
the Set's first entry, so its absence says so and every signal runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from re import _parser as sre  # type: ignore[attr-defined]  # the stdlib's own parser (typeshed stubs it as sre_parse)
from typing import Any

import re2

_MAX_COUNT = 32  # counted repeats keep at most this many copies in RE2 (the rest becomes a star)
_RE2_MAX_MEM = 32 << 20  # RE2's DFA cache bound (kept for the process); if a text exhausts it, nothing is skipped
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f "  # Python's \s on ASCII text (RE2's \s lacks \v and \x1c-\x1f)
_NOT_SPACE = r"\x00-\x08\x0e-\x1b\x21-\x{10ffff}"
_GAP = rf"(?:\n[{_SPACE}]*)?"  # a line break and the next line's indent, allowed between two characters


@dataclass(frozen=True)
class AcrossLines:
    """A pattern a check tries on a line joined to the next line's stripped text (``line + next.strip()``), so a
    match may run over the line break: screened with a line break and indent allowed between any two
    characters."""

    pattern: re.Pattern[str]


ScreenPattern = re.Pattern[str] | AcrossLines


class Unscreenable(ValueError):
    """A construct RE2 cannot relax (a backreference): the gate it belongs to is never skipped."""


def to_re2(pattern: ScreenPattern) -> str:
    """``pattern`` relaxed to RE2 syntax: it matches every text the Python pattern matches (ASCII text)."""
    across = isinstance(pattern, AcrossLines)
    regex = pattern.pattern if isinstance(pattern, AcrossLines) else pattern
    body = _emit(sre.parse(regex.pattern, regex.flags), across)
    return f"(?i:{body})" if regex.flags & re.IGNORECASE else body


def _emit(items: Iterable[tuple[Any, Any]], across: bool) -> str:
    return "".join(_item(op, av, across) for op, av in items)


def _char(code: int) -> str:
    return f"\\x{{{code:x}}}"


def _item(op: Any, av: Any, across: bool) -> str:
    gap = _GAP if across else ""
    name = str(op)
    if name == "LITERAL":
        return _char(av) + gap
    if name == "NOT_LITERAL":
        return f"[^{_char(av)}]" + gap
    if name == "ANY":
        return "(?s:.)" + gap
    if name == "IN":
        return _class(av) + gap
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, sub = av
        return f"(?:{_emit(sub, across)}){{{min(low, _MAX_COUNT)},}}"
    if name == "SUBPATTERN":
        _group, add_flags, del_flags, sub = av
        flags = ("i" if add_flags & re.IGNORECASE else "") + ("-i" if del_flags & re.IGNORECASE else "")
        return f"(?{flags}:{_emit(sub, across)})"
    if name == "ATOMIC_GROUP":
        return f"(?:{_emit(av, across)})"
    if name == "BRANCH":
        return "(?:" + "|".join(_emit(alt, across) for alt in av[1]) + ")"
    if name in ("ASSERT", "ASSERT_NOT"):
        return ""  # a lookaround only narrows a match: dropped, the screen is wider
    if name == "AT":
        return "" if across else _AT[str(av)]
    if name == "CATEGORY":
        return _CATEGORY[str(av)] + gap
    raise Unscreenable(f"no RE2 form for {name}")


_AT = {
    "AT_BEGINNING": "(?m:^)",
    "AT_BEGINNING_STRING": "(?m:^)",  # the checks try a line at a time: its start is a line's start
    "AT_END": "(?m:$)",
    "AT_END_STRING": "(?m:$)",
    "AT_BOUNDARY": r"\b",
    "AT_NON_BOUNDARY": r"\B",
}
_CATEGORY = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": f"[{_SPACE}]",
    "CATEGORY_NOT_SPACE": f"[{_NOT_SPACE}]",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
_IN_CATEGORY = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": _SPACE,
    "CATEGORY_NOT_SPACE": _NOT_SPACE,
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


def _class(items: Sequence[tuple[Any, Any]]) -> str:
    negate = bool(items) and str(items[0][0]) == "NEGATE"
    parts = []
    for op, av in items[1:] if negate else items:
        name = str(op)
        if name == "LITERAL":
            parts.append(_char(av))
        elif name == "RANGE":
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        elif name == "CATEGORY":
            parts.append(_IN_CATEGORY[str(av)])
        else:
            raise Unscreenable(f"no RE2 form for {name} in a character class")
    return ("[^" if negate else "[") + "".join(parts) + "]"


class Screen:
    """An RE2 Set over the patterns of named gates; ``passed(text)`` names the gates that may match ``text``.

    A gate with no pattern RE2 can take, or any pattern it cannot, always passes (``unscreened``)."""

    def __init__(self, gates: Mapping[str, Sequence[ScreenPattern]]) -> None:
        options = re2.Options()
        options.max_mem = _RE2_MAX_MEM
        options.log_errors = False
        self._set = re2.Set.SearchSet(options)
        self._set.Add("")  # entry 0 always matches: its absence means RE2 gave up on the text
        owners: list[str] = [""]
        unscreened = []
        for gate, patterns in gates.items():
            try:
                relaxed = [to_re2(p) for p in patterns]
                for regex in relaxed:
                    re2.compile(regex, options)  # one RE2 rejects would fail the whole Set: this gate goes unscreened
            except (Unscreenable, re2.error):
                relaxed = []
            if not relaxed:
                unscreened.append(gate)
                continue
            for regex in relaxed:
                self._set.Add(regex)
                owners.append(gate)
        self._set.Compile()
        self._owners = tuple(owners)
        self.every = frozenset(gates)
        self.unscreened = frozenset(unscreened)
        self.screened = self.every - self.unscreened

    def passed(self, text: str) -> frozenset[str]:
        """The gates whose patterns may match ``text`` (all of them when the text cannot be screened)."""
        if not text.isascii():
            return self.every  # Unicode \\w, \\b and case folding differ between Python and RE2
        found = self._set.Match(text.encode())
        if not found or 0 not in found:
            return self.every  # RE2's DFA gave up: nothing is known, so nothing is skipped
        return self.unscreened | frozenset(self._owners[i] for i in found if i)  # entry 0 is no gate's
