"""Grafana alert rules (one per Foothold detection rule, running the rule's own SQL) and the contact point
that sends them on, as the documents Grafana's file provisioning reads."""

from __future__ import annotations

import os
from typing import Any

from foothold.dashboards.builder import DATASOURCE_UID, EXPRESSION_UID, TABLE, TIMELINE_UID, Query
from foothold.detections.rules import AlertRule, load_alert_rules

FOLDER_TITLE = "Foothold"
FOLDER_UID = "foothold"
RULE_GROUP = "foothold-detections"
RULE_INTERVAL_SECONDS = 60
RULE_INTERVAL = f"{RULE_INTERVAL_SECONDS // 60}m"
RULE_WINDOW_SECONDS = 3600
CONTACT_POINT = "foothold-webhook"
WEBHOOK_URL_ENV = "FOOTHOLD_ALERT_WEBHOOK_URL"

# Alert notifications leave Grafana, so their runbook links must be absolute: the base is Grafana's public
# URL (its server.root_url), read when the files are generated; the checked-in files use the compose one.
GRAFANA_URL_ENV = "FOOTHOLD_GRAFANA_URL"
DEFAULT_GRAFANA_URL = "http://localhost:3000"


def grafana_url() -> str:
    return os.environ.get(GRAFANA_URL_ENV, DEFAULT_GRAFANA_URL).rstrip("/")


def _labels(rule: AlertRule) -> str:
    """The query's label columns: a rule that says what became of a call labels its instances with the
    outcome and the severity that follows from it (an attempted write is not paged as a made one)."""
    return "session_id, agent_name" + (", outcome, severity" if rule.attempted_severity else "")


def alert_query(rule: AlertRule) -> str:
    """The rule's findings counted per session: one alert instance per (session, agent[, outcome, severity])."""
    labels = _labels(rule)
    return (
        f"SELECT {labels}, toFloat64(count()) AS findings FROM (\n{rule.sql.strip()}\n) AS finding\nGROUP BY {labels}"
    )


def _expression(ref_id: str, model: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": EXPRESSION_UID,
        "model": {"refId": ref_id, "datasource": {"type": "__expr__", "uid": EXPRESSION_UID}, **model},
    }


def alert_rule(rule: AlertRule) -> dict[str, Any]:
    query = Query(alert_query(rule), TABLE).to_json() | {"intervalMs": 1000, "maxDataPoints": 43200}
    return {
        "uid": f"foothold-{rule.id.replace('_', '-')}"[:40],
        "title": rule.title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": RULE_WINDOW_SECONDS, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": query,
            },
            _expression("B", {"type": "reduce", "expression": "A", "reducer": "last", "settings": {"mode": "dropNN"}}),
            _expression(
                "C",
                {"type": "threshold", "expression": "B", "conditions": [{"evaluator": {"type": "gt", "params": [0]}}]},
            ),
        ],
        "noDataState": "OK",
        "execErrState": "KeepLast",
        "for": "0s",
        "isPaused": False,
        # a rule with outcomes gets its severity label from the query (string columns become labels)
        "labels": ({} if rule.attempted_severity else {"severity": rule.severity})
        | {"rule_id": rule.id, "source": "foothold"},
        "annotations": {
            "summary": f"{rule.title}: session {{{{ $labels.session_id }}}} (agent {{{{ $labels.agent_name }}}})"
            + (", {{ $labels.outcome }}" if rule.attempted_severity else ""),
            "description": rule.description,
            "runbook_url": f"{grafana_url()}/d/{TIMELINE_UID}?var-session={{{{ $labels.session_id }}}}",
        },
    }


def alert_rules_document() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": RULE_GROUP,
                "folder": FOLDER_TITLE,
                "interval": RULE_INTERVAL,
                "rules": [alert_rule(rule) for rule in load_alert_rules()],
            }
        ],
    }


def contact_points_document() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": CONTACT_POINT,
                        "type": "webhook",
                        "disableResolveMessage": False,
                        "settings": {"url": f"${{{WEBHOOK_URL_ENV}}}", "httpMethod": "POST"},
                    }
                ],
            }
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname", "session_id"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        ],
    }
