"""Agent tool calls: shell-like tools judged by their commands, write/edit/patch tools by the paths they write."""

from __future__ import annotations

import re
from typing import Any

from foothold.detections.classify.commands import classify_command
from foothold.detections.classify.finding import Finding, dedupe
from foothold.detections.classify.paths import path_findings
from foothold.detections.shell import resolve_path
from foothold.detections.toolcall import (
    PATH_KEYS,
    READ_TOOLS,
    ToolCall,
    first_content,
    first_str,
    normalize,
    tool_basename,
)

_EDITOR_WRITE_COMMANDS = frozenset({"create", "str_replace", "insert", "write", "append", "edit", "replace"})


def classify_tool_call(
    tool_name: str, arguments: dict[str, Any] | str | None, *, cwd: str | None = None, home: str | None = None
) -> list[Finding]:
    """Findings for one agent tool call: shell-like tools by their command(s), write tools by their path.

    The public entry point every path calls (agent side, hook, proxy, collector, native-log mapping):
    ``tool_name`` may carry MCP/namespace prefixes, ``arguments`` is a dict or its JSON text. Never raises.
    """
    try:
        if tool_basename(tool_name) in READ_TOOLS:  # a read writes nothing: no need to parse its arguments
            return []
        return _classify_tool_call(normalize(tool_name, arguments, cwd=cwd), arguments, home)
    except Exception:
        return []


def _classify_tool_call(call: ToolCall, raw_arguments: Any, home: Any) -> list[Finding]:
    home = home if isinstance(home, str) else None
    name, args, cwd = call.name, dict(call.arguments), call.cwd
    if call.is_read:
        return []
    if name in _SCHEDULE_TOOLS:  # an agent's own scheduler: durable jobs are a write of its schedule file
        return _classify_schedule_tool(name, args, cwd, home, call.raw_name)
    if name == "apply_patch" or (name in ("patch",) and _patch_text(args, raw_arguments)):
        return _classify_patch(_patch_text(args, raw_arguments) or "", cwd, home)
    if call.is_write or (not call.is_shell and call.path and call.content is not None):
        return _classify_write_tool(name, args, cwd, home, call.raw_name)
    findings: list[Finding] = []
    for command in call.commands:
        findings.extend(classify_command(command, cwd=cwd, home=home))
    return dedupe(findings)


# Claude Code's CronCreate with ``durable: true`` saves a recurring prompt to the project's
# .claude/scheduled_tasks.json (it survives restarts); without it the job lives in the session's memory only.
_SCHEDULE_TOOLS = {"croncreate": ".claude/scheduled_tasks.json"}


def _classify_schedule_tool(
    name: str, args: dict[str, Any], cwd: str | None, home: str | None, tool: str
) -> list[Finding]:
    if args.get("durable") is not True:
        return []
    job = f"{args.get('cron', '')} {args.get('prompt', '')}".strip()
    return _classify_write_tool("write", {"file_path": _SCHEDULE_TOOLS[name], "content": job}, cwd, home, tool)


def _classify_write_tool(
    name: str, args: dict[str, Any], cwd: str | None, home: str | None, tool: str = ""
) -> list[Finding]:
    sub = args.get("command")
    if (
        name in ("str_replace_editor", "str_replace_based_edit_tool", "text_editor")
        or isinstance(sub, str)
        and sub in (_EDITOR_WRITE_COMMANDS | {"view", "undo_edit"})
    ) and (not isinstance(sub, str) or sub not in _EDITOR_WRITE_COMMANDS):
        return []  # view / undo_edit / unknown sub-command
    path = first_str(args, PATH_KEYS)
    if path is None:
        return []
    action = (
        "create"
        if sub == "create" or name in ("create_file", "write_to_file")
        else (
            "edit"
            if name
            in (
                "edit",
                "multiedit",
                "edit_file",
                "str_replace_editor",
                "str_replace_based_edit_tool",
                "replace",
                "replace_in_file",
                "search_replace",
                "notebookedit",
            )
            else "write"
        )
    )
    if name in ("append_file", "append_to_file") or sub == "append":
        action = "append"
    resolved = resolve_path(path, cwd, home)
    evidence = f"tool {tool or name}: {action} {resolved}"
    return dedupe(path_findings(resolved, action, evidence, first_content(args), "path", home))


def _patch_text(args: dict[str, Any], raw: Any) -> str | None:
    for key in ("input", "patch", "diff", "content"):
        value = args.get(key)
        if isinstance(value, str):
            return value
    if isinstance(raw, str) and not args:
        return raw
    return None


_PATCH_FILE_RE = re.compile(
    r"^\*\*\* (Add|Update|Move to|Delete) File: (.+)$|^\*\*\* Move to: (.+)$|^\+\+\+ (?:b/)?(.+)$", re.MULTILINE
)


def _classify_patch(patch: str, cwd: str | None, home: str | None) -> list[Finding]:
    """apply_patch (Codex envelope or unified diff): every added/updated/moved-to file is written."""
    findings: list[Finding] = []
    sections = re.split(r"(?m)^(?=\*\*\* (?:Add|Update|Delete) File: |\+\+\+ )", patch)
    for section in sections:
        m = _PATCH_FILE_RE.search(section)
        if not m:
            continue
        if m.group(1) == "Delete":
            continue
        moved = re.search(r"(?m)^\*\*\* Move to: (.+)$", section)
        raw = (moved.group(1) if moved else m.group(2) or m.group(3) or m.group(4) or "").strip()
        if not raw or raw == "/dev/null":
            continue
        added = "\n".join(
            line[1:] for line in section.splitlines() if line.startswith("+") and not line.startswith("+++")
        )
        action = "create" if m.group(1) == "Add" else "edit"
        resolved = resolve_path(raw, cwd, home)
        findings.extend(path_findings(resolved, action, f"tool apply_patch: {action} {resolved}", added, "path", home))
    return dedupe(findings)
