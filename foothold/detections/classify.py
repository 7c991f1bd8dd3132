"""Persistence classifier: tool calls, shell commands and file paths -> persistence findings.

The rules are data (``rules/persistence.yaml``): path globs and command patterns, each mapped to a
persistence ``kind`` and a MITRE ATT&CK / ATLAS technique. The ``shell`` package works out what a command *does*
(which files it writes, which programs it runs); this module matches those effects against the rules.

Public API (imported by the collector and the instrumentation):
    Finding, classify_path, classify_command, classify_tool_call, load_rules

Pure Python (stdlib + bashlex + PyYAML). Nothing here raises on odd input: it returns [] / None.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from foothold.detections.shell import FileWrite, Invocation, analyze, resolve_path
from foothold.detections.toolcall import PATH_KEYS, ToolCall, first_content, first_str, normalize

__all__ = ["Finding", "Rules", "classify_command", "classify_path", "classify_tool_call", "load_rules"]

# Any home directory, for "~/" patterns: the call's own home is rewritten to "~" before matching.
_HOME_RE = r"(?:~|/root|/home/[^/]+|/Users/[^/]+|/var/root)"
_WRITE_ACTIONS = frozenset({"write", "append", "create", "copy", "move", "link", "edit", "download", "modify"})
_MAX_COMMAND = 1_000_000  # beyond this a "command" is not a command; analyse only the head


@dataclass(frozen=True)
class Finding:
    kind: str  # persistence kind, e.g. "ssh_authorized_keys"
    technique: str  # MITRE ATT&CK / ATLAS id, e.g. "T1098.004"
    target: str  # resolved absolute path, account name or command target
    action: str  # "write" | "append" | "create" | "edit" | "enable" | "chmod" | "load" | ...
    evidence: str  # short human-readable reason
    source: str  # "command" | "path"
    severity: str = "medium"  # info | low | medium | high | critical (the kind's default, lowered by benign content)


# --- rules ------------------------------------------------------------------------------------------------------


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
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "{" and "}" in body[i:]:
            end = body.index("}", i)
            out.append("(?:" + "|".join(re.escape(a) for a in body[i + 1 : end].split(",")) + ")")
            i = end + 1
        elif ch == "[" and "]" in body[i:]:
            end = body.index("]", i)
            out.append(body[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "^" + prefix + "".join(out) + "$"


# --- paths -------------------------------------------------------------------------------------------------------


def classify_path(
    path: str, *, cwd: str | None = None, home: str | None = None, action: str = "write", content: str | None = None
) -> Finding | None:
    """The persistence finding for writing ``path`` (resolved against cwd/home), or None."""
    try:
        if not isinstance(path, str) or not path.strip():
            return None
        resolved = resolve_path(path, cwd if isinstance(cwd, str) else None, home if isinstance(home, str) else None)
        findings = _path_findings(resolved, action, f"{action} {resolved}", content, "path", home)
        return findings[0] if findings else None
    except Exception:
        return None


def _path_findings(
    path: str, action: str, evidence: str, content: str | None, source: str, home: str | None
) -> list[Finding]:
    """The most specific verdict for writing ``path``.

    Content rules (LD_PRELOAD in a start-up file, an MCP server in editor settings) say more than the
    location alone, so when one matches it replaces the location's plain rule; otherwise the first plain
    rule that matches wins. A plain rule with ``risky_content`` (CI files, registry config) fires on known
    content only when that content is risky; unknown content is judged by the location alone.
    """
    candidates = _match_forms(path, home)
    rules = load_rules()
    specific: list[Finding] = []
    plain: Finding | None = None
    for rule in rules.paths:
        if action == "chmod" and not rule.chmod:
            continue
        if rule.content is None and plain is not None:
            continue
        if rule.content is not None and (content is None or not rule.content.search(content)):
            continue
        if not any(rule.pattern.match(c) for c in candidates):
            continue
        if rule.exclude is not None and any(rule.exclude.match(c) for c in candidates):
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


# --- commands ----------------------------------------------------------------------------------------------------


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
        if _program(inv.argv[0]) in rules.programs:
            finding = _command_finding(inv, rules, home)
            if finding is not None:
                findings.append(finding)
    return _dedupe(findings)


def _write_findings(write: FileWrite, home: str | None) -> list[Finding]:
    found = _path_findings(write.path, write.action, write.evidence, write.content, "command", home)
    if not found and write.alt_path:  # cp x /etc/cron.d -> /etc/cron.d/x
        found = _path_findings(write.alt_path, write.action, write.evidence, write.content, "command", home)
    return found


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.kind, f.target, f.action)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _program(word: str) -> str:
    name = word.lstrip("\\").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    return name[:-4] if name.endswith(".exe") else name


def _command_finding(inv: Invocation, rules: Rules, home: str | None) -> Finding | None:
    prog = _program(inv.argv[0])
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
    flags, positionals = _split_args(args, rule.value_options)
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


def _split_args(args: list[str], value_options: frozenset[str]) -> tuple[list[str], list[str]]:
    flags: list[str] = []
    positionals: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            positionals.extend(args[i + 1 :])
            break
        if tok.startswith("-") and len(tok) > 1:
            flags.append(tok)
            if tok in value_options:
                i += 1
        else:
            positionals.append(tok)
        i += 1
    return flags, positionals


def _flag_matches(flag: str, rejects: frozenset[str]) -> bool:
    if flag in rejects or flag.split("=", 1)[0] in rejects:
        return True
    # short-option clusters: "-lu" contains "-l"
    if re.fullmatch(r"-[A-Za-z]{2,}", flag):
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
    if target.startswith(("/", "~", "./", "../")) or "/" in target and not re.match(r"^\w+/", target):
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


# --- tool calls -------------------------------------------------------------------------------------------------

_EDITOR_WRITE_COMMANDS = frozenset({"create", "str_replace", "insert", "write", "append", "edit", "replace"})


def classify_tool_call(
    tool_name: str, arguments: dict | str | None, *, cwd: str | None = None, home: str | None = None
) -> list[Finding]:
    """Findings for one agent tool call: shell-like tools by their command(s), write tools by their path.

    The public entry point every path calls (agent side, hook, proxy, collector, native-log mapping):
    ``tool_name`` may carry MCP/namespace prefixes, ``arguments`` is a dict or its JSON text. Never raises.
    """
    try:
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
    return _dedupe(findings)


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
    return _dedupe(_path_findings(resolved, action, evidence, first_content(args), "path", home))


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
        findings.extend(_path_findings(resolved, action, f"tool apply_patch: {action} {resolved}", added, "path", home))
    return _dedupe(findings)
