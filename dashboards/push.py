"""Push the data source, folder, dashboards and alert rules to a running Grafana over its HTTP API.

Idempotent: each object is read first (by uid), then created, updated, or left alone when Grafana already
holds what we would send. ``dry_run`` does the reads only and reports the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foothold.dashboards import build

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"


@dataclass(frozen=True)
class ClickHouseOptions:
    host: str = "clickhouse"
    port: int = 8123
    protocol: str = "http"  # http | native
    database: str = "foothold"
    username: str = "default"
    password: str | None = None
    secure: bool = False


@dataclass
class Change:
    kind: str  # datasource | folder | dashboard | alert-rule | rule-group
    uid: str
    title: str
    action: str


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(c.action == action for c in self.changes)


def datasource_payload(ch: ClickHouseOptions) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "uid": build.DATASOURCE_UID,
        "name": "Foothold ClickHouse",
        "type": build.PLUGIN_TYPE,
        "access": "proxy",
        "isDefault": False,
        "jsonData": {
            "host": ch.host,
            "port": ch.port,
            "protocol": ch.protocol,
            "secure": ch.secure,
            "username": ch.username,
            "defaultDatabase": ch.database,
            "traces": {
                "defaultDatabase": ch.database,
                "defaultTable": "otel_traces",
                "otelEnabled": True,
                "otelVersion": "latest",
                "durationUnit": "nanoseconds",
            },
        },
    }
    if ch.password is not None:
        payload["secureJsonData"] = {"password": ch.password}
    return payload


def alert_rule_payload(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule from the provisioning file, in the alerting provisioning API's shape."""
    return {**rule, "folderUID": build.FOLDER_UID, "ruleGroup": build.RULE_GROUP, "orgID": 1}


def _missing(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) == 404


def _subset_equal(wanted: Any, current: Any) -> bool:
    """True when every key we send already has that value (Grafana adds ids, versions and defaults)."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(_subset_equal(v, current.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(current, list) and len(wanted) == len(current) and all(map(_subset_equal, wanted, current))
    return wanted == current


def push(
    api: Any, ch: ClickHouseOptions, *, dry_run: bool = False, on_change: Callable[[Change], None] | None = None
) -> Plan:
    """Create or update everything on ``api`` (a grafana_client.GrafanaApi); returns what changed (or would)."""
    plan = Plan()

    def record(kind: str, uid: str, title: str, action: str, apply: Callable[[], Any]) -> None:
        change = Change(kind, uid, title, action)
        if action != UNCHANGED and not dry_run:
            apply()
        plan.changes.append(change)
        if on_change:
            on_change(change)

    def current(getter: Callable[[], Any]) -> Any:
        try:
            return getter()
        except Exception as exc:
            if _missing(exc):
                return None
            raise

    # Data source (uid pinned: the alert rules and dashboards reference it).
    ds = datasource_payload(ch)
    existing = current(lambda: api.datasource.get_datasource_by_uid(build.DATASOURCE_UID))
    comparable = {k: v for k, v in ds.items() if k != "secureJsonData"}
    if existing is None:
        record("datasource", ds["uid"], ds["name"], CREATE, lambda: api.datasource.create_datasource(ds))
    else:
        same = _subset_equal(comparable, existing) and "secureJsonData" not in ds  # a password cannot be read back
        record(
            "datasource",
            ds["uid"],
            ds["name"],
            UNCHANGED if same else UPDATE,
            lambda: api.datasource.update_datasource_by_uid(build.DATASOURCE_UID, ds),
        )

    # Folder.
    folder = current(lambda: api.folder.get_folder(build.FOLDER_UID))
    if folder is None:
        record(
            "folder",
            build.FOLDER_UID,
            build.FOLDER_TITLE,
            CREATE,
            lambda: api.folder.create_folder(build.FOLDER_TITLE, uid=build.FOLDER_UID),
        )
    elif folder.get("title") != build.FOLDER_TITLE:
        record(
            "folder",
            build.FOLDER_UID,
            build.FOLDER_TITLE,
            UPDATE,
            lambda: api.folder.update_folder(build.FOLDER_UID, title=build.FOLDER_TITLE, overwrite=True),
        )
    else:
        record("folder", build.FOLDER_UID, build.FOLDER_TITLE, UNCHANGED, lambda: None)

    # Dashboards (POST /api/dashboards/db with overwrite creates or replaces by uid).
    for dashboard in build.dashboards():
        model = dashboard.to_json()
        found = current(lambda uid=model["uid"]: api.dashboard.get_dashboard(uid))
        if found is None:
            action = CREATE
        else:
            same = (
                _subset_equal(model, found.get("dashboard", {}))
                and found.get("meta", {}).get("folderUid") == build.FOLDER_UID
            )
            action = UNCHANGED if same else UPDATE
        body = {
            "dashboard": model | {"id": None},
            "folderUid": build.FOLDER_UID,
            "overwrite": True,
            "message": "foothold-audit grafana push",
        }
        record(
            "dashboard", model["uid"], model["title"], action, lambda body=body: api.dashboard.update_dashboard(body)
        )

    # Alert rules, one by one through the alerting provisioning API.
    for rule in build.alert_rules_document()["groups"][0]["rules"]:
        payload = alert_rule_payload(rule)
        found = current(lambda uid=payload["uid"]: api.alertingprovisioning.get_alertrule(uid))
        if found is None:
            record(
                "alert-rule",
                payload["uid"],
                payload["title"],
                CREATE,
                lambda p=payload: api.alertingprovisioning.create_alertrule(p),
            )
        else:
            action = UNCHANGED if _subset_equal(payload, found) else UPDATE
            record(
                "alert-rule",
                payload["uid"],
                payload["title"],
                action,
                lambda p=payload: api.alertingprovisioning.update_alertrule(p["uid"], p),
            )

    # The group's evaluation interval: rules created one by one get Grafana's default, not the file's. Read
    # once the rules are pushed (a dry run before the first push finds no group); a group PUT replaces the
    # group's rules, so it sends back the rules Grafana holds.
    group = current(lambda: api.alertingprovisioning.get_rule_group(build.FOLDER_UID, build.RULE_GROUP))
    same = group is not None and group.get("interval") == build.RULE_INTERVAL_SECONDS
    record(
        "rule-group",
        build.RULE_GROUP,
        f"every {build.RULE_INTERVAL}",
        UNCHANGED if same else UPDATE,
        lambda: api.alertingprovisioning.update_rule_group(
            build.FOLDER_UID, build.RULE_GROUP, group | {"interval": build.RULE_INTERVAL_SECONDS}
        ),
    )
    return plan
