"""Ingest-time judgement of every tool call and artifact, whoever instrumented the agent.

Artifact spans get the persistence kind and ATT&CK technique of the location they changed; tool-call
spans get the durable write their arguments declare (shell commands parsed, write/edit tool paths
resolved against the call's cwd) and the categories the flow rules chain on (untrusted input, execution,
egress, credential read). The labels land in span attributes, so the materialized views carry them into
``tool_calls`` and ``artifacts``.
"""

from __future__ import annotations

import functools
import logging
import posixpath
from typing import TYPE_CHECKING

import orjson

from foothold import semconv
from foothold.detections import shell, toolcall
from foothold.detections.classify import Finding, classify_command, classify_path, classify_tool_call
from foothold.detections.rules import ToolCategories, tool_categories
from foothold.detections.severity import SEVERITIES

if TYPE_CHECKING:
    from foothold.collector.pipeline import Batch

log = logging.getLogger("foothold.collector.classify")

_READ_ACTIONS = frozenset({"read", "open", "list", "stat"})
# Agents repeat the same calls (git status, pytest, reading the same files): a tool call's labels are a
# pure function of (tool, arguments, cwd, home, MCP method), so they are memoised exactly in a bounded
# LRU per processor. Only calls whose arguments are short are cached (a few MiB at most).
_CACHE_ENTRIES = 8192
_CACHE_MAX_CHARS = 4096


def _tool_name(attrs: dict[str, str], span_name: str = "") -> str:
    name = next((attrs[k] for k in toolcall.TOOL_NAME_KEYS if attrs.get(k)), "")
    if not name and attrs.get(semconv.MCP_METHOD_NAME) == "tools/call":
        name = span_name.removeprefix("tools/call").strip()  # MCP span name: "tools/call {tool}"
    return name


def _arguments(attrs: dict[str, str]) -> str:
    return next((attrs[k] for k in toolcall.ARGUMENT_KEYS if attrs.get(k)), "")


def shell_command(arguments: str, tool_name: str = "") -> str | None:
    """The shell command a tool call's JSON arguments carry, if any (the same view the classifier reads)."""
    try:
        parsed = orjson.loads(arguments) if arguments else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    commands = toolcall.shell_commands(toolcall.tool_basename(tool_name), parsed)
    return "\n".join(commands) if commands else None


# The verdict is the collector's: whatever a sender put under these keys is replaced whenever the collector
# can judge the call itself (its arguments arrived).
VERDICT_KEYS = (
    semconv.PERSISTENCE_KIND,
    semconv.PERSISTENCE_TECHNIQUE,
    semconv.PERSISTENCE_TARGET,
    semconv.PERSISTENCE_EVIDENCE,
    semconv.PERSISTENCE_SEVERITY,
    semconv.TOOL_CATEGORIES,
)


def _clear_verdict(attrs: dict[str, str]) -> None:
    for key in VERDICT_KEYS:
        attrs.pop(key, None)


def _label(attrs: dict[str, str], findings: list[Finding]) -> None:
    if not findings:
        return
    # the most severe finding names the span; the evidence lists the first three
    first = max(findings, key=lambda f: SEVERITIES.index(f.severity) if f.severity in SEVERITIES else 2)
    attrs[semconv.PERSISTENCE_KIND] = first.kind
    attrs[semconv.PERSISTENCE_TECHNIQUE] = first.technique
    attrs[semconv.PERSISTENCE_TARGET] = first.target
    attrs[semconv.PERSISTENCE_SEVERITY] = first.severity
    attrs[semconv.PERSISTENCE_EVIDENCE] = "; ".join(f.evidence for f in findings[:3])


class ClassifyProcessor:
    def __init__(self, categories: ToolCategories | None = None) -> None:
        self._categories = categories or tool_categories()
        self._warned = False
        self._judge_cached = functools.lru_cache(maxsize=_CACHE_ENTRIES)(self._judge)
        # a tool's categories by its name as sent and by its basename (mcp__fs__write_file -> write_file)
        self._tool_categories = functools.lru_cache(maxsize=_CACHE_ENTRIES)(
            lambda name: (
                frozenset(self._categories.for_tool(toolcall.tool_basename(name)))
                | frozenset(self._categories.for_tool(name))
            )
        )
        self._path_categories = functools.lru_cache(maxsize=_CACHE_ENTRIES)(
            lambda path, home: frozenset(self._categories.for_path(path, home=home))
        )
        # The same command recurs with other arguments around it (timeouts, descriptions): parse it once.
        self._command_categories = functools.lru_cache(maxsize=_CACHE_ENTRIES)(self._categories_of_command)

    def process(self, batch: Batch) -> None:
        attributes = batch.span_attributes
        kinds = batch.columns.get("SpanKind") or [""] * len(attributes)  # log records have no kind or name
        names = batch.columns.get("SpanName") or kinds
        for i, attrs in enumerate(attributes):
            try:
                artifact = bool(attrs.get(semconv.ARTIFACT_KIND))
                tool_call = not artifact and toolcall.is_tool_call_span(attrs, kinds[i])
                if not (tool_call and not _arguments(attrs)):
                    _clear_verdict(attrs)
                # else content capture is off: the collector has nothing to judge, so the sender's own verdict
                # (the Claude Code hook judges the arguments it does not send) stands; it can only add a finding.
                if artifact:
                    self._artifact(attrs)
                elif tool_call:
                    self._tool_call(attrs, names[i])
            except Exception:  # a classifier bug must never cost a span
                if not self._warned:
                    log.exception("classification failed for a span; storing it unclassified")
                    self._warned = True

    def _artifact(self, attrs: dict[str, str]) -> None:
        kind, action = attrs.get(semconv.ARTIFACT_KIND), attrs.get(semconv.ARTIFACT_ACTION, "write")
        target = attrs.get(semconv.ARTIFACT_PATH, "")
        if not target or action in _READ_ACTIONS:
            return
        cwd, home = attrs.get(semconv.CWD) or None, attrs.get(semconv.HOME) or None
        if kind == "process":  # a launched command line: judge what it will do
            _label(attrs, classify_command(target, cwd=cwd, home=home))
        elif kind == "file":
            finding = classify_path(target, cwd=cwd, home=home, action=action)
            _label(attrs, [finding] if finding else [])

    def _tool_call(self, attrs: dict[str, str], span_name: str = "") -> None:
        name, arguments = _tool_name(attrs, span_name), _arguments(attrs)
        cwd, home = attrs.get(semconv.CWD) or None, attrs.get(semconv.HOME) or None
        resources_read = attrs.get(semconv.MCP_METHOD_NAME) == "resources/read"
        key = (name, arguments, cwd, home, resources_read)
        short = len(arguments) <= _CACHE_MAX_CHARS and len(name) + len(cwd or "") + len(home or "") <= _CACHE_MAX_CHARS
        findings, categories = self._judge_cached(*key) if short else self._judge(*key)
        _label(attrs, list(findings))
        if categories:
            attrs[semconv.TOOL_CATEGORIES] = categories

    def _judge(
        self, name: str, arguments: str, cwd: str | None, home: str | None, resources_read: bool
    ) -> tuple[tuple[Finding, ...], str]:
        """The persistence findings and the flow categories (comma-joined) of one tool call."""
        findings = tuple(classify_tool_call(name, arguments, cwd=cwd, home=home))
        categories = set(self._tool_categories(name))
        if resources_read:
            categories.add("untrusted_input")
        command = shell_command(arguments, name)
        if command:
            categories |= self._command_categories(command, cwd, home)
        return findings, ",".join(sorted(categories))

    def _categories_of_command(self, command: str, cwd: str | None, home: str | None) -> frozenset[str]:
        categories = {"exec"}
        for invocation in shell.analyze(command, cwd=cwd, home=home).invocations:
            if not invocation.argv:
                continue
            categories |= self._categories.for_program(posixpath.basename(invocation.argv[0]))
            for word in invocation.argv[1:]:
                operand = word.rpartition("=")[2].lstrip("@")  # --file=PATH, curl -d @PATH
                if "/" in operand or operand.startswith((".", "~")):
                    categories |= self._path_categories(shell.resolve_path(operand, cwd, home), home)
        return frozenset(categories)
