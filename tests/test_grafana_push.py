"""`foothold-audit grafana push` against a stand-in Grafana that checks each request against the documented HTTP API.

The stand-in (stdlib http.server on 127.0.0.1, a free port) keeps data sources, folders, dashboards and
alert rules in memory and answers like Grafana: 404 for unknown uids, the documented paths and methods
only, and a 400 for payloads missing what Grafana requires. Its GET responses are normalised the way
Grafana's are (server-side fields such as id, version, updated and provenance added, keys in the server's
order), so "unchanged" is judged against what Grafana returns, not against what was sent. The test then
runs the real CLI command (typer, grafana-client) against it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from foothold.dashboards import build
from foothold.dashboards.cli import grafana_app

TOKEN = "glsa_test-token"
BASIC = "Basic " + base64.b64encode(b"admin:pw").decode()
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# A new rule group gets [unified_alerting] default_rule_evaluation_interval; Grafana ships 1m, so the
# stand-in models an instance configured otherwise, where only an explicit group update gives 1m.
DEFAULT_RULE_INTERVAL = 10
UPDATED = "2025-06-02T10:00:00Z"


def served(obj: dict, **server_fields: Any) -> dict:
    """``obj`` as Grafana serves it: with server-side fields, keys in another order than they were sent."""
    return json.loads(json.dumps(obj | server_fields, sort_keys=True))


class FakeGrafana:
    def __init__(self) -> None:
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.rules: dict[str, dict] = {}
        self.rule_intervals: dict[tuple[str, str], int] = {}  # (folder uid, group) -> seconds
        self.requests: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.authorizations: set[str | None] = set()
        self.lock = threading.Lock()

    # Each handler returns (status, body); `problems` collects every deviation from the documented API.
    def handle(self, method: str, path: str, headers, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            self.authorizations.add(headers.get("Authorization"))
            if headers.get("Authorization") not in (f"Bearer {TOKEN}", BASIC):
                return 401, {"message": "Unauthorized"}
            if method in ("POST", "PUT") and headers.get("Content-Type", "").split(";")[0] != "application/json":
                self.problems.append(f"{method} {path}: body is not JSON")
            for pattern, handler in self.routes:
                match = re.fullmatch(pattern, f"{method} {path}")
                if match:
                    return handler(self, body, *match.groups())
            self.problems.append(f"undocumented request {method} {path}")
            return 404, {"message": "Not found"}

    def _require(self, what: str, body: Any, keys: set[str]) -> bool:
        missing = keys - set(body or {})
        if missing:
            self.problems.append(f"{what}: missing {sorted(missing)}")
        return not missing

    # --- /api/datasources -------------------------------------------------------------------------------
    def get_datasource(self, _body, uid):
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        return 200, served(
            self.datasources[uid],
            orgId=1,
            url="",
            user="",
            database="",
            basicAuth=False,
            withCredentials=False,
            readOnly=False,
            secureJsonFields={"password": True},
            typeLogoUrl="public/plugins/grafana-clickhouse-datasource/img/logo.svg",
        )

    def create_datasource(self, body):
        if not self._require("POST /api/datasources", body, {"name", "type", "access", "uid", "jsonData"}):
            return 400, {"message": "bad request"}
        if body["uid"] in self.datasources:
            self.problems.append("duplicate data source create")
            return 409, {"message": "data source with the same uid already exists"}
        stored = {k: v for k, v in body.items() if k != "secureJsonData"} | {
            "id": len(self.datasources) + 1,
            "version": 1,
        }
        self.datasources[body["uid"]] = stored
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": body["name"]}

    def update_datasource(self, body, uid):
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        if not self._require(f"PUT /api/datasources/uid/{uid}", body, {"name", "type", "access"}):
            return 400, {"message": "bad request"}
        old = self.datasources[uid]
        self.datasources[uid] = {k: v for k, v in body.items() if k != "secureJsonData"} | {
            "id": old["id"],
            "version": old["version"] + 1,
        }
        return 200, {"datasource": self.datasources[uid], "message": "Datasource updated"}

    # --- /api/folders -----------------------------------------------------------------------------------
    def get_folder(self, _body, uid):
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        return 200, served(
            self.folders[uid],
            url=f"/dashboards/f/{uid}/",
            hasAcl=False,
            canSave=True,
            created=UPDATED,
            updated=UPDATED,
            parents=[],
        )

    def create_folder(self, body):
        if not self._require("POST /api/folders", body, {"title"}):
            return 400, {"message": "bad request"}
        uid = body.get("uid") or "generated"
        if uid in self.folders:
            self.problems.append("duplicate folder create")
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[uid] = {"uid": uid, "title": body["title"], "id": len(self.folders) + 1, "version": 1}
        return 200, self.folders[uid]

    def update_folder(self, body, uid):
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        if not self._require(f"PUT /api/folders/{uid}", body, {"title"}):
            return 400, {"message": "bad request"}
        folder = self.folders[uid]
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return 412, {"message": "the folder has been changed by someone else"}
        folder |= {"title": body["title"], "version": folder["version"] + 1}
        return 200, folder

    # --- /api/dashboards --------------------------------------------------------------------------------
    def get_dashboard(self, _body, uid):
        if uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        stored = self.dashboards[uid]
        meta = {
            "folderUid": stored["folderUid"],
            "folderTitle": self.folders[stored["folderUid"]]["title"],
            "slug": uid,
            "url": f"/d/{uid}",
            "version": stored["dashboard"]["version"],
            "created": UPDATED,
            "updated": UPDATED,
            "canSave": True,
            "provisioned": False,
        }
        return 200, {"dashboard": served(stored["dashboard"]), "meta": meta}

    def save_dashboard(self, body):
        if not self._require("POST /api/dashboards/db", body, {"dashboard"}):
            return 400, {"message": "bad request"}
        dashboard = body["dashboard"]
        if not dashboard.get("uid") or not dashboard.get("title") or dashboard.get("id") is not None:
            self.problems.append("dashboard without uid/title, or with an id (a new save must send id null)")
        if body.get("folderUid") not in self.folders:
            self.problems.append(f"dashboard saved into unknown folder {body.get('folderUid')!r}")
            return 400, {"message": "folder not found"}
        if dashboard["uid"] in self.dashboards and not body.get("overwrite"):
            return 412, {"status": "version-mismatch"}
        version = self.dashboards.get(dashboard["uid"], {"dashboard": {"version": 0}})["dashboard"]["version"] + 1
        self.dashboards[dashboard["uid"]] = {
            "dashboard": dashboard | {"id": 7, "version": version},
            "folderUid": body["folderUid"],
        }
        return 200, {
            "id": 7,
            "uid": dashboard["uid"],
            "status": "success",
            "version": version,
            "url": f"/d/{dashboard['uid']}",
        }

    # --- /api/v1/provisioning/alert-rules ---------------------------------------------------------------
    RULE_KEYS = {"title", "condition", "data", "folderUID", "ruleGroup", "noDataState", "execErrState", "for", "orgID"}

    def _check_rule(self, what: str, body: dict) -> bool:
        if not self._require(what, body, self.RULE_KEYS):
            return False
        ok = body["folderUID"] in self.folders and body["condition"] in {d["refId"] for d in body["data"]}
        for query in body["data"]:
            ok &= {"refId", "relativeTimeRange", "datasourceUid", "model"} <= set(query)
            ok &= query["datasourceUid"] in self.datasources or query["datasourceUid"] == "__expr__"
        if not ok:
            self.problems.append(f"{what}: unknown folder or data source, or a malformed query")
        return bool(ok)

    def _served_rule(self, uid: str) -> dict:
        return served(self.rules[uid], updated=UPDATED, provenance="api", notification_settings=None, record=None)

    def get_rule(self, _body, uid):
        return (200, self._served_rule(uid)) if uid in self.rules else (404, {"message": "rule not found"})

    def create_rule(self, body):
        if not self._check_rule("POST /api/v1/provisioning/alert-rules", body):
            return 400, {"message": "invalid rule"}
        if body.get("uid") in self.rules:
            self.problems.append("duplicate alert rule create")
            return 409, {"message": "rule exists"}
        self.rules[body["uid"]] = body | {"id": len(self.rules) + 1}
        self.rule_intervals.setdefault((body["folderUID"], body["ruleGroup"]), DEFAULT_RULE_INTERVAL)
        return 201, self._served_rule(body["uid"])

    def update_rule(self, body, uid):
        if uid not in self.rules:
            return 404, {"message": "rule not found"}
        if not self._check_rule(f"PUT /api/v1/provisioning/alert-rules/{uid}", body):
            return 400, {"message": "invalid rule"}
        self.rules[uid] = body | {"id": self.rules[uid]["id"]}
        return 200, self._served_rule(uid)

    # --- /api/v1/provisioning/folder/{folderUid}/rule-groups/{group} (an AlertRuleGroup) ----------------
    def _group(self, folder: str, group: str) -> list[str]:
        return [uid for uid, r in self.rules.items() if (r["folderUID"], r["ruleGroup"]) == (folder, group)]

    def get_rule_group(self, _body, folder, group):
        if not self._group(folder, group):
            return 404, {"message": "rule group does not exist"}
        return 200, {
            "title": group,
            "folderUid": folder,
            "interval": self.rule_intervals[(folder, group)],
            "rules": [self._served_rule(uid) for uid in self._group(folder, group)],
        }

    def put_rule_group(self, body, folder, group):
        what = f"PUT /api/v1/provisioning/folder/{folder}/rule-groups/{group}"
        if not self._require(what, body, {"title", "interval", "rules"}):
            return 400, {"message": "bad request"}
        interval = body["interval"]
        if not isinstance(interval, int) or interval <= 0 or interval % 10:
            self.problems.append(f"{what}: interval must be whole seconds, a multiple of 10, got {interval!r}")
            return 400, {"message": "invalid interval"}
        rules = body["rules"]
        if (
            body["title"] != group
            or not all(self._check_rule(what, r) for r in rules)
            or any((r["folderUID"], r["ruleGroup"]) != (folder, group) or r.get("uid") not in self.rules for r in rules)
        ):
            self.problems.append(
                f"{what}: a rule of another group, malformed, or new (the stand-in models updates only)"
            )
            return 400, {"message": "invalid rule group"}
        for uid in set(self._group(folder, group)) - {r["uid"] for r in rules}:  # the group is replaced
            del self.rules[uid]
        for rule in rules:
            self.rules[rule["uid"]] = rule | {"id": self.rules[rule["uid"]]["id"]}
        self.rule_intervals[(folder, group)] = interval
        return 200, self.get_rule_group(None, folder, group)[1]

    routes = [
        (r"GET /api/datasources/uid/([^/]+)", get_datasource),
        (r"POST /api/datasources", create_datasource),
        (r"PUT /api/datasources/uid/([^/]+)", update_datasource),
        (r"GET /api/folders/([^/]+)", get_folder),
        (r"POST /api/folders", create_folder),
        (r"PUT /api/folders/([^/]+)", update_folder),
        (r"GET /api/dashboards/uid/([^/]+)", get_dashboard),
        (r"POST /api/dashboards/db", save_dashboard),
        (r"GET /api/v1/provisioning/alert-rules/([^/]+)", get_rule),
        (r"POST /api/v1/provisioning/alert-rules", create_rule),
        (r"PUT /api/v1/provisioning/alert-rules/([^/]+)", update_rule),
        (r"GET /api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", get_rule_group),
        (r"PUT /api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", put_rule_group),
    ]

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m in WRITES]


def _handler(grafana: FakeGrafana):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                grafana.problems.append(f"{self.command} {self.path}: body is not valid JSON")
                body = None
            status, payload = grafana.handle(self.command, self.path.split("?")[0], self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def run_push(url: str, *extra: str, password: str | None = "s3cret"):
    app = typer.Typer()
    app.add_typer(grafana_app, name="grafana")
    secret = ["--clickhouse-password", password] if password else []
    result = CliRunner().invoke(
        app,
        ["grafana", "push", "--url", url, "--token", TOKEN, "--clickhouse-host", "ch.internal", *secret, *extra],
        env={"COLUMNS": "200", "FOOTHOLD_CLICKHOUSE_PASSWORD": None},
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_push_creates_everything_then_a_second_push_updates_without_duplicates(grafana):
    url, state = grafana
    rule_count = len(build.alert_rules_document()["groups"][0]["rules"])
    dashboards = {d.uid for d in build.dashboards()}

    output = run_push(url)
    assert state.problems == []
    assert f"{2 + len(dashboards) + rule_count} created, 1 updated" in output  # the rule group's interval
    assert set(state.datasources) == {"foothold-clickhouse"} and set(state.folders) == {"foothold"}
    ds = state.datasources["foothold-clickhouse"]
    assert ds["type"] == "grafana-clickhouse-datasource"
    assert {k: ds["jsonData"][k] for k in ("host", "port", "protocol", "defaultDatabase")} == {
        "host": "ch.internal",
        "port": 8123,
        "protocol": "http",
        "defaultDatabase": "foothold",
    }
    assert set(state.dashboards) == dashboards and all(d["folderUid"] == "foothold" for d in state.dashboards.values())
    assert len(state.rules) == rule_count
    rule = state.rules["foothold-durable-write"]
    assert rule["ruleGroup"] == build.RULE_GROUP and rule["folderUID"] == "foothold"
    assert rule["data"][0]["model"]["rawSql"].count("$__timeFilter(Timestamp)") == 2  # macros sent as written

    creates = [w for w in state.writes() if w[0] == "POST" and w[1] != "/api/dashboards/db"]
    state.requests.clear()
    output = run_push(url)
    assert state.problems == []
    writes = state.writes()
    assert not [w for w in writes if w[0] == "POST" and w[1] != "/api/dashboards/db"], "second push created again"
    assert ("PUT", "/api/datasources/uid/foothold-clickhouse") in writes  # a password is always re-sent
    assert "0 created" in output and len(creates) == 2 + rule_count
    # Dashboards and rules identical to what Grafana holds are left alone.
    assert not [w for w in writes if w[1] == "/api/dashboards/db" or "alert-rules" in w[1] or "rule-groups" in w[1]]
    assert f"{len(dashboards) + rule_count + 2} unchanged" in output
    assert len(state.dashboards) == len(dashboards) and len(state.rules) == rule_count


def test_push_updates_what_drifted(grafana):
    url, state = grafana
    run_push(url)
    state.rules["foothold-chained-tools-unchecked"]["noDataState"] = "Alerting"  # edited in the UI
    state.dashboards["foothold-overview"]["dashboard"]["title"] = "renamed by hand"
    state.requests.clear()
    output = run_push(url)
    assert state.problems == []
    assert ("PUT", "/api/v1/provisioning/alert-rules/foothold-chained-tools-unchecked") in state.writes()
    assert ("POST", "/api/dashboards/db") in state.writes()
    assert state.rules["foothold-chained-tools-unchecked"]["noDataState"] == "OK"
    assert state.dashboards["foothold-overview"]["dashboard"]["title"] == "Foothold / Overview"
    assert "0 created, 3 updated" in output


def test_push_sets_the_rule_groups_interval_and_keeps_its_rules(grafana):
    url, state = grafana
    group_path = f"/api/v1/provisioning/folder/{build.FOLDER_UID}/rule-groups/{build.RULE_GROUP}"
    run_push(url)
    assert state.problems == [] and ("PUT", group_path) in state.writes()
    assert state.rule_intervals == {(build.FOLDER_UID, build.RULE_GROUP): 60} and build.RULE_INTERVAL == "1m"
    assert len(state.rules) == len(build.alert_rules_document()["groups"][0]["rules"])  # the PUT replaced none
    state.rule_intervals[(build.FOLDER_UID, build.RULE_GROUP)] = 300  # changed in the UI
    state.requests.clear()
    output = run_push(url, password=None)
    assert state.problems == [] and state.writes() == [("PUT", group_path)] and "0 created, 1 updated" in output
    assert state.rule_intervals[(build.FOLDER_UID, build.RULE_GROUP)] == 60


def test_push_restores_the_folder_title(grafana):
    url, state = grafana
    run_push(url)
    state.folders["foothold"]["title"] = "renamed by hand"
    state.requests.clear()
    output = run_push(url, password=None)
    assert (
        state.problems == []
        and state.writes() == [("PUT", "/api/folders/foothold")]
        and "0 created, 1 updated" in output
    )
    assert state.folders["foothold"]["title"] == build.FOLDER_TITLE


def test_a_re_push_is_a_no_op_against_grafanas_normalised_responses(grafana):
    url, state = grafana
    run_push(url)
    rule = state.get_rule(None, "foothold-durable-write")[1]
    assert {"id", "updated", "provenance"} <= set(rule) and list(rule) == sorted(rule)  # not as sent
    assert {"id", "version"} <= set(state.get_dashboard(None, "foothold-overview")[1]["dashboard"])
    state.requests.clear()
    output = run_push(url, password=None)  # without a password the data source can be compared too
    assert state.problems == [] and state.writes() == []
    assert "0 created, 0 updated" in output and all(m == "GET" for m, _ in state.requests)


def test_dry_run_reads_only_and_prints_the_plan(grafana):
    url, state = grafana
    output = run_push(url, "--dry-run")
    assert state.problems == [] and state.writes() == [] and state.requests
    assert all(m == "GET" for m, _ in state.requests)
    assert "dry run" in output and "foothold-overview" in output and "create" in output
    run_push(url)
    state.requests.clear()
    output = run_push(url, "--dry-run")
    assert state.writes() == [] and "unchanged" in output and "1 to update" in output  # the data source password


def test_push_reports_an_unreachable_grafana_clearly():
    app = typer.Typer()
    app.add_typer(grafana_app, name="grafana")
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(app, ["grafana", "push", "--url", f"http://127.0.0.1:{port}", "--token", TOKEN])
    assert result.exit_code == 1 and "refused the push" in result.output


def test_generate_check_detects_stale_files(tmp_path, monkeypatch):
    app = typer.Typer()
    app.add_typer(grafana_app, name="grafana")
    runner = CliRunner()
    assert runner.invoke(app, ["grafana", "generate", "--check"]).exit_code == 0
    # Point the generator at a copy, make one file stale, and check both --check and a rewrite.
    json_dir, alerting_dir = tmp_path / "json", tmp_path / "alerting"
    monkeypatch.setattr(build, "JSON_DIR", json_dir)
    monkeypatch.setattr(build, "ALERTING_DIR", alerting_dir)
    assert runner.invoke(app, ["grafana", "generate", "--check"]).exit_code == 1  # nothing written there yet
    assert runner.invoke(app, ["grafana", "generate"]).exit_code == 0
    assert runner.invoke(app, ["grafana", "generate", "--check"]).exit_code == 0
    (json_dir / "overview.json").write_text("{}", encoding="utf-8")
    (json_dir / "retired.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(app, ["grafana", "generate", "--check"])
    assert result.exit_code == 1 and "overview.json" in result.output and "retired.json" in result.output
    runner.invoke(app, ["grafana", "generate"])
    assert not (json_dir / "retired.json").exists() and build.stale_files() == []


def test_basic_auth_when_no_token(grafana):
    url, state = grafana
    app = typer.Typer()
    app.add_typer(grafana_app, name="grafana")
    result = CliRunner().invoke(
        app, ["grafana", "push", "--url", url, "--user", "admin", "--password", "pw", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert state.authorizations == {BASIC}
    bad = CliRunner().invoke(app, ["grafana", "push", "--url", url, "--user", "admin", "--password", "wrong"])
    assert bad.exit_code == 1 and "Unauthorized" in bad.output and state.writes() == []
