"""What an agent's tool calls did to files, as changes a reviewer can read, and the commits and pushes it made.

A :class:`CodeChange` is what one tool call did to one file: the lines it added and removed, and the text
after it (the whole file for a whole-file write, the new fragment for an edit). Built from the tool call's
arguments (Write, Edit, MultiEdit, str_replace editors, apply_patch envelopes and unified diffs), so the agent
side, the collector and the investigation readers see the same changes.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from foothold.detections.toolcall import PATH_KEYS, parse_arguments


@dataclass(frozen=True)
class CodeChange:
    """What one tool call did to one file."""

    path: str
    action: str  # create | modify | write | delete | rename
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    after: str | None = (
        None  # text after the change: the whole file for a whole-file write, the new fragment for an edit
    )
    call_id: str = ""
    tool: str = ""

    @property
    def diff(self) -> str:
        """A unified diff of the change (the lines Foothold knows; context it never saw is not invented)."""
        body = difflib.unified_diff(list(self.removed), list(self.added), f"a/{self.path}", f"b/{self.path}", n=0)
        return "\n".join(line.rstrip("\n") for line in body)


@dataclass(frozen=True)
class GitEvent:
    """A commit or push the session made; ``ref`` is the commit id or the pushed ref when the output showed it."""

    kind: str  # commit | push
    ref: str
    detail: str  # commit message, or remote and refspec
    call_id: str = ""


# --- changes from tool calls ------------------------------------------------------------------------------

_CONTENT_KEYS = ("content", "file_text", "contents", "text", "code_edit", "CodeContent")
_OLD_KEYS = ("old_string", "old_str", "old_text", "search")
_NEW_KEYS = ("new_string", "new_str", "new_text", "replace", "insert_text")
_PATCH_KEYS = ("input", "patch", "diff")


def changes_from_tool_call(
    tool_name: str, arguments: Any, *, call_id: str = "", known: dict[str, str] | None = None
) -> list[CodeChange]:
    """The file changes one tool call made, as far as its arguments show them.

    ``known`` maps paths to their text as the session last wrote it, so a second whole-file Write shows as a
    diff against the first, not as every line added; it is updated in place.
    """
    args = parse_arguments(arguments)
    patch = first_str(args, _PATCH_KEYS)
    if patch and ("*** Begin Patch" in patch or re.search(r"(?m)^\+\+\+ ", patch)):
        return [_with(c, call_id, tool_name) for c in parse_patch(patch)]
    path = first_str(args, PATH_KEYS)
    if not path:
        return []
    known = known if known is not None else {}
    edits = args.get("edits")
    if isinstance(edits, list):
        pairs = [(str(e.get("old_string", "")), str(e.get("new_string", ""))) for e in edits if isinstance(e, dict)]
        return [_edit_change(path, pairs, call_id, tool_name)]
    old, new = first_str(args, _OLD_KEYS), first_str(args, _NEW_KEYS)
    if new is not None and (old is not None or args.get("command") == "insert"):
        return [_edit_change(path, [(old or "", new)], call_id, tool_name)]
    content = first_str(args, _CONTENT_KEYS)
    if content is None:
        return []
    before = known.get(path)
    known[path] = content
    if before is None:
        return [CodeChange(path, "write", tuple(content.splitlines()), (), content, call_id, tool_name)]
    added, removed = _line_diff(before, content)
    return [CodeChange(path, "modify", added, removed, content, call_id, tool_name)]


def _edit_change(path: str, pairs: list[tuple[str, str]], call_id: str, tool: str) -> CodeChange:
    added: list[str] = []
    removed: list[str] = []
    for old, new in pairs:
        plus, minus = _line_diff(old, new)
        added += plus
        removed += minus
    return CodeChange(path, "modify", tuple(added), tuple(removed), "\n".join(new for _, new in pairs), call_id, tool)


def _line_diff(before: str, after: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    a, b = before.splitlines(), after.splitlines()
    added, removed = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("replace", "delete"):
            removed += a[i1:i2]
        if op in ("replace", "insert"):
            added += b[j1:j2]
    return tuple(added), tuple(removed)


def parse_patch(patch: str) -> list[CodeChange]:
    """A Codex ``*** Begin Patch`` envelope or a unified diff, as one change per file. A change's ``after`` is
    the new side of its hunks (context and added lines), so signals can read the code around an addition."""
    changes: list[CodeChange] = []
    path: str | None = None
    action = "modify"
    added: list[str] = []
    removed: list[str] = []
    after: list[str] = []

    def close() -> None:
        if path is not None:
            changes.append(CodeChange(path, action, tuple(added), tuple(removed), "\n".join(after) or None))

    for line in patch.splitlines():
        header = re.match(r"^\*\*\* (Add|Update|Delete) File: (.+)$", line)
        move = re.match(r"^\*\*\* Move to: (.+)$", line)
        plus_header = re.match(r"^\+\+\+ (?:b/)?(.+?)\s*$", line)
        if header or plus_header:
            close()
            if header:
                path = header.group(2).strip()
                action = {"Add": "create", "Update": "modify", "Delete": "delete"}[header.group(1)]
            elif plus_header:
                path = plus_header.group(1)
                action = "delete" if path == "/dev/null" else "modify"
            added, removed, after = [], [], []
        elif move and path is not None:
            path, action = move.group(1).strip(), "rename"
        elif line.startswith(("--- ", "@@", "*** ")):
            continue
        elif line.startswith("+"):
            added.append(line[1:])
            after.append(line[1:])
        elif line.startswith("-"):
            removed.append(line[1:])
        elif line.startswith(" ") or not line:
            after.append(line[1:])
    close()
    return changes


def _with(change: CodeChange, call_id: str, tool: str) -> CodeChange:
    return CodeChange(change.path, change.action, change.added, change.removed, change.after, call_id, tool)


def first_str(args: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = args.get(key)
        if isinstance(value, str):
            return value
    return None


# --- git commits and pushes --------------------------------------------------------------------------------

_GIT = re.compile(r"(?:^|[;&|]\s*|\s)git\s+(?:-C\s+\S+\s+|-c\s+\S+\s+)*(commit|push)\b([^;&|]*)")
_COMMIT_OUT = re.compile(r"^\[([^\]\s]+)(?: \(root-commit\))? ([0-9a-f]{7,40})\] (.*)$", re.MULTILINE)
_PUSH_OUT = re.compile(
    r"^\s*(?:\+\s*)?([0-9a-f]{7,40}\.\.\.?[0-9a-f]{7,40}|\* \[new branch\])\s+(\S+)\s*->\s*(\S+)", re.M
)
_MESSAGE = re.compile(r"""-\w*m\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")


def git_events(command: str, output: str | None, call_id: str = "") -> list[GitEvent]:
    """Commits and pushes in a shell command, with ids from its output when the tool result holds it."""
    events: list[GitEvent] = []
    for verb, rest in _GIT.findall(command or ""):
        if verb == "commit":
            m = _COMMIT_OUT.search(output or "")
            message = _MESSAGE.search(rest)
            text = m.group(3) if m else next((g for g in message.groups() if g), "") if message else ""
            events.append(GitEvent("commit", m.group(2) if m else "", text, call_id))
        else:
            m = _PUSH_OUT.search(output or "")
            ref = m.group(1).replace("* [new branch]", "new branch") if m else ""
            target = f"{m.group(2)} -> {m.group(3)}" if m else rest.strip()
            events.append(GitEvent("push", ref, target, call_id))
    return events
