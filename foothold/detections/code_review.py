"""A session's change set: every file its tool calls changed, the commits and pushes, and the review.

The report and the HTML timeline show it as "code changes to review", riskiest file first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from foothold.detections.code_changes import (
    CodeChange,
    GitEvent,
    changes_from_tool_call,
    first_str,
    git_events,
)
from foothold.detections.code_signals import CodeFinding, review_changes
from foothold.detections.severity import SEVERITIES
from foothold.detections.toolcall import parse_arguments


@dataclass(frozen=True)
class ToolCallRecord:
    """The fields of a stored tool call this module reads (a row of ``tool_calls``, or a live call)."""

    tool: str
    arguments: Any
    result: str | None = None
    call_id: str = ""


_SHELL_COMMAND_KEYS = ("command", "cmd", "script")


@dataclass
class ChangeSet:
    changes: list[CodeChange] = field(default_factory=list)
    findings: list[CodeFinding] = field(default_factory=list)
    git: list[GitEvent] = field(default_factory=list)

    def risk(self, path: str) -> int:
        """The highest severity of a path's findings, as an index into SEVERITIES (-1: none)."""
        return max((SEVERITIES.index(f.severity) for f in self.findings if f.path == path), default=-1)

    def by_risk(self) -> list[CodeChange]:
        """Changes with the riskiest files first (the order a reviewer should read them in)."""
        return sorted(self.changes, key=lambda c: -self.risk(c.path))

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [
                {
                    "path": c.path,
                    "action": c.action,
                    "tool": c.tool,
                    "call_id": c.call_id,
                    "added_lines": len(c.added),
                    "removed_lines": len(c.removed),
                    "diff": c.diff,
                }
                for c in self.by_risk()
            ],
            "findings": [f.__dict__ for f in sorted(self.findings, key=lambda f: -SEVERITIES.index(f.severity))],
            "git": [g.__dict__ for g in self.git],
        }


def build_change_set(calls: Iterable[ToolCallRecord]) -> ChangeSet:
    """The session's change set, in call order: file changes, commits and pushes, and the review findings."""
    out = ChangeSet()
    known: dict[str, str] = {}
    for call in calls:
        out.changes += changes_from_tool_call(call.tool, call.arguments, call_id=call.call_id, known=known)
        command = first_str(parse_arguments(call.arguments), _SHELL_COMMAND_KEYS)
        if command and "git" in command:
            out.git += git_events(command, call.result, call.call_id)
    out.findings = review_changes(out.changes)
    return out
