"""Terminal rendering of investigation results (rich), shared by the CLI and the demo."""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _time(value) -> str:
    text = str(value)
    return text[11:23] if len(text) >= 23 else text


def _alert_line(alert) -> Text:
    line = Text("ALERT ", style="bold red")
    line.append(f" {alert.severity} ", style=SEVERITY_STYLE.get(alert.severity, ""))
    line.append(f" {alert.rule_id}", style="bold")
    if alert.technique:
        line.append(f" [{alert.technique}]", style="magenta")
    line.append(f"  {alert.evidence}")
    return line


def timeline_tree(timeline) -> Tree:
    agents = sorted({c.agent for c in timeline.calls if c.agent})
    alerts = sum(len(c.alerts) for c in timeline.calls) + len(timeline.unattached_alerts)
    root = Tree(
        Text.assemble(
            ("Session ", "bold"),
            (timeline.session_id, "bold cyan"),
            f"  agent {', '.join(agents) or '?'} · {len(timeline.calls)} tool calls · {alerts} alert(s)",
        )
    )
    for call in timeline.calls:
        status_style = "red" if call.status == "Error" else "green"
        line = Text(f"{_time(call.timestamp)}  ")
        line.append(call.tool, style="bold")
        line.append(f"  {call.status.lower() if call.status != 'Unset' else 'done'}", style=status_style)
        line.append(f"  {call.duration_ms:.1f} ms", style="dim")
        if call.human_checkpoint:
            line.append("  ✔ human checkpoint", style="bold green")
        if call.credential_kind:
            line.append(f"  🔑 {call.credential_kind} {call.credential_fingerprint[:12]}", style="yellow")
        if call.persistence_kind:
            line.append(f"  ⚠ intends {call.persistence_kind} {call.technique}", style="bold magenta")
        node = root.add(line)
        if call.arguments:
            args = call.arguments if len(call.arguments) <= 160 else call.arguments[:157] + "..."
            node.add(Text(args, style="dim"))
        for artifact in call.artifacts:
            a = Text(f"artifact {artifact.kind} {artifact.action} ", style="cyan")
            a.append(artifact.path, style="bold cyan")
            if artifact.sha256:
                a.append(f"  sha256 {artifact.sha256[:12]}", style="dim")
            if artifact.persistence_kind:
                a.append(f"  {artifact.persistence_kind} {artifact.technique}", style="bold magenta")
            a.append(f"  [{artifact.source}]", style="dim")
            node.add(a)
        for alert in call.alerts:
            node.add(_alert_line(alert))
    for alert in timeline.unattached_alerts:
        root.add(_alert_line(alert))
    return root
