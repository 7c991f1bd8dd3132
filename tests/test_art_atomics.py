"""Atomic Red Team's Linux and macOS persistence atomics, scored test by test (tests/corpus/art_atomics.yaml).

Why this counterpart is faithful: each case's input is the atomic's own executor command from the upstream
repository (redcanaryco/atomic-red-team, the commit named in the file), with its input arguments at their
defaults, exactly as Invoke-AtomicTest would hand it to a shell, and as an agent's shell tool would receive
it. The list of tests is the upstream indexes' persistence tactic, complete (the counts below are pinned so
that a dropped case fails). What each test should produce was judged from what its command does
(tests/corpus/art_import.py says how), never read off the classifier. The file was not used to tune rules:
rules were written from the techniques, with benign look-alikes in persistence_cases.yaml.

Done-when for issue 15: every Linux persistence atomic that writes something durable is detected, and the
ones that leave nothing behind (a trap in a shell that exits, LD_PRELOAD on one command line) stay silent.
"""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from foothold.detections.classify import classify_path
from foothold.instrumentation.watch import DEFAULT_WATCH
from tests.test_classifier import _run_case
from tests.test_watchlist import _sees

ART = Path(__file__).parent / "corpus" / "art_atomics.yaml"
# Upstream indexes at the pinned commit: tests listed under the persistence tactic, per platform.
PERSISTENCE_TESTS = {"linux": 45, "macos": 35}


def _cases() -> list[dict[str, Any]]:
    return list(yaml.safe_load(ART.read_text("utf-8"))["cases"])


def _kinds(case: dict[str, Any]) -> set[str]:
    if "artifact" in case:  # written by a compiled helper or a script file: the file itself is the evidence
        finding = classify_path(case["artifact"], cwd=case["cwd"], home=case["home"])
        return {finding.kind} if finding else set()
    return {f.kind for f in _run_case(case, {"cwd": case["cwd"], "home": case["home"]})}


def _score(platform: str) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Per upstream test: detected when every case of it gives exactly the expected kinds."""
    tests: dict[str, list[bool]] = {}
    durable: dict[str, bool] = {}
    wrong: list[str] = []
    for case in _cases():
        if case["platform"] != platform:
            continue
        got, want = _kinds(case), set(case["expect"])
        tests.setdefault(case["source"], []).append(got == want)
        durable[case["source"]] = durable.get(case["source"], False) or bool(case["durable"])
        if got != want:
            wrong.append(f"{case['id']}: expected {sorted(want)}, got {sorted(got)}")
    index = {c["source"]: c["index"] for c in _cases() if c["platform"] == platform}
    figures: dict[str, tuple[int, int]] = {}
    for part in ("persistence", "extra"):
        sources = [s for s in tests if index[s] == part and durable[s]]
        figures[part] = (sum(all(tests[s]) for s in sources), len(sources))
    silent = [s for s in tests if not durable[s]]
    figures["not durable, silent"] = (sum(all(tests[s]) for s in silent), len(silent))
    return figures, wrong


def test_every_upstream_persistence_test_has_a_case() -> None:
    cases = _cases()
    per_platform = Counter(
        (c["platform"])
        for c in {(c["source"], c["platform"]): c for c in cases if c["index"] == "persistence"}.values()
    )
    assert dict(per_platform) == PERSISTENCE_TESTS
    for case in cases:
        assert case["guid"] and case["input"], case["id"]
        assert case["durable"] or not case["expect"], case["id"]
        assert case["durable"] or case.get("why"), f"{case['id']}: a test judged not durable says why"


@pytest.mark.parametrize("platform", ["linux", "macos"])
def test_art_atomics(platform: str, capsys: pytest.CaptureFixture[str]) -> None:
    figures, wrong = _score(platform)
    with capsys.disabled():
        for part, (ok, total) in figures.items():
            print(f"\n[art {platform}] {part}: {ok} of {total} tests right", end="")
        for line in wrong:
            print(f"\n[art {platform}]   mismatch {line}", end="")
        print()
    assert wrong == []


def test_artifact_cases_are_watched() -> None:
    """A write the command line cannot show is still seen: its file is on the agent's watch list."""
    for case in _cases():
        if "artifact" in case:
            assert any(_sees(entry.replace("~", case["home"], 1), case["artifact"]) for entry in DEFAULT_WATCH), case


def _shell_cases() -> list[dict[str, Any]]:
    return [c for c in _cases() if c["executor"] in ("sh", "bash") and "artifact" not in c]


@pytest.mark.parametrize("case", _shell_cases(), ids=lambda c: str(c["id"]))
def test_as_invoke_atomic_test_runs_them(case: dict[str, Any]) -> None:
    """Invoke-AtomicTest (Invoke-ExecuteCommand) hands the whole command to its executor as `sh -c CMD` /
    `bash -c CMD`; an agent's tool that wraps commands the same way (quoted with shlex.quote, so every single
    quote becomes '"'"') must not hide them."""
    wrapped = dict(case, input=f"{case['executor']} -c {shlex.quote(case['input'])}")
    assert _kinds(wrapped) == set(case["expect"])
