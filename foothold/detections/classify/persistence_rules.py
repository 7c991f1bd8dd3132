"""The persistence rules (rules/persistence.yaml) compiled: path rules, command rules, kinds and severities."""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from foothold.detections.globs import glob_to_regex

# Any home directory, for "~/" patterns: the call's own home is rewritten to "~" before matching.
_HOME_RE = r"(?:~|/root|/home/[^/]+|/Users/[^/]+|/var/root)"


@dataclass(frozen=True)
class PathRule:
    id: str
    kind: str
    technique: str
    pattern: re.Pattern[str]
    exclude: re.Pattern[str] | None
    content: re.Pattern[str] | None  # rule fires only when the written content is known and matches
    chmod: bool  # making the file executable counts too
    risky_content: re.Pattern[str] | None = None  # known content must match for the rule to fire
    severity: str | None = None  # overrides the kind's default
    globs: tuple[str, ...] = ()  # the patterns as written (the agent's watch list is derived from them)


@dataclass(frozen=True)
class CommandRule:
    id: str
    kind: str
    technique: str
    why: str
    programs: frozenset[str]
    verbs: tuple[tuple[str, ...], ...]
    value_options: frozenset[str]
    reject_flags: frozenset[str]
    args_regex: re.Pattern[str] | None
    min_positionals: int
    target: str
    target_kinds: tuple[tuple[re.Pattern[str], str], ...]
    action: str
    stdin_kinds: tuple[tuple[re.Pattern[str], str], ...] = ()  # the first regex matching stdin decides the kind
    severity: str | None = None


@dataclass(frozen=True)
class Rules:
    techniques: dict[str, str]  # kind -> default technique
    paths: tuple[PathRule, ...]
    commands: tuple[CommandRule, ...]
    programs: frozenset[str] = field(default=frozenset())  # every program some command rule names
    severities: dict[str, str] = field(default_factory=dict)  # kind -> default severity
    low_unless: dict[str, re.Pattern[str]] = field(default_factory=dict)  # kind -> content that keeps it serious
    watch: dict[str, Any] = field(default_factory=dict)  # the `watch:` section: exclude / replace


@functools.cache
def load_rules() -> Rules:
    """Load and compile ``rules/persistence.yaml`` once per process."""
    text = importlib.resources.files("foothold.detections").joinpath("rules/persistence.yaml").read_text("utf-8")
    return compile_rules(yaml.safe_load(text))


def compile_rules(data: dict[str, Any]) -> Rules:
    data = _expand_lists(data)
    techniques = {kind: str(spec["technique"]) for kind, spec in data["kinds"].items()}
    severities = {kind: str(spec.get("severity", "medium")) for kind, spec in data["kinds"].items()}
    low_unless = {
        kind: re.compile(spec["low_unless"]) for kind, spec in data["kinds"].items() if spec.get("low_unless")
    }
    paths = tuple(_compile_path_rule(r, techniques) for r in data.get("paths", []))
    commands = tuple(_compile_command_rule(r, techniques) for r in data.get("commands", []))
    programs = frozenset(p for rule in commands for p in rule.programs)
    return Rules(techniques, paths, commands, programs, severities, low_unless, dict(data.get("watch") or {}))


def _expand_lists(data: dict[str, Any]) -> dict[str, Any]:
    """Falco-style named lists: an item ``"@name"`` in any list is replaced by the items of ``lists.name``."""
    lists: dict[str, list[Any]] = data.get("lists") or {}

    def expand(value: Any) -> Any:
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                if isinstance(item, str) and item.startswith("@"):
                    if item[1:] not in lists:
                        raise ValueError(f"persistence rules: unknown list {item}")
                    out.extend(expand(lists[item[1:]]))
                else:
                    out.append(expand(item))
            return out
        if isinstance(value, dict):
            return {expand(k): expand(v) for k, v in value.items()}
        if isinstance(value, str) and "@{" in value:
            return re.sub(r"@\{(\w+)\}", alternation, value)
        return value

    def alternation(match: re.Match[str]) -> str:
        if match.group(1) not in lists:
            raise ValueError(f"persistence rules: unknown list @{{{match.group(1)}}}")
        return "(?:" + "|".join(re.escape(str(item)) for item in lists[match.group(1)]) + ")"

    return {**data, "paths": expand(data.get("paths", [])), "commands": expand(data.get("commands", []))}


def _compile_path_rule(raw: dict[str, Any], techniques: dict[str, str]) -> PathRule:
    kind = raw["kind"]
    return PathRule(
        id=raw["id"],
        kind=kind,
        technique=str(raw.get("technique") or techniques[kind]),
        pattern=_globs_to_regex(raw["patterns"]),
        exclude=_globs_to_regex(raw["exclude"]) if raw.get("exclude") else None,
        content=re.compile(raw["content"]) if raw.get("content") else None,
        chmod=bool(raw.get("chmod", False)),
        risky_content=re.compile(raw["risky_content"]) if raw.get("risky_content") else None,
        severity=raw.get("severity"),
        globs=tuple(raw["patterns"]),
    )


def _compile_command_rule(raw: dict[str, Any], techniques: dict[str, str]) -> CommandRule:
    kind = raw["kind"]
    return CommandRule(
        id=raw["id"],
        kind=kind,
        technique=str(raw.get("technique") or techniques[kind]),
        why=raw.get("why", raw["id"]),
        programs=frozenset(p.lower() for p in raw["programs"]),
        verbs=tuple(tuple(v.split()) for v in raw.get("verbs", [])),
        value_options=frozenset(raw.get("value_options", [])),
        reject_flags=frozenset(raw.get("reject_flags", [])),
        args_regex=re.compile(raw["args_regex"]) if raw.get("args_regex") else None,
        min_positionals=int(raw.get("min_positionals", 0)),
        target=str(raw.get("target", "first")),
        target_kinds=tuple((_globs_to_regex([g]), k) for g, k in (raw.get("target_kinds") or {}).items()),
        action=str(raw.get("action", "exec")),
        stdin_kinds=tuple((re.compile(rx), k) for rx, k in (raw.get("stdin_kinds") or {}).items()),
        severity=raw.get("severity"),
    )


def _globs_to_regex(globs: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{_glob_to_regex(g)})" for g in globs))


def _glob_to_regex(glob: str) -> str:
    """Translate one rule glob (see the header of persistence.yaml) into an anchored regex."""
    if glob.startswith("~/"):
        prefix, body = _HOME_RE + "/", glob[2:]
    elif glob.startswith("/") or re.match(r"^[A-Za-z]:/", glob):
        prefix, body = "", glob
    else:
        # relative: matches at any depth. A leading "**/" says the same; two "(?:.*/)?" in a row would make
        # the match quadratic in the path's depth (a 50,000-segment path took minutes).
        prefix, body = "(?:.*/)?", glob.removeprefix("**/")
    return "^" + prefix + glob_to_regex(body) + "$"
