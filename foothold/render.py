"""Terminal rendering of investigation results (rich), shared by the CLI and the demo.

The one way text reaches the terminal. Stored values were written by whoever controlled the agent, so a
tool name or an argument may carry ESC sequences (retitle the window, erase lines, fake output), carriage
returns and backspaces (overwrite what was printed), or bidi overrides (show ``txt.exe`` as ``exe.txt``).
Every such character is shown escaped, as ``\\u001b``: in tables and trees (:func:`shown` on each value,
so widths stay right), in messages and everything else a :data:`console`/:data:`err` prints (the
consoles escape each text segment as a net), and in documents the CLI writes (:func:`emit`; the escape
form is JSON's own, so JSON output stays valid and means the same).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from foothold.investigation.evidence import argument_fields, excerpt, readable_command

if TYPE_CHECKING:
    from foothold.investigation.timeline import AlertEntry, CallEntry, Timeline

# C0 controls but newline and tab, DEL, C1 controls (0x9b is CSI on some terminals), the bidi embedding,
# override and isolate characters, and the Unicode line/paragraph separators.
_UNSAFE = (
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + [0x061C, 0x200E, 0x200F, 0x2028, 0x2029]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_ESCAPES = {code: f"\\u{code:04x}" for code in _UNSAFE}
_ESCAPES_ONE_LINE = _ESCAPES | {0x09: "\\u0009", 0x0A: "\\u000a"}


def shown(value: Any, *, one_line: bool = False) -> str:
    """A stored value as terminal-safe text: control and bidi characters escaped (newlines too if one_line)."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return text.translate(_ESCAPES_ONE_LINE if one_line else _ESCAPES)


class SafeConsole(Console):
    """A rich console that escapes control characters in every text segment it writes.

    Rich's own styling and cursor control travel as style/control segments and are untouched; only the
    text of segments is escaped, so markup messages with stored values in them are safe too.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        safe = (segment if segment.control else Segment(shown(segment.text), *segment[1:]) for segment in buffer)
        return super()._render_buffer(safe)


console = SafeConsole()
err = SafeConsole(stderr=True, soft_wrap=True)  # error messages stay whole lines when piped


def emit(document: str, out: Path | None = None) -> None:
    """A document (JSON, Markdown, HTML) to stdout or a file, control and bidi characters escaped."""
    text = shown(document)
    if out is None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {out}")


def cell(value: Any) -> Text:
    """A table cell: plain text (paths and arguments are not markup), escaped."""
    if isinstance(value, (dict, list)):
        value = orjson.dumps(value, default=str).decode()
    return Text(shown(value))


def print_table(columns: list[str], rows: list[list[Any]], title: str | None = None, empty: str = "") -> None:
    """A table, or when there are no rows the ``empty`` sentence (an empty result says so)."""
    if not rows:
        console.print(Text(shown(empty or "No rows.")))
        return
    table = Table(title=shown(title) if title else None, header_style="bold", show_lines=False)
    for column in columns:
        table.add_column(shown(column), overflow="fold")
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    console.print(table)


SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _time(value: object) -> str:
    text = str(value)
    return text[11:23] if len(text) >= 23 else text


def _alert_line(alert: AlertEntry) -> Text:
    line = Text("ALERT ", style="bold red")
    line.append(f" {shown(alert.severity, one_line=True)} ", style=SEVERITY_STYLE.get(alert.severity, ""))
    line.append(f" {shown(alert.rule_id, one_line=True)}", style="bold")
    if alert.technique:
        line.append(f" [{shown(alert.technique, one_line=True)}]", style="magenta")
    line.append(f"  {shown(alert.evidence)}")
    return line


def timeline_tree(timeline: Timeline) -> Tree:
    agents = sorted({c.agent for c in timeline.calls if c.agent})
    alerts = sum(len(c.alerts) for c in timeline.calls) + len(timeline.unattached_alerts)
    agent_names = shown(", ".join(agents), one_line=True) or "?"
    root = Tree(
        Text.assemble(
            ("Session ", "bold"),
            (shown(timeline.session_id, one_line=True), "bold cyan"),
            f"  agent {agent_names} · {len(timeline.calls)} tool calls · {alerts} alert(s)",
        )
    )
    for call in timeline.calls:
        status_style = "red" if call.status == "Error" else "green"
        line = Text(f"{_time(call.timestamp)}  ")
        line.append(shown(call.tool, one_line=True), style="bold")
        status = shown(call.status.lower() if call.status != "Unset" else "done", one_line=True)
        line.append(f"  {status}", style=status_style)
        line.append(f"  {call.duration_ms:.1f} ms", style="dim")
        if call.human_checkpoint:
            line.append("  ✔ human checkpoint", style="bold green")
        if call.credential_kind:
            kind, fingerprint = shown(call.credential_kind, one_line=True), shown(call.credential_fingerprint[:12])
            line.append(f"  🔑 {kind} {fingerprint}", style="yellow")
        if call.persistence_kind:
            intent = shown(f"{call.persistence_kind} {call.technique}", one_line=True)
            line.append(f"  ⚠ intends {intent}", style="bold magenta")
        node = root.add(line)
        if call.arguments:
            node.add(_arguments(call.arguments))
        if call.result:
            node.add(_result(call))
        for artifact in call.artifacts:
            a = Text(shown(f"artifact {artifact.kind} {artifact.action} ", one_line=True), style="cyan")
            path = readable_command(artifact.path) if artifact.kind == "process" else artifact.path
            a.append(shown(path, one_line=True), style="bold cyan")
            if artifact.sha256:
                a.append(f"  sha256 {shown(artifact.sha256[:12])}", style="dim")
            if artifact.persistence_kind:
                a.append(
                    shown(f"  {artifact.persistence_kind} {artifact.technique}", one_line=True), style="bold magenta"
                )
            a.append(f"  [{shown(artifact.source, one_line=True)}]", style="dim")
            node.add(a)
        for alert in call.alerts:
            node.add(_alert_line(alert))
    for alert in timeline.unattached_alerts:
        root.add(_alert_line(alert))
    return root


def _arguments(arguments: str) -> Text:
    """Each argument on its own line; a long multi-line value (a file's content) as head, telling lines, tail."""
    text = Text(style="dim")
    for index, (name, value) in enumerate(argument_fields(arguments)):
        if index:
            text.append("\n")
        if name:
            text.append(f"{name}: ", style="bold")
        cut = excerpt(value, max_lines=14)
        text.append(("\n" if len(cut.lines) > 1 else "") + cut.text())
        if cut.omitted:
            text.append(f"\n({cut.omitted} more lines; --format html or json shows all)", style="italic")
    return text


def _result(call: CallEntry) -> Text:
    """What the tool returned: for a fetch or a read, the untrusted text the model then acted on."""
    cut = excerpt(call.result, max_lines=10)
    text = Text("result ", style="bold blue")
    text.append(("\n" if len(cut.lines) > 1 else "") + cut.text())
    missing = cut.omitted + (call.result_chars > len(call.result))
    if missing:
        text.append(f"\n(excerpt of {call.result_chars} characters; --format html shows all)", style="italic")
    return text
