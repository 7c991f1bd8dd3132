"""Push the data source, folder, dashboards and alert rules to a running Grafana over its HTTP API.

Idempotent: each object is read first (by uid), then created, updated, or left alone when Grafana already
holds what we would send. ``dry_run`` does the reads only and reports the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from foothold.dashboards import build

# Grafana's HTTP API answers and bodies: JSON objects whose shape is Grafana's (compared key by key below).
Json = dict[str, Any]


# The part of grafana_client's GrafanaApi that push uses. grafana_client declares these methods without
# types, so the protocols say what push relies on; a GrafanaApi matches them.
class _Datasources(Protocol):
    def get_datasource_by_uid(self, datasource_uid: str) -> Json: ...
    def create_datasource(self, datasource: Json) -> Json: ...
    def update_datasource_by_uid(self, datasource_uid: str, datasource: Json) -> Json: ...


class _Folders(Protocol):
    def get_folder(self, uid: str) -> Json: ...
    def create_folder(self, title: str, uid: str | None = None) -> Json: ...
    def update_folder(self, uid: str, title: str | None = None, overwrite: bool = False) -> Json: ...


class _Dashboards(Protocol):
    def get_dashboard(self, dashboard_uid: str) -> Json: ...
    def update_dashboard(self, dashboard: Json) -> Json: ...


class _AlertingProvisioning(Protocol):
    def get_alertrule(self, alertrule_uid: str) -> Json: ...
    def create_alertrule(self, alertrule: Json) -> Json: ...
    def update_alertrule(self, alertrule_uid: str, alertrule: Json) -> Json: ...
    def get_rule_group(self, folder_uid: str, group_uid: str) -> Json: ...
    def update_rule_group(self, folder_uid: str, group_uid: str, alertrule_group: Json) -> Json: ...


class GrafanaClient(Protocol):
    """grafana_client.GrafanaApi as push uses it."""

    @property
    def datasource(self) -> _Datasources: ...
    @property
    def folder(self) -> _Folders: ...
    @property
    def dashboard(self) -> _Dashboards: ...
    @property
    def alertingprovisioning(self) -> _AlertingProvisioning: ...


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
    status: object = getattr(exc, "status_code", None)  # grafana_client's HTTP errors carry it
    return status == 404


def _subset_equal(wanted: Any, current: Any) -> bool:
    """True when every key we send already has that value (Grafana adds ids, versions and defaults)."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(_subset_equal(v, current.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(current, list) and len(wanted) == len(current) and all(map(_subset_equal, wanted, current))
    return bool(wanted == current)


def push(
    api: GrafanaClient,
    ch: ClickHouseOptions,
    *,
    dry_run: bool = False,
    on_change: Callable[[Change], None] | None = None,
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

    def current(getter: Callable[[], Json]) -> Json | None:
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
        found = current(partial(api.dashboard.get_dashboard, model["uid"]))
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
        record("dashboard", model["uid"], model["title"], action, partial(api.dashboard.update_dashboard, body))

    # Alert rules, one by one through the alerting provisioning API.
    for rule in build.alert_rules_document()["groups"][0]["rules"]:
        payload = alert_rule_payload(rule)
        found = current(partial(api.alertingprovisioning.get_alertrule, payload["uid"]))
        if found is None:
            record(
                "alert-rule",
                payload["uid"],
                payload["title"],
                CREATE,
                partial(api.alertingprovisioning.create_alertrule, payload),
            )
        else:
            action = UNCHANGED if _subset_equal(payload, found) else UPDATE
            record(
                "alert-rule",
                payload["uid"],
                payload["title"],
                action,
                partial(api.alertingprovisioning.update_alertrule, payload["uid"], payload),
            )

    # The group's evaluation interval: rules created one by one get Grafana's default, not the file's. Read
    # once the rules are pushed (a dry run before the first push finds no group); a group PUT replaces the
    # group's rules, so it sends back the rules Grafana holds.
    group = current(lambda: api.alertingprovisioning.get_rule_group(build.FOLDER_UID, build.RULE_GROUP))
    same = group is not None and group.get("interval") == build.RULE_INTERVAL_SECONDS

    def set_interval() -> Json:
        if group is None:  # never a whole-group PUT without the rules: it would delete them
            raise RuntimeError(f"Grafana holds no rule group {build.RULE_GROUP!r} after its rules were pushed")
        return api.alertingprovisioning.update_rule_group(
            build.FOLDER_UID, build.RULE_GROUP, group | {"interval": build.RULE_INTERVAL_SECONDS}
        )

    record("rule-group", build.RULE_GROUP, f"every {build.RULE_INTERVAL}", UNCHANGED if same else UPDATE, set_interval)
    return plan
