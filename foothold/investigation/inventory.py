"""What agents left behind and which credentials they touched: inventories and the remediation report.

Read-only queries over the audit tables, through any :class:`Reader` (the collector's query API or the
store). Session-scoped queries filter on ``SessionId``, the audit tables' first sort key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from foothold.detections.code_review import ChangeSet, ToolCallRecord, build_change_set
from foothold.investigation.access import Reader
from foothold.investigation.evidence import shell_word

_ARTIFACTS = """
SELECT Path, any(PersistenceKind) AS persistence_kind, any(Technique) AS technique, groupUniqArray(AgentName) AS agents,
       groupUniqArray(SessionId) AS sessions, min(Timestamp) AS first_seen, max(Timestamp) AS last_seen,
       argMax(Sha256, Timestamp) AS last_sha256, argMax(Action, Timestamp) AS last_action, argMax(TraceId, Timestamp) AS trace_id
FROM artifacts FINAL
WHERE Durable AND Kind = 'file' AND (PersistenceKind != '' OR {include_all:Bool})
  AND ({technique:String} = '' OR Technique = {technique:String})
  AND ({agent:String} = '' OR AgentName = {agent:String})
  AND ({path:String} = '' OR position(Path, {path:String}) > 0)
  AND ({sessions:Array(String)} = [] OR has({sessions:Array(String)}, SessionId))
  AND Timestamp >= {since:DateTime64(3)}
GROUP BY Path ORDER BY last_seen DESC
"""

# Every persistence finding a tool call declared (a write it will make, or a command that installs
# something: crontab FILE, useradd, systemctl enable), one row per kind and target; the report drops those
# an observed file artifact already covers.
_DECLARED = """
SELECT PersistenceTarget, PersistenceKind, any(Technique), groupUniqArray(SessionId), argMin(TraceId, Timestamp),
       argMin(Evidence, Timestamp)
FROM tool_calls FINAL
WHERE PersistenceKind != '' AND ({sessions:Array(String)} = [] OR has({sessions:Array(String)}, SessionId))
  AND Timestamp >= {since:DateTime64(3)}
GROUP BY PersistenceKind, PersistenceTarget ORDER BY min(Timestamp)
"""

_CREDENTIALS = """
SELECT CredentialFingerprint AS Fingerprint, any(CredentialKind) AS Kind, any(CredentialIssuedTo) AS IssuedTo,
       any(CredentialTaskId) AS IssuedForTask, groupUniqArray(AgentName) AS Agents, groupUniqArray(TaskId) AS Tasks,
       groupUniqArray(SessionId) AS Sessions, min(Timestamp) AS FirstUse, max(Timestamp) AS LastUse,
       countIf(CredentialExpiresAt IS NOT NULL AND Timestamp > CredentialExpiresAt) AS UsesAfterExpiry
FROM tool_calls FINAL
WHERE CredentialFingerprint != '' AND ({sessions:Array(String)} = [] OR has({sessions:Array(String)}, SessionId))
  AND Timestamp >= {since:DateTime64(3)}
GROUP BY CredentialFingerprint ORDER BY LastUse DESC
"""

_SESSIONS_SINCE = "SELECT DISTINCT SessionId FROM tool_calls WHERE Timestamp >= {since:DateTime64(3)}"

_ALERTS = """
SELECT SessionId, RuleId, Severity, Technique, Evidence, TraceId FROM alerts FINAL
WHERE ({sessions:Array(String)} = [] OR has({sessions:Array(String)}, SessionId)) ORDER BY SessionId, SeenAt
"""

EPOCH = datetime(1970, 1, 1)

# What a responder runs for each persistence kind: one shell line, to review before running. {path} and
# {unit} (the file name) are filled in shell-quoted, and never inside the comment: agents choose the paths.
_SYSTEMD = "systemctl disable --now -- {unit} && rm -- {path} && systemctl daemon-reload"
REMEDIATION = {
    "ssh_authorized_keys": "ssh-keygen -lf {path}  # then delete the key lines nobody issued",
    "cron": "crontab -l; rm -i -- {path}  # or remove only the added entry",
    "systemd_unit": _SYSTEMD,
    "systemd_timer": _SYSTEMD,
    "shell_rc": "cat -n -- {path}  # diff against a known-good copy and remove the added lines",
    "sudoers": "visudo -c -f {path}  # then remove the added rule with visudo -f",
    "ld_preload": "cat -n -- {path}  # remove the preloaded library line",
    "ci_pipeline": "git log -p -- {path}  # revert the change and rotate the secrets the pipeline can read",
    "git_hook": "rm -- {path}  # and check git config core.hooksPath",
    "agent_config": "git log -p -- {path}  # revert the instructions the agent added",
    "agent_memory": "cat -n -- {path}  # review and purge the poisoned memory entries",
}
DEFAULT_REMEDIATION = "ls -l -- {path}  # inspect, then restore from a known-good copy or remove"

# A finding whose target is not a file (a command installed it): the {target} is an account, unit or the
# user's crontab, and the line undoes or lists what the command installed.
COMMAND_REMEDIATION = {
    "cron": "crontab -l  # as the agent's user: remove the installed entries with crontab -e",
    "at_job": "atq  # then atrm the jobs nobody scheduled",
    "account": "userdel -r -- {target}  # after checking who uses it",
    "account_group": "id -- {target}  # then gpasswd -d to remove the added group membership",
    "account_password": "passwd -l -- {target}  # lock it, then reset the password",
    "systemd_unit": "systemctl disable --now -- {target}",
    "systemd_timer": "systemctl disable --now -- {target}",
    "kernel_module": "modprobe -r -- {target}  # and remove it from /etc/modules-load.d",
}
DEFAULT_COMMAND_REMEDIATION = "# installed by a command, not a file: undo it on the host (see the call's evidence)"
_HOME = re.compile(r"^(/home/[^/]+|/root)/")


def remediation_command(kind: str, path: str) -> str:
    """The shell line for one artifact, with the path (and unit name) quoted as single shell words."""
    if "/" not in path:  # an account, a unit name, "crontab": what a command installed
        template = COMMAND_REMEDIATION.get(kind, DEFAULT_COMMAND_REMEDIATION)
        return template.format(target=shell_word(path))
    template = REMEDIATION.get(kind, DEFAULT_REMEDIATION)
    return template.format(path=shell_word(path), unit=shell_word(PurePosixPath(path).name))


def _folded(path: str) -> str:
    """Home directories as ~, as the durable_write rule compares targets."""
    return _HOME.sub("~/", path)


@dataclass
class ArtifactRecord:
    path: str
    kind: str
    technique: str
    agents: list[str]
    sessions: list[str]
    first_seen: Any
    last_seen: Any
    sha256: str
    last_action: str
    trace_id: str
    on_host: str = ""  # with --check: present-same | present-changed | missing | unreadable

    def check(self) -> None:
        """Compare with this host's file: is the artifact still there, unchanged?"""
        try:
            with open(self.path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            self.on_host = "missing"
        except OSError:
            self.on_host = "unreadable"
        else:
            self.on_host = "present-same" if digest == self.sha256 else "present-changed"


def _params(sessions: list[str] | None = None, since: datetime | None = None, **extra: Any) -> dict[str, Any]:
    return {"sessions": sessions or [], "since": since or EPOCH, **extra}


def artifact_inventory(
    reader: Reader,
    *,
    technique: str = "",
    agent: str = "",
    path: str = "",
    sessions: list[str] | None = None,
    since: datetime | None = None,
    include_all: bool = False,
) -> list[ArtifactRecord]:
    params = _params(sessions, since, technique=technique, agent=agent, path=path, include_all=include_all)
    return [ArtifactRecord(*row) for row in reader.query(_ARTIFACTS, params).rows]


def credential_usage(
    reader: Reader, *, sessions: list[str] | None = None, since: datetime | None = None
) -> tuple[list[str], list[list[Any]]]:
    result = reader.query(_CREDENTIALS, _params(sessions, since))
    return result.columns, result.rows


@dataclass
class RemovalStep:
    path: str
    kind: str
    technique: str
    sha256: str
    sessions: list[str]
    trace_id: str
    command: str
    observed: bool  # False: declared by a tool call, not observed; verify on the host
    source: str = "observed"  # observed | declared (a write a call announced) | command (crontab FILE, useradd …)
    evidence: str = ""


@dataclass
class Report:
    scope: str
    remove: list[RemovalStep] = field(default_factory=list)
    revoke: list[dict[str, Any]] = field(default_factory=list)
    review: list[dict[str, Any]] = field(default_factory=list)
    # Code changes to review (foothold.detections.code_review.ChangeSet.to_json): files the sessions changed with
    # their diffs, riskiest first, the backdoor signals in them, and the commits and pushes that carried them.
    code: dict[str, Any] = field(default_factory=lambda: {"changes": [], "findings": [], "git": []})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def remediation_report(reader: Reader, *, session: str | None = None, since: datetime | None = None) -> Report:
    if session:
        sessions, scope = [session], f"session {session}"
    else:
        sessions = [r[0] for r in reader.query(_SESSIONS_SINCE, _params(since=since)).rows]
        scope = f"sessions active since {since:%Y-%m-%d %H:%M:%S}" if since else "all sessions"
    report = Report(scope)
    if not sessions:
        return report
    report.code = session_change_set(reader, sessions).to_json()
    for a in artifact_inventory(reader, sessions=sessions):
        command = remediation_command(a.kind, a.path)
        report.remove.append(RemovalStep(a.path, a.kind, a.technique, a.sha256, a.sessions, a.trace_id, command, True))
    observed = {_folded(step.path) for step in report.remove}
    for target, kind, technique, in_sessions, trace_id, evidence in reader.query(_DECLARED, _params(sessions)).rows:
        if _folded(target) in observed:
            continue
        source = "declared" if "/" in target else "command"
        command = remediation_command(kind, target)
        if source == "declared":
            command += "  # declared, not observed: verify on the host first"
        step = RemovalStep(target, kind, technique, "", sorted(in_sessions), trace_id, command, False, source, evidence)
        report.remove.append(step)
    columns, rows = credential_usage(reader, sessions=sessions)
    for row in rows:
        usage = dict(zip(columns, row, strict=False))
        usage["action"] = (
            f"revoke and reissue the {usage['Kind'] or 'credential'} with fingerprint {usage['Fingerprint']}"
        )
        report.revoke.append(usage)
    alerts = reader.query(_ALERTS, _params(sessions)).rows
    for session_id in sorted({r[0] for r in alerts}):
        findings = [
            {"rule": r[1], "severity": r[2], "technique": r[3], "evidence": r[4], "trace_id": r[5]}
            for r in alerts
            if r[0] == session_id
        ]
        report.review.append(
            {"session": session_id, "alerts": findings, "command": f"foothold-audit timeline {session_id}"}
        )
    return report


def session_change_set(reader: Reader, sessions: list[str]) -> ChangeSet:
    """Every file the sessions' tool calls changed, in call order, with the commits and pushes they made and the
    review of the whole set (an auth check moved between files is a refactor here, not a removal)."""
    from foothold.investigation.timeline import session_timeline

    calls = [
        ToolCallRecord(call.tool, call.arguments, call.result, call.call_id or call.span_id)
        for session in sessions
        for call in session_timeline(reader, session).calls
    ]
    return build_change_set(calls)
