"""Documents a responder attaches to a ticket: the HTML session timeline and the Markdown remediation report."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from foothold.detections.severity import SEVERITIES
from foothold.investigation.evidence import argument_fields, readable_command

if TYPE_CHECKING:
    from foothold.investigation.inventory import Report
    from foothold.investigation.timeline import Timeline

# Autoescaping matters: tool arguments and paths are attacker-controlled text.
_ENV = Environment(loader=PackageLoader("foothold", "templates"), autoescape=select_autoescape(["html", "j2"]))


_MOST_SERIOUS_FIRST = SEVERITIES[::-1]
_SOURCE = {"observed": "observed", "declared": "declared, not observed", "command": "installed by a command"}


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _utc(value: datetime) -> datetime:
    """The store keeps UTC without a zone: say so, rather than let a reader assume local time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timeline_html(timeline: Timeline, report: Report | None = None) -> str:
    """A self-contained page (inline CSS, no scripts) for a ticket: a summary, the waterfall of calls with
    their arguments, results, artifacts and alerts, and the remediation checklist (``report``)."""
    starts = [_utc(_as_datetime(c.timestamp)) for c in timeline.calls]
    start = min(starts)
    end_ms = max(
        (s - start).total_seconds() * 1000 + c.duration_ms for s, c in zip(starts, timeline.calls, strict=False)
    )
    total_ms = max(end_ms, 0.001)
    calls = [
        {
            "entry": call,
            "clock": s.strftime("%H:%M:%S.%f")[:-3],
            "left": round((s - start).total_seconds() * 1000 / total_ms * 100, 3),
            "width": round(max(call.duration_ms / total_ms * 100, 0.4), 3),
            "arguments": argument_fields(call.arguments) if call.arguments else [],
            "artifacts": [(a, readable_command(a.path) if a.kind == "process" else a.path) for a in call.artifacts],
        }
        for s, call in zip(starts, timeline.calls, strict=False)
    ]
    alerts = [a for c in timeline.calls for a in c.alerts] + list(timeline.unattached_alerts)
    fired = Counter(a.severity for a in alerts)
    return _ENV.get_template("timeline.html.j2").render(
        t=timeline,
        calls=calls,
        agents=sorted({c.agent for c in timeline.calls if c.agent}),
        tasks=sorted({c.task for c in timeline.calls if c.task}),
        traces=sorted({c.trace_id for c in timeline.calls}),
        alerts=sorted(alerts, key=lambda a: (_rank(a.severity), str(a.seen_at))),
        fired=[(severity, fired[severity]) for severity in sorted(fired, key=_rank)],
        credentials=sorted(
            {(c.credential_kind, c.credential_fingerprint) for c in timeline.calls if c.credential_kind}
        ),
        report=report,
        sources=_SOURCE,
        start=start.strftime("%Y-%m-%d %H:%M:%S"),
        end=(start + timedelta(milliseconds=total_ms)).strftime("%Y-%m-%d %H:%M:%S"),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        total_ms=total_ms,
    )


def _rank(severity: str) -> int:
    return _MOST_SERIOUS_FIRST.index(severity) if severity in _MOST_SERIOUS_FIRST else len(SEVERITIES)


def _code(text: str) -> str:
    """A Markdown code span that holds any text, backticks included (paths are attacker-chosen)."""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def report_markdown(report: Report) -> str:
    lines = ["# Foothold remediation report", "", f"Scope: {report.scope}", ""]
    lines += ["## Remove", ""]
    if not report.remove:
        lines.append("Nothing durable was written.")
    for step in report.remove:
        state = _SOURCE.get(step.source, step.source)
        digest = f", sha256 `{step.sha256}`" if step.sha256 else ""
        lines.append(
            f"- [ ] {_code(step.path)} — {step.kind} ({step.technique}), {state}{digest}; "
            f"sessions {', '.join(step.sessions)}; trace `{step.trace_id}`"
        )
        lines.append(f"  - {_code(step.command)}")
    lines += ["", "## Revoke", ""]
    if not report.revoke:
        lines.append("No declared credential was used.")
    for usage in report.revoke:
        expiry = f"; **{usage['UsesAfterExpiry']} use(s) after expiry**" if usage["UsesAfterExpiry"] else ""
        lines.append(
            f"- [ ] {usage['action']} — used by {', '.join(usage['Agents'])} in tasks {', '.join(usage['Tasks'])} "
            f"and sessions {', '.join(usage['Sessions'])}, last {str(usage['LastUse'])[:19]}{expiry}"
        )
    lines += _code_changes_markdown(report.code)
    lines += ["", "## Review", ""]
    if not report.review:
        lines.append("No alerts in scope.")
    for item in report.review:
        lines.append(f"- [ ] session `{item['session']}` — `{item['command']}`")
        for alert in item["alerts"]:
            lines.append(f"  - **{alert['severity']}** {alert['rule']} {alert['technique']}: {alert['evidence']}")
    return "\n".join(lines) + "\n"


_DIFF_LINES = 60  # per file in the report; the JSON carries every line


def _code_changes_markdown(code: dict[str, Any]) -> list[str]:
    """ "Code changes to review": the backdoor signals, then each changed file's diff (riskiest first), then the
    commits and pushes that carried the changes."""
    lines = ["", "## Code changes to review", ""]
    if not code["changes"] and not code["git"]:
        return [*lines, "No source file was changed through a tool call Foothold saw."]
    for finding in code["findings"]:
        lines.append(
            f"- [ ] **{finding['severity']}** {finding['title']} ({finding['technique']}) in {_code(finding['path'])}: "
            f"{_code(finding['evidence'])}"
        )
    if not code["findings"]:
        lines.append("No backdoor signal in the changed code; review the diffs below as usual.")
    for change in code["changes"]:
        diff = change["diff"].splitlines()
        cut = (
            f"\n… {len(diff) - _DIFF_LINES} more lines (--format json has them all)" if len(diff) > _DIFF_LINES else ""
        )
        fence = "`" * max(3, max(map(len, re.findall("`+", change["diff"])), default=0) + 1)
        lines += [
            "",
            f"### {_code(change['path'])} — {change['action']} by {change['tool']} (call `{change['call_id']}`), "
            f"+{change['added_lines']} −{change['removed_lines']}",
            "",
            f"{fence}diff",
            "\n".join(diff[:_DIFF_LINES]) + cut,
            fence,
        ]
    if code["git"]:
        lines += ["", "Commits and pushes:", ""]
        lines += [
            f"- {g['kind']} `{g['ref'] or '?'}` {_code(g['detail'])} (call `{g['call_id']}`)" for g in code["git"]
        ]
    return lines
