"""A persistence finding: what was made durable, where, by which technique, and how it was seen."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    kind: str  # persistence kind, e.g. "ssh_authorized_keys"
    technique: str  # MITRE ATT&CK / ATLAS id, e.g. "T1098.004"
    target: str  # resolved absolute path, account name or command target
    action: str  # "write" | "append" | "create" | "edit" | "enable" | "chmod" | "load" | ...
    evidence: str  # short human-readable reason
    source: str  # "command" | "path"
    severity: str = "medium"  # info | low | medium | high | critical (the kind's default, lowered by benign content)


def dedupe(findings: list[Finding]) -> list[Finding]:
    """The findings in order, one per (kind, target, action)."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.kind, f.target, f.action)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
