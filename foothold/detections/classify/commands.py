"""Shell command lines: the files they write and the persistence commands they run (crontab, systemctl ...)."""

from __future__ import annotations

import functools
import re
from dataclasses import replace

from foothold.detections.classify.finding import Finding, dedupe
from foothold.detections.classify.paths import path_findings
from foothold.detections.classify.persistence_rules import CommandRule, Rules, load_rules
from foothold.detections.shell import FileWrite, Invocation, analyze, resolve_path
from foothold.detections.shell.syntax import program_name, split_options

_SHORT_CLUSTER_RE = re.compile(r"-[A-Za-z]{2,}")
_WORD_SLASH_RE = re.compile(r"^\w+/")

_MAX_COMMAND = 1_000_000  # beyond this a "command" is not a command; analyse only the head


def classify_command(command: str, *, cwd: str | None = None, home: str | None = None) -> list[Finding]:
    """Findings for a shell command line: files it writes and persistence commands it runs."""
    if not isinstance(command, str) or not command.strip():
        return []
    cwd = cwd if isinstance(cwd, str) else None
    home = home if isinstance(home, str) else None
    try:
        if len(command) <= 8192:
            return list(_classify_command_cached(command, cwd, home))
        return _classify_command(command[:_MAX_COMMAND], cwd, home)
    except Exception:
        return []


@functools.lru_cache(maxsize=4096)
def _classify_command_cached(command: str, cwd: str | None, home: str | None) -> tuple[Finding, ...]:
    # Agents repeat the same commands (pytest, git status) many times a session: cache the verdict.
    return tuple(_classify_command(command, cwd, home))


def _classify_command(command: str, cwd: str | None, home: str | None) -> list[Finding]:
    intent = analyze(command, cwd=cwd, home=home)
    findings: list[Finding] = []
    for write in intent.writes:
        findings.extend(_write_findings(write, home))
    rules = load_rules()
    for inv in intent.invocations:
        if program_name(inv.argv[0]) in rules.programs:
            finding = _command_finding(inv, rules, home)
            if finding is not None:
                findings.append(finding)
    return dedupe(findings)


def _write_findings(write: FileWrite, home: str | None) -> list[Finding]:
    found = path_findings(write.path, write.action, write.evidence, write.content, "command", home)
    if not found and write.alt_path:  # cp x /etc/cron.d -> /etc/cron.d/x
        found = path_findings(write.alt_path, write.action, write.evidence, write.content, "command", home)
    return found


def _command_finding(inv: Invocation, rules: Rules, home: str | None) -> Finding | None:
    prog = program_name(inv.argv[0])
    for rule in rules.commands:
        if prog in rule.programs:
            targets = _match_command_rule(rule, list(inv.argv[1:]))
            if targets is None:
                continue
            if rule.stdin_kinds:  # kubectl apply -f - <<EOF: what is applied decides
                kind = next((k for rx, k in rule.stdin_kinds if inv.stdin and rx.search(inv.stdin)), None)
                if kind is None:
                    continue
                rule = replace(rule, kind=kind, technique=rules.techniques[kind])
            return _command_rule_finding(rule, inv, targets, home)
    return None


def _match_command_rule(rule: CommandRule, args: list[str]) -> list[str] | None:
    """None when the rule does not apply, else the raw targets it names."""
    flags, positionals = split_options(args, rule.value_options, keep_values=False)
    if any(_flag_matches(f, rule.reject_flags) for f in flags):
        return None
    rest = positionals
    if rule.verbs:
        verb = next((v for v in rule.verbs if tuple(positionals[: len(v)]) == v), None)
        if verb is None:
            return None
        rest = positionals[len(verb) :]
    if len(rest) < rule.min_positionals:
        return None
    match = None
    if rule.args_regex is not None:
        match = rule.args_regex.search(" ".join(args))
        if match is None:
            return None
    return _targets(rule.target, rest, match)


def _flag_matches(flag: str, rejects: frozenset[str]) -> bool:
    if flag in rejects or flag.split("=", 1)[0] in rejects:
        return True
    # short-option clusters: "-lu" contains "-l"
    if _SHORT_CLUSTER_RE.fullmatch(flag):
        return any(len(r) == 2 and r[0] == "-" and r[1] in flag[1:] for r in rejects)
    return False


def _targets(spec: str, rest: list[str], match: re.Match[str] | None) -> list[str]:
    if spec == "first":
        return rest[:1] or ["?"]
    if spec == "last":
        return rest[-1:] or ["?"]
    if spec == "all":
        return rest or ["?"]
    if spec == "regex":
        group = match.groupdict().get("target") if match else None
        return [group or "?"]
    return [spec]


def _command_rule_finding(rule: CommandRule, inv: Invocation, targets: list[str], home: str | None) -> Finding:
    target = targets[0]
    if target.startswith(("/", "~", "./", "../")) or "/" in target and not _WORD_SLASH_RE.match(target):
        target = resolve_path(target, None if inv.remote else inv.cwd, None if inv.remote else home)
    kind, technique = rule.kind, rule.technique
    for pattern, override in rule.target_kinds:
        if pattern.match(target):
            kind = override
            technique = load_rules().techniques.get(override, technique)
            break
    cmdline = " ".join(inv.argv)
    evidence = f"{rule.why}: {cmdline[:120]}" + (" (remote)" if inv.remote else "")
    if inv.stdin and rule.kind in ("cron", "at_job"):
        evidence += f" <- {inv.stdin.strip()[:80]!r}"
    severity = rule.severity or load_rules().severities.get(kind, "medium")
    return Finding(kind, technique, target, rule.action, evidence, "command", severity)
