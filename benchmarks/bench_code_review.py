"""CPU per change of the code review on real-looking code: the labelled corpus, screened and unscreened.

    python -m benchmarks.bench_code_review [--runs 5]

``bench_stages`` times the code-review processor on the replay templates, whose written files are a few
identical lines; this reviews the code corpus (tests/corpus/code_changes*.yaml: ~760 agent-style changes,
about half benign look-alikes of the backdoors, in a dozen languages) with the RE2 screen on and off, and
divides the best run's ``time.process_time()`` by the changes. The benign half is the case the collector
sees almost always: ordinary code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import print_machine, table

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def _arguments(case: dict[str, Any]) -> dict[str, Any]:
    if case["tool"] == "Write":
        return {"file_path": case["path"], "content": case["content"]}
    if case["tool"] == "Edit":
        return {"file_path": case["path"], "old_string": case["old"], "new_string": case["new"]}
    return {"input": case["patch"]}


def _cpu_per_change(change_sets: list[list[Any]], screened: bool, runs: int) -> float:
    from foothold.detections.code_signals import review_changes

    for changes in change_sets:  # warm-up: rule compilation, path memo
        review_changes(changes, screened=screened)
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        for changes in change_sets:
            review_changes(changes, screened=screened)
        best = min(best, time.process_time() - started)
    return 1e6 * best / max(1, sum(map(len, change_sets)))


def main(argv: list[str] | None = None) -> int:
    from foothold.detections.code_changes import changes_from_tool_call

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_code_review", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print_machine("code review CPU per change, labelled code corpus")
    cases = [case for path in sorted(CORPUS.glob("code_changes*.yaml")) for case in yaml.safe_load(path.read_text())]
    rows = []
    for label in ("benign", "backdoor"):
        sets = [changes_from_tool_call(c["tool"], _arguments(c)) for c in cases if c["label"] == label]
        unscreened = _cpu_per_change(sets, screened=False, runs=args.runs)
        screened = _cpu_per_change(sets, screened=True, runs=args.runs)
        rows.append([label, sum(map(len, sets)), unscreened, screened, f"{unscreened / screened:.1f}×"])
    print(f"\n-- review_changes, CPU µs per change (best of {args.runs}, process_time)")
    print(table(["cases", "changes", "unscreened", "screened", "less CPU"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
