"""The code review's rules (rules/code.yaml) compiled: named regex lists, path globs, benign hosts, signals."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from foothold.detections.globs import glob_to_regex
from foothold.detections.severity import SEVERITIES


@dataclass(frozen=True)
class Signal:
    id: str
    severity: str
    technique: str
    title: str
    kind: str | None
    added: re.Pattern[str] | None
    removed_only: re.Pattern[str] | None
    unless: re.Pattern[str] | None
    files: tuple[str, ...]
    skip_files: tuple[str, ...]
    in_tests: str | None


@dataclass(frozen=True)
class CodeRules:
    lists: dict[str, re.Pattern[str]]
    paths: dict[str, re.Pattern[str]]
    benign_hosts: re.Pattern[str]
    signals: tuple[Signal, ...]


@cache
def load_code_rules() -> CodeRules:
    text = resources.files("foothold.detections").joinpath("rules/code.yaml").read_text()
    return compile_code_rules(yaml.safe_load(text))


def compile_code_rules(data: dict[str, Any]) -> CodeRules:
    raw_lists: dict[str, list[str]] = data["lists"]
    nocase = set(data.get("case_insensitive", ()))
    alternations = {
        name: ("(?i:" if name in nocase else "(?:") + "|".join(items) + ")" for name, items in raw_lists.items()
    }

    def expand(pattern: str) -> re.Pattern[str]:
        return re.compile(re.sub(r"\{(\w+)\}", lambda m: alternations[m.group(1)], pattern))

    signals = []
    for raw in data["signals"]:
        if raw["severity"] not in SEVERITIES:
            raise ValueError(f"code rule {raw['id']}: severity {raw['severity']!r} is not one of {SEVERITIES}")
        signals.append(
            Signal(
                id=raw["id"],
                severity=raw["severity"],
                technique=raw.get("technique", ""),
                title=raw["title"],
                kind=raw.get("kind"),
                added=expand(raw["added"]) if "added" in raw else None,
                removed_only=expand(raw["removed_only"]) if "removed_only" in raw else None,
                unless=expand(raw["unless"]) if "unless" in raw else None,
                files=tuple(raw.get("files", ())),
                skip_files=tuple(raw.get("skip_files", ())),
                in_tests=raw.get("in_tests"),
            )
        )
    return CodeRules(
        lists={name: expand(f"{{{name}}}") for name in raw_lists},
        paths={name: _globs(globs) for name, globs in data["paths"].items()},
        benign_hosts=_globs(data["benign_hosts"], anchored_names=True),
        signals=tuple(signals),
    )


def _globs(globs: Iterable[str], anchored_names: bool = False) -> re.Pattern[str]:
    star = ".*" if anchored_names else "[^/]*"
    parts = [glob_to_regex(glob, star=star) for glob in globs]
    return re.compile("^(?:" + "|".join(parts) + ")$", re.IGNORECASE)
