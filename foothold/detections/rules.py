"""Loading the alert rules (``rules/alerts.yaml``) and rendering their SQL.

Rendering fills ``{params}`` and ``{allow_*}`` placeholders from the rule file, overridden per deployment,
and leaves the Grafana macros in place: Grafana expands them itself, the evaluator with
:mod:`foothold.detections.macros`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from foothold import semconv
from foothold.collector.schema import sql as schema_sql
from foothold.detections.severity import SEVERITIES

FINDING_COLUMNS = ("finding_key", "session_id", "agent_name", "trace_id", "span_id", "seen_at", "technique", "evidence")
# Rules about something a call did (a write, an egress, code) say what became of it: `outcome` is `written`,
# `ran`, `denied` or `failed` (see OUTCOMES), and `severity` is the rule's own unless the call was refused or
# failed (then its `attempted_severity`). They declare `attempted_severity` and return these two columns last.
OUTCOME_COLUMNS = ("outcome", "severity")
OUTCOMES = {
    "written": "the write was observed (whatever was decided about the call)",
    "ran": "the call ran (not refused, no error)",
    "denied": "refused by a person, a policy or the agent's permission rules; nothing was observed written",
    "failed": "the call failed (error status or a non-zero exit code); nothing was observed written",
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Span names and attribute keys a rule reads from otel_traces, filled from semconv (declared once, in code).
SEMCONV_PLACEHOLDERS = {
    "span_task_end": semconv.TASK_END_SPAN,
    "attr_task_id": semconv.TASK_ID,
    "attr_code_severity": semconv.CODE_SEVERITY,
    "attr_code_findings": semconv.CODE_FINDINGS,
    "attr_tool_result": semconv.GEN_AI_TOOL_CALL_RESULT,
}
# SQL expressions over otel_traces a rule shares with the views (one definition of a span's session).
EXPRESSION_PLACEHOLDERS = {"span_session_id": schema_sql.SESSION_ID}


class RuleError(ValueError):
    """A rule file or override that cannot be used; the message names the rule and the key."""


@dataclass(frozen=True)
class RuleOverride:
    """Deployment settings for one rule (from the collector config)."""

    enabled: bool = True
    severity: str | None = None
    params: Mapping[str, int | float | str] = field(default_factory=dict)
    allow: Mapping[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRule:
    id: str
    title: str
    severity: str
    description: str
    sql_template: str
    params: Mapping[str, Any]
    allow: Mapping[str, list[str]]
    attempted_severity: str | None = None  # set: the rule returns OUTCOME_COLUMNS, this severity when refused

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the rule's SQL returns, in order."""
        return FINDING_COLUMNS + (OUTCOME_COLUMNS if self.attempted_severity else ())

    @property
    def sql(self) -> str:
        """The rule's SQL with params and allow-lists filled in, Grafana macros left for expansion."""
        values = {name: _string(value) for name, value in SEMCONV_PLACEHOLDERS.items()}
        values |= dict(EXPRESSION_PLACEHOLDERS)
        values["severity"] = _string(self.severity)
        if self.attempted_severity:
            values["attempted_severity"] = _string(self.attempted_severity)
        values |= {name: _literal(value) for name, value in self.params.items()}
        values |= {f"allow_{name}": _array(items) for name, items in self.allow.items()}

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise RuleError(f"rule {self.id}: placeholder {{{name}}} has no param or allow-list")
            return values[name]

        return _PLACEHOLDER.sub(fill, self.sql_template)

    def with_override(self, override: RuleOverride) -> AlertRule:
        unknown = (set(override.params) - set(self.params)) | (set(override.allow) - set(self.allow))
        if unknown:
            raise RuleError(
                f"rule {self.id}: unknown setting(s) {sorted(unknown)}; known: "
                f"params {sorted(self.params)}, allow {sorted(self.allow)}"
            )
        severity = override.severity or self.severity
        if severity not in SEVERITIES:
            raise RuleError(f"rule {self.id}: severity must be one of {SEVERITIES}, got {severity!r}")
        return AlertRule(
            self.id,
            self.title,
            severity,
            self.description,
            self.sql_template,
            {**self.params, **override.params},
            {**self.allow, **override.allow},
            self.attempted_severity,
        )


def _literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RuleError(f"rule params must be numbers, got {value!r}")
    return repr(value)


def _string(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _array(items: list[str]) -> str:
    return "CAST([" + ", ".join(_string(item) for item in items) + "] AS Array(String))"


@dataclass(frozen=True)
class ToolCategories:
    """Which tool names, programs and paths make a call untrusted input, execution, egress or a credential read."""

    tools: Mapping[str, tuple[str, ...]]
    programs: Mapping[str, frozenset[str]]
    paths: Mapping[str, tuple[str, ...]]

    def for_tool(self, tool_name: str) -> set[str]:
        name = tool_name.lower()
        return {cat for cat, patterns in self.tools.items() if any(fnmatch.fnmatchcase(name, p) for p in patterns)}

    def for_program(self, program: str) -> set[str]:
        return {cat for cat, programs in self.programs.items() if program in programs}

    def for_path(self, path: str, home: str | None) -> set[str]:
        """Patterns starting with ``~`` match an unexpanded ``~/...``, any /home/USER, /root, or ``home``."""

        def variants(pattern: str) -> tuple[str, ...]:
            if not pattern.startswith("~"):
                return (pattern,)
            homes = ("~", "/home/*", "/root", *((home,) if home else ()))
            return tuple(h + pattern[1:] for h in homes)

        return {
            cat
            for cat, patterns in self.paths.items()
            if any(fnmatch.fnmatchcase(path, v) for p in patterns for v in variants(p))
        }


@cache
def _document() -> dict[str, Any]:
    text = resources.files("foothold.detections").joinpath("rules/alerts.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)  # our own rules file: a mapping of sections
    return document


def load_alert_rules(overrides: Mapping[str, RuleOverride] | None = None) -> list[AlertRule]:
    overrides = dict(overrides or {})
    rules = []
    for raw in _document()["rules"]:
        rule = AlertRule(
            id=raw["id"],
            title=raw["title"],
            severity=raw["severity"],
            description=" ".join(raw["description"].split()),
            sql_template=raw["sql"],
            params=raw.get("params", {}),
            allow=raw.get("allow", {}),
            attempted_severity=raw.get("attempted_severity"),
        )
        if rule.attempted_severity not in (None, *SEVERITIES):
            raise RuleError(f"rule {rule.id}: attempted_severity must be one of {SEVERITIES}")
        override = overrides.pop(rule.id, RuleOverride())
        if override.enabled:
            rules.append(rule.with_override(override))
    if overrides:
        known = [raw["id"] for raw in _document()["rules"]]
        raise RuleError(f"unknown alert rule(s) {sorted(overrides)} in the config; known rules: {known}")
    return rules


@cache
def tool_categories() -> ToolCategories:
    raw = _document()["tool_categories"]
    return ToolCategories(
        tools={cat: tuple(p.lower() for p in spec.get("tools", [])) for cat, spec in raw.items()},
        programs={cat: frozenset(spec.get("programs", [])) for cat, spec in raw.items()},
        paths={cat: tuple(spec.get("paths", [])) for cat, spec in raw.items()},
    )


def markdown_table() -> str:
    """The README's rule table (tests/test_semconv.py checks the README holds exactly this)."""
    rows = [
        f"| `{r.id}` | {r.severity}{f' ({r.attempted_severity} if attempted)' if r.attempted_severity else ''} "
        f"| {r.title} |"
        for r in load_alert_rules()
    ]
    return "\n".join(["| rule | severity | finds |", "| --- | --- | --- |", *rows])
