"""`foothold grafana push` against a stand-in Grafana that checks each request against the documented HTTP API.

The stand-in (stdlib http.server on 127.0.0.1, a free port) keeps data sources, folders, dashboards and
alert rules in memory and answers like Grafana: 404 for unknown uids, the documented paths and methods
only, and a 400 for payloads missing what Grafana requires. The test then runs the real CLI command
(typer, grafana-client) against it.
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


class FakeGrafana:
    def __init__(self) -> None:
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.rules: dict[str, dict] = {}
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
        return (200, self.datasources[uid]) if uid in self.datasources else (404, {"message": "Data source not found"})

    def create_datasource(self, body):
        if not self._require("POST /api/datasources", body, {"name", "type", "access", "uid", "jsonData"}):
            return 400, {"message": "bad request"}
        if body["uid"] in self.datasources:
            self.problems.append("duplicate data source create")
            return 409, {"message": "data source with the same uid already exists"}
        stored = {k: v for k, v in body.items() if k != "secureJsonData"} | {"id": len(self.datasources) + 1, "version": 1}
        self.datasources[body["uid"]] = stored
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": body["name"]}

    def update_datasource(self, body, uid):
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        if not self._require(f"PUT /api/datasources/uid/{uid}", body, {"name", "type", "access"}):
            return 400, {"message": "bad request"}
        old = self.datasources[uid]
        self.datasources[uid] = {k: v for k, v in body.items() if k != "secureJsonData"} | {"id": old["id"], "version": old["version"] + 1}
        return 200, {"datasource": self.datasources[uid], "message": "Datasource updated"}

    # --- /api/folders -----------------------------------------------------------------------------------
    def get_folder(self, _body, uid):
        return (200, self.folders[uid]) if uid in self.folders else (404, {"message": "folder not found"})

    def create_folder(self, body):
        if not self._require("POST /api/folders", body, {"title"}):
            return 400, {"message": "bad request"}
        uid = body.get("uid") or "generated"
        if uid in self.folders:
            self.problems.append("duplicate folder create")
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[uid] = {"uid": uid, "title": body["title"], "id": len(self.folders) + 1, "version": 1}
        return 200, self.folders[uid]

    # --- /api/dashboards --------------------------------------------------------------------------------
    def get_dashboard(self, _body, uid):
        if uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        stored = self.dashboards[uid]
        return 200, {"dashboard": stored["dashboard"], "meta": {"folderUid": stored["folderUid"], "version": stored["dashboard"]["version"]}}

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
        self.dashboards[dashboard["uid"]] = {"dashboard": dashboard | {"id": 7, "version": version}, "folderUid": body["folderUid"]}
        return 200, {"id": 7, "uid": dashboard["uid"], "status": "success", "version": version, "url": f"/d/{dashboard['uid']}"}

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

    def get_rule(self, _body, uid):
        return (200, self.rules[uid]) if uid in self.rules else (404, {"message": "rule not found"})

    def create_rule(self, body):
        if not self._check_rule("POST /api/v1/provisioning/alert-rules", body):
            return 400, {"message": "invalid rule"}
        if body.get("uid") in self.rules:
            self.problems.append("duplicate alert rule create")
            return 409, {"message": "rule exists"}
        self.rules[body["uid"]] = body | {"id": len(self.rules) + 1, "provenance": "api"}
        return 201, self.rules[body["uid"]]

    def update_rule(self, body, uid):
        if uid not in self.rules:
            return 404, {"message": "rule not found"}
        if not self._check_rule(f"PUT /api/v1/provisioning/alert-rules/{uid}", body):
            return 400, {"message": "invalid rule"}
        self.rules[uid] = body | {"id": self.rules[uid]["id"], "provenance": "api"}
        return 200, self.rules[uid]

    routes = [
        (r"GET /api/datasources/uid/([^/]+)", get_datasource),
        (r"POST /api/datasources", create_datasource),
        (r"PUT /api/datasources/uid/([^/]+)", update_datasource),
        (r"GET /api/folders/([^/]+)", get_folder),
        (r"POST /api/folders", create_folder),
        (r"GET /api/dashboards/uid/([^/]+)", get_dashboard),
        (r"POST /api/dashboards/db", save_dashboard),
        (r"GET /api/v1/provisioning/alert-rules/([^/]+)", get_rule),
        (r"POST /api/v1/provisioning/alert-rules", create_rule),
        (r"PUT /api/v1/provisioning/alert-rules/([^/]+)", update_rule),
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

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815 (http.server's naming)

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


def run_push(url: str, *extra: str):
    app = typer.Typer()
    app.add_typer(grafana_app, name="grafana")
    result = CliRunner().invoke(app, ["grafana", "push", "--url", url, "--token", TOKEN, "--clickhouse-host", "ch.internal",
                                      "--clickhouse-password", "s3cret", *extra], env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_push_creates_everything_then_a_second_push_updates_without_duplicates(grafana):
    url, state = grafana
    rule_count = len(build.alert_rules_document()["groups"][0]["rules"])
    dashboards = {d.uid for d in build.dashboards()}

    output = run_push(url)
    assert state.problems == []
    assert f"{2 + len(dashboards) + rule_count} created" in output
    assert set(state.datasources) == {"foothold-clickhouse"} and set(state.folders) == {"foothold"}
    ds = state.datasources["foothold-clickhouse"]
    assert ds["type"] == "grafana-clickhouse-datasource"
    assert {k: ds["jsonData"][k] for k in ("host", "port", "protocol", "defaultDatabase")} == \
        {"host": "ch.internal", "port": 8123, "protocol": "http", "defaultDatabase": "foothold"}
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
    assert not [w for w in writes if w[1] == "/api/dashboards/db" or "alert-rules" in w[1]]
    assert f"{len(dashboards) + rule_count + 1} unchanged" in output
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
    result = CliRunner().invoke(app, ["grafana", "push", "--url", url, "--user", "admin", "--password", "pw", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert state.authorizations == {BASIC}
    bad = CliRunner().invoke(app, ["grafana", "push", "--url", url, "--user", "admin", "--password", "wrong"])
    assert bad.exit_code == 1 and "Unauthorized" in bad.output and state.writes() == []
