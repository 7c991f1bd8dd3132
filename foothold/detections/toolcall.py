"""One normalised view of an agent tool call, shared by every classifier path.

The agent side (instrumentation), the Claude Code hook, the MCP proxy and the collector's classify
processor all judge tool calls. They used to read names and arguments each their own way (MCP-prefixed
names, a ``commands`` list, a ``code`` key were understood by some paths only). :func:`normalize` is the one
place that turns ``(tool name, arguments)`` into what the rules need:

- ``name``: lower-case, MCP (``mcp__server__tool``) and namespace (``functions.bash``, ``server/tool``,
  ``server:tool``) prefixes stripped;
- ``commands``: shell command lines: ``command``/``cmd``/``script``, each item of a ``commands`` list as
  its own command, a ``code`` key (shell, or Python/JavaScript wrapped so the shell analyser reads it as
  that interpreter's code), an argv list joined with shell quoting, or a shell tool's bare string;
- ``path``, ``content``, ``cwd``: the file a write tool targets, what it writes, where it runs.

"What is a tool call" in span terms is here too (:data:`TOOL_NAME_KEYS`, :data:`ARGUMENT_KEYS`,
:func:`is_tool_call_span`); collector/schema/sql.py builds its SQL from the same constants.
Stdlib only: the agent side imports it.
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Span attributes that name the tool and carry its arguments, in order of preference (GenAI, OpenInference).
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name")
ARGUMENT_KEYS = ("gen_ai.tool.call.arguments", "input.value")

SHELL_TOOLS = frozenset(
    {
        "bash",
        "shell",
        "sh",
        "zsh",
        "run_command",
        "execute_command",
        "terminal",
        "exec",
        "run_shell_command",
        "run_terminal_cmd",
        "run_terminal_command",
        "local_shell",
        "shell_command",
        "execute",
        "run",
        "cmd",
        "command",
        "container.exec",
        "exec_command",
        "bash_tool",
        "computer_bash",
        "run_in_terminal",
        "execute_code",
        "run_code",
        "code_interpreter",
        "python",
        "run_python",
        "execute_python",
        "ipython",
        "jupyter",
        "node",
        "javascript",
    }
)
WRITE_TOOLS = frozenset(
    {
        "write",
        "edit",
        "multiedit",
        "write_file",
        "edit_file",
        "create_file",
        "apply_patch",
        "notebookedit",
        "str_replace_editor",
        "str_replace_based_edit_tool",
        "text_editor",
        "replace",
        "write_to_file",
        "replace_in_file",
        "insert_content",
        "search_replace",
        "append_file",
        "append_to_file",
        "fs_write",
        "save_file",
        "update_file",
        "patch",
        "file_write",
        "create",
        "overwrite_file",
        "insert_edit_into_file",
    }
)
READ_TOOLS = frozenset(
    {
        "read",
        "cat",
        "view",
        "ls",
        "grep",
        "glob",
        "read_file",
        "read_text_file",
        "read_multiple_files",
        "list_dir",
        "list_directory",
        "search",
        "find",
        "file_search",
        "codebase_search",
        "grep_search",
        "notebookread",
        "webfetch",
        "websearch",
        "read_many_files",
        "search_files",
        "directory_tree",
        "get_file_info",
        "todowrite",
        "todoread",
    }
)
COMMAND_KEYS = ("command", "cmd", "script", "commands", "code")
PATH_KEYS = (
    "file_path",
    "path",
    "filename",
    "target_file",
    "notebook_path",
    "file",
    "absolute_path",
    "filepath",
    "TargetFile",
    "target",
    "dest",
    "destination",
)
CONTENT_KEYS = (
    "content",
    "file_text",
    "new_string",
    "new_str",
    "insert_text",
    "text",
    "code_edit",
    "contents",
    "new_source",
    "CodeContent",
    "data",
    "diff",
)
CWD_KEYS = ("cwd", "workdir", "working_directory", "working_dir", "directory")
_PYTHON_HINTS = ("python", "ipython", "jupyter", "code_interpreter")
_JS_HINTS = ("node", "javascript", "deno", "bun")


@dataclass(frozen=True)
class ToolCall:
    raw_name: str
    name: str  # lower-case basename, MCP / namespace prefixes stripped
    arguments: Mapping[str, Any] = field(default_factory=dict)
    commands: tuple[str, ...] = ()  # shell scripts to judge (a `commands` list is one script, in order)
    path: str | None = None
    content: str | None = None
    cwd: str | None = None

    @property
    def is_shell(self) -> bool:
        return self.name in SHELL_TOOLS

    @property
    def is_write(self) -> bool:
        return self.name in WRITE_TOOLS

    @property
    def is_read(self) -> bool:
        return self.name in READ_TOOLS


def tool_basename(tool_name: Any) -> str:
    """``mcp__fs__write_file`` / ``functions.bash`` / ``server/tool`` / ``Bash`` -> ``write_file`` / ``bash`` ..."""
    if not isinstance(tool_name, str):
        return ""
    # a deployment has a few dozen tool names, and every judged call asks for its basename: memoised (an odd,
    # long name is computed, not kept)
    return _basename_memo(tool_name) if len(tool_name) <= 256 else _basename(tool_name)


def _basename(tool_name: str) -> str:
    name = tool_name.strip()
    for sep in ("__", "/", ":"):
        if sep in name:
            name = name.rsplit(sep, 1)[-1]
    if name.startswith("functions."):
        name = name[len("functions.") :]
    return name.lower()


_basename_memo = functools.lru_cache(maxsize=4096)(_basename)


def parse_arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if isinstance(arguments, (str, bytes)):
        try:
            parsed = json.loads(arguments)
        except (ValueError, TypeError, RecursionError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def normalize(tool_name: Any, arguments: Any, *, cwd: str | None = None) -> ToolCall:
    """The normalised view of one tool call. Total: odd input gives an empty view, never an error."""
    name = tool_basename(tool_name)
    args = parse_arguments(arguments)
    commands = shell_commands(name, args)
    if not commands and name in SHELL_TOOLS and isinstance(arguments, str) and not args and arguments.strip():
        commands = (arguments,)  # a shell tool whose argument is the bare command line
    return ToolCall(
        raw_name=tool_name if isinstance(tool_name, str) else "",
        name=name,
        arguments=args,
        commands=commands,
        path=first_str(args, PATH_KEYS),
        content=first_content(args),
        cwd=first_str(args, CWD_KEYS) or (cwd if isinstance(cwd, str) else None),
    )


def first_str(args: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def first_content(args: Mapping[str, Any]) -> str | None:
    for key in CONTENT_KEYS:
        value = args.get(key)
        if isinstance(value, str):
            return value
    edits = args.get("edits")
    if isinstance(edits, list):  # MultiEdit: [{"old_string": ..., "new_string": ...}, ...]
        return "\n".join(str(e.get("new_string", "")) for e in edits if isinstance(e, dict))
    return None


def shell_commands(name: str, args: Mapping[str, Any]) -> tuple[str, ...]:
    """The shell command lines of parsed arguments (``name`` a :func:`tool_basename`): ``normalize(...).commands``
    of a dict, without the path, content and cwd a caller that wants only the commands does not need."""
    for key in COMMAND_KEYS:
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            return (_code_as_shell(name, args, value),) if key == "code" else (value,)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            if key in ("commands", "code"):
                # a list of command lines runs as one script, in order: each line is its own command and
                # a "cd" in one still applies to the next
                return ("\n".join(value),)
            return (shlex.join(value),)  # argv form: ["bash", "-lc", "..."]
    return ()


def _code_as_shell(name: str, args: Mapping[str, Any], code: str) -> str:
    """A ``code`` argument is shell unless the tool or its ``language`` says Python or JavaScript."""
    hint = f"{name} {args.get('language') or args.get('lang') or args.get('kernel') or ''}".lower()
    interpreter = (
        "python3" if any(h in hint for h in _PYTHON_HINTS) else "node" if any(h in hint for h in _JS_HINTS) else None
    )
    if interpreter is None:
        return code
    marker = "FOOTHOLD_CODE_EOF"
    return f"{interpreter} - <<'{marker}'\n{code}\n{marker}"


def is_tool_call_span(attributes: Mapping[str, str], span_kind: str = "", parent_span_id: str = "") -> bool:
    """A span that records one tool call: GenAI execute_tool, an OpenInference TOOL span, or an MCP tools/call
    client span (the server's span of the same call is not counted again)."""
    if attributes.get("gen_ai.operation.name") == "execute_tool" or attributes.get("openinference.span.kind") == "TOOL":
        return True
    if attributes.get("mcp.method.name") == "tools/call":
        return span_kind.rsplit("_", 1)[-1].lower() == "client"  # as collector/schema/sql.py IS_TOOL_CALL
    return False
