"""Writing a path: the persistence finding its location (and, when known, its content) earns."""

from __future__ import annotations

import functools

from foothold.detections.classify.finding import Finding
from foothold.detections.classify.persistence_rules import PathRule, Rules, load_rules
from foothold.detections.shell import resolve_path


def classify_path(
    path: str, *, cwd: str | None = None, home: str | None = None, action: str = "write", content: str | None = None
) -> Finding | None:
    """The persistence finding for writing ``path`` (resolved against cwd/home), or None."""
    try:
        if not isinstance(path, str) or not path.strip():
            return None
        resolved = resolve_path(path, cwd if isinstance(cwd, str) else None, home if isinstance(home, str) else None)
        findings = path_findings(resolved, action, f"{action} {resolved}", content, "path", home)
        return findings[0] if findings else None
    except Exception:
        return None


def path_findings(
    path: str, action: str, evidence: str, content: str | None, source: str, home: str | None
) -> list[Finding]:
    """The most specific verdict for writing ``path``.

    Content rules (LD_PRELOAD in a start-up file, an MCP server in editor settings) say more than the
    location alone, so when one matches it replaces the location's plain rule; otherwise the first plain
    rule that matches wins. A plain rule with ``risky_content`` (CI files, registry config) fires on known
    content only when that content is risky; unknown content is judged by the location alone.
    """
    rules = load_rules()
    if content is None:  # the verdict on a location alone: locations recur constantly, so it is memoised
        return list(_location_findings(id(rules), path, action, evidence, source, home))
    return _judge_path(rules, path, action, evidence, content, source, home)


@functools.lru_cache(maxsize=8192)
def _location_findings(
    _rules_id: int, path: str, action: str, evidence: str, source: str, home: str | None
) -> tuple[Finding, ...]:
    return tuple(_judge_path(load_rules(), path, action, evidence, None, source, home))


def _judge_path(
    rules: Rules, path: str, action: str, evidence: str, content: str | None, source: str, home: str | None
) -> list[Finding]:
    specific: list[Finding] = []
    plain: Finding | None = None
    for rule in _located(rules, path, home):
        if action == "chmod" and not rule.chmod:
            continue
        if rule.content is None and plain is not None:
            continue
        if rule.content is not None and (content is None or not rule.content.search(content)):
            continue
        if rule.content is None and rule.risky_content is not None and content is not None:
            if not rule.risky_content.search(content):
                plain = _NOT_RISKY  # the location's own rule judged the content harmless: no later plain rule
                continue
        finding = Finding(
            rule.kind, rule.technique, path, action, evidence, source, _severity(rule.kind, rule.severity, content)
        )
        if rule.content is not None:
            specific.append(finding)
        else:
            plain = finding
    if specific:
        return specific
    return [plain] if plain is not None and plain is not _NOT_RISKY else []


def _located(rules: Rules, path: str, home: str | None) -> tuple[PathRule, ...]:
    """The rules whose location (patterns, less excludes) takes ``path``, in rule order.

    Every other rule is skipped by the verdict loop before it looks at anything else, so the loop needs only
    these. They depend on the path alone, and the paths an agent writes recur while their content is new each
    time: memoised, the ~54 location regexes (the largest cost of judging a write) run once per path.
    """
    if rules is not load_rules() or len(path) + len(home or "") > _MEMO_MAX_CHARS:
        return _locate(rules, path, home)
    return _located_memo(path, home)


_MEMO_MAX_CHARS = 4096  # a longer "path" is odd input: judged, not kept


@functools.lru_cache(maxsize=8192)
def _located_memo(path: str, home: str | None) -> tuple[PathRule, ...]:
    return _locate(load_rules(), path, home)


def _locate(rules: Rules, path: str, home: str | None) -> tuple[PathRule, ...]:
    candidates = _match_forms(path, home)
    return tuple(
        rule
        for rule in rules.paths
        if any(rule.pattern.match(c) for c in candidates)
        and not (rule.exclude is not None and any(rule.exclude.match(c) for c in candidates))
    )


_NOT_RISKY = Finding("", "", "", "", "", "")


def _severity(kind: str, override: str | None, content: str | None) -> str:
    """The kind's default severity, or low when the written content is known and plainly benign."""
    rules = load_rules()
    severity = override or rules.severities.get(kind, "medium")
    serious = rules.low_unless.get(kind)
    if serious is not None and content is not None and not serious.search(content):
        return "low"
    return severity


def _match_forms(path: str, home: str | None) -> list[str]:
    """The path itself plus its "~/..." form when it lies under the call's (possibly unusual) home."""
    forms = [path]
    if isinstance(home, str) and home.strip():
        h = home.strip().rstrip("/")
        if h and path.startswith(h + "/"):
            forms.append("~" + path[len(h) :])
    return forms
