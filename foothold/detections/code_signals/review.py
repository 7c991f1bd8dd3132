"""Reviewing a set of code changes: each signal's regex or check run over what was added and removed.

A change's text first goes through the screen (``screen.py``): one RE2 pass over every signal's patterns,
derived here from the same rules, which names the signals that cannot fire; only the others run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals import (
    auth_bypass,
    decode_exec,
    dependencies,
    hardcoded_secret,
    install_hook,
    network,
    obfuscation,
)
from foothold.detections.code_signals.functions import function_header
from foothold.detections.code_signals.rules import CodeRules, Signal, load_code_rules
from foothold.detections.code_signals.screen import AcrossLines, Screen, ScreenPattern

MAX_LINE = 4096  # no regex sees more than this of one line
MAX_LINES = 20_000  # per change


@dataclass(frozen=True)
class CodeFinding:
    signal: str
    severity: str
    technique: str
    title: str
    path: str
    evidence: str
    call_id: str = ""


def review_changes(
    changes: Sequence[CodeChange], rules: CodeRules | None = None, *, screened: bool = True
) -> list[CodeFinding]:
    """Every signal in a set of changes. Checks taken away are counted over the whole set, so an auth check
    moved from one file to another (a refactor) is not reported as removed. ``screened=False`` runs every
    signal's own regexes on every change (the reference the screen is tested against)."""
    rules = rules or load_code_rules()
    plan = _plan(rules)
    findings: list[CodeFinding] = []
    for change in changes:
        findings.extend(_review_one(change, rules, plan, screened))
    removed_gates = plan.removed_passed(changes) if screened else plan.removed.every
    for signal in rules.signals:
        if signal.removed_only is not None and _removed_gate(signal) in removed_gates:
            findings.extend(_removed_checks(signal, changes, rules))
        if signal.kind == "install_hook":
            findings.extend(_scripts_run_at_install(signal, changes, rules))
    return findings


def _scripts_run_at_install(signal: Signal, changes: Sequence[CodeChange], rules: CodeRules) -> list[CodeFinding]:
    return [
        _finding(signal, manifest, evidence, rules)
        for manifest, evidence in install_hook.scripts_run_at_install(changes)
    ]


def _review_one(change: CodeChange, rules: CodeRules, plan: _Plan, screened: bool) -> list[CodeFinding]:
    signals = plan.applicable(change.path)
    if not signals:
        return []
    added = [line[:MAX_LINE] for line in change.added[:MAX_LINES]]
    removed = [line[:MAX_LINE] for line in change.removed[:MAX_LINES]]
    gates = plan.added.passed("\n".join(added)) if screened else plan.added.every
    findings = []
    for signal in signals:
        evidence = None
        if signal.added is not None and _added_gate(signal) in gates:
            evidence = _added_match(signal, added, change, rules)
        if not evidence and signal.kind is not None and _kind_gate(signal.kind) in gates:
            evidence = _CHECKS[signal.kind].run(added, removed, change, rules)
        if evidence:
            findings.append(_finding(signal, change, evidence, rules))
    return findings


def _added_gate(signal: Signal) -> str:
    return f"added:{signal.id}"


def _kind_gate(kind: str) -> str:
    return f"kind:{kind}"


def _removed_gate(signal: Signal) -> str:
    return f"removed:{signal.id}"


class _Plan:
    """What the review derives once from a rule set: the screens over added and removed text (every signal's
    ``added`` and ``removed_only`` regex and every check's ``SCREEN``, so a new signal is screened without
    anyone listing it) and, per path, the signals that apply to it (paths recur all session)."""

    def __init__(self, rules: CodeRules) -> None:
        self.rules = rules
        self.added = Screen(screen_gates(rules))
        self.removed = Screen(
            {_removed_gate(s): (s.removed_only,) for s in rules.signals if s.removed_only is not None}
        )
        self.applicable = lru_cache(maxsize=4096)(self._applicable)

    def _applicable(self, path: str) -> tuple[Signal, ...]:
        return tuple(signal for signal in self.rules.signals if _applies(signal, path, self.rules))

    def removed_passed(self, changes: Sequence[CodeChange]) -> frozenset[str]:
        """The removed-line gates any change's removed lines may match (lines capped as the checks cap them)."""
        passed: frozenset[str] = self.removed.unscreened
        for change in changes:
            if change.removed:
                passed |= self.removed.passed("\n".join(line[:MAX_LINE] for line in change.removed))
        return passed


def screen_gates(rules: CodeRules) -> dict[str, tuple[ScreenPattern, ...]]:
    """Every gate on added text and its patterns: each signal's ``added`` regex, each check's ``SCREEN`` (a check
    without one is a gate with no pattern: never skipped)."""
    gates: dict[str, tuple[ScreenPattern, ...]] = {}
    for signal in rules.signals:
        if signal.added is not None:
            gates[_added_gate(signal)] = (signal.added,)
        if signal.kind is not None:
            screen = _CHECKS[signal.kind].screen
            gates[_kind_gate(signal.kind)] = tuple(p for item in screen or () for p in _screen_patterns(item, rules))
    return gates


_PLANS: dict[int, _Plan] = {}  # by the rule set's identity; the plan holds the rules, so the id stays theirs


def _plan(rules: CodeRules) -> _Plan:
    plan = _PLANS.get(id(rules))
    if plan is None or plan.rules is not rules:
        if len(_PLANS) >= 8:  # rule sets compiled by tests come and go; the loaded one is rebuilt at most once
            _PLANS.clear()
        plan = _PLANS[id(rules)] = _Plan(rules)
    return plan


_OWNER = re.compile(r"\s*(?:export\s+)?(?:public\s+|private\s+)?(?:class|def|function|func|module)\b")


def _added_match(signal: Signal, added: list[str], change: CodeChange, rules: CodeRules) -> str | None:
    """The first added line the signal's regex matches, unless the lines around it (or the file's path) match
    its ``unless`` pattern, e.g. an auth opt-out on a login or health endpoint."""
    assert signal.added is not None
    context = change.after.splitlines() if change.after is not None else added
    for line in added:
        if not signal.added.search(line):
            continue
        if signal.unless is not None:
            at = context.index(line) if line in context else 0
            owner = next((c for c in reversed(context[:at]) if _OWNER.match(c)), "")  # the class or def it is in
            around = "\n".join([owner, *context[at : at + 3]])  # ... and what it annotates
            if signal.unless.search(around) or signal.unless.search(change.path):
                continue
        return line.strip()
    return None


def _applies(signal: Signal, path: str, rules: CodeRules) -> bool:
    if signal.files and not any(_path_matches(rules.paths[name], path) for name in signal.files):
        return False
    return not any(_path_matches(rules.paths[name], path) for name in signal.skip_files)


@lru_cache(maxsize=16384)
def _path_matches(pattern: re.Pattern[str], path: str) -> bool:
    """Every signal asks of every change's path: the same few paths recur all session, so memoised."""
    return pattern.match(path) is not None


def _finding(signal: Signal, change: CodeChange, evidence: str, rules: CodeRules) -> CodeFinding:
    severity = signal.severity
    if signal.in_tests and rules.paths["tests"].match(change.path):
        severity = signal.in_tests
    return CodeFinding(signal.id, severity, signal.technique, signal.title, change.path, evidence[:300], change.call_id)


def _removed_checks(signal: Signal, changes: Sequence[CodeChange], rules: CodeRules) -> list[CodeFinding]:
    """Checks taken away, counted over the whole change set. Not counted: a check whose guarded function was
    deleted with it (nothing is exposed), and any removal when the set now applies a check to everything
    below it (per-route checks moved into middleware, a decorator turned into a mixin)."""
    assert signal.removed_only is not None
    pattern = signal.removed_only
    relevant = [c for c in changes if _applies(signal, c.path, rules)]
    added_text = "\n".join(line[:MAX_LINE] for c in relevant for line in c.added)
    if rules.lists["auth_blankets"].search(added_text):
        return []
    gone: dict[int, list[str]] = {}
    kept = 0
    for n, change in enumerate(relevant):
        removed = [line[:MAX_LINE] for line in change.removed]
        for i, line in enumerate(removed):
            if pattern.search(line) and not _guards_deleted_code(removed, i, added_text):
                gone.setdefault(n, []).append(line.strip())
        kept += sum(1 for line in change.added if pattern.search(line[:MAX_LINE]))
    if sum(map(len, gone.values())) <= kept:
        return []  # as many checks as before, maybe renamed or moved (a refactor)
    return [_finding(signal, relevant[n], "removed: " + " | ".join(lines[:3]), rules) for n, lines in gone.items()]


def _guards_deleted_code(removed: list[str], index: int, added_text: str) -> bool:
    """The check at ``removed[index]`` decorates or opens a function that is gone from the change's result."""
    for line in removed[index : index + 4]:
        header = function_header(line)
        if header:
            return not re.search(rf"\b{re.escape(header.group(1))}\b", added_text)
    return False


@dataclass(frozen=True)
class Check:
    """What a signal's ``kind`` names: the check that computes it, for what a regex over one line cannot see,
    and its screen: rules-list names or regexes, one of which matches the added text whenever ``run`` can
    return a finding (each module says why next to its ``SCREEN``). None: the check always runs."""

    run: Callable[[list[str], list[str], CodeChange, CodeRules], str | None]
    screen: tuple[ScreenItem, ...] | None = None


# A check's screen item: a regex, the name of one of the rules' lists, or regexes built from the rules.
ScreenItem = ScreenPattern | str | Callable[[CodeRules], tuple[ScreenPattern, ...]]


def _screen_patterns(item: ScreenItem, rules: CodeRules) -> tuple[ScreenPattern, ...]:
    if isinstance(item, str):
        return (rules.lists[item],)
    if isinstance(item, (re.Pattern, AcrossLines)):
        return (item,)
    return item(rules)


_CHECKS: dict[str, Check] = {
    "decode_exec": Check(decode_exec.decode_exec, decode_exec.SCREEN),
    "secret_egress": Check(network.secret_egress, network.SECRET_EGRESS_SCREEN),
    "literal_socket": Check(network.literal_socket, network.LITERAL_SOCKET_SCREEN),
    # Not screened here: its verdict is the secret rules' (foothold.redact), whose own RE2 keyword screen runs.
    "hardcoded_secret": Check(hardcoded_secret.hardcoded_secret),
    "auth_bypass": Check(auth_bypass.auth_bypass, auth_bypass.SCREEN),
    "install_hook": Check(install_hook.install_hook, install_hook.SCREEN),
    # Not screened: it applies to manifests only, and any dependency line is its business.
    "new_dependency": Check(dependencies.new_dependency),
    "new_host": Check(network.new_host, network.NEW_HOST_SCREEN),
    "obfuscated": Check(obfuscation.obfuscated, obfuscation.SCREEN),
}
