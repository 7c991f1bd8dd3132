"""The compose deployments: valid against the Compose Specification, and consistent with the repository.

No Docker engine here, so this checks what can be checked without one: the schema (vendored in
tests/data, see its README), every mounted file or folder exists, images are pinned, the collector
configs load with Foothold's own config loader, the cluster's ClickHouse XML agrees with the services, and
Grafana's provisioning points at the generated dashboards and alert rules with the pinned data source uid.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the compose files (test extra)")

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.schema.json").read_text(encoding="utf-8"))
COMPOSE_FILES = [ROOT / "compose" / "docker-compose.yml", ROOT / "compose" / "cluster" / "docker-compose.yml"]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compose_file_follows_the_compose_specification(path):
    validator = jsonschema.Draft201909Validator(SCHEMA)
    errors = sorted(validator.iter_errors(load(path)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_rejects_a_broken_file():
    validator = jsonschema.Draft201909Validator(SCHEMA)
    assert list(validator.iter_errors({"services": {"x": {"image": "a", "ports": {"not": "a list"}}}}))
    assert list(validator.iter_errors({"services": {"x": {"imagee": "typo"}}}))


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_mounted_path_and_build_context_exists(path):
    compose = load(path)
    named = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (path.parent / source).resolve().exists(), f"{name}: {source} does not exist"
            else:
                assert source in named, f"{name}: named volume {source} is not declared"
        if "build" in service:
            context = (path.parent / service["build"]["context"]).resolve()
            assert (context / "pyproject.toml").exists() and (context / service["build"]["dockerfile"]).exists()


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_services_are_pinned_healthy_and_ordered(path):
    compose = load(path)
    for name, service in compose["services"].items():
        if "image" in service and "build" not in service:
            image = service["image"]
            assert re.search(r":\d+\.\d+(\.\d+)*$", image), f"{name}: image {image} is not pinned to a version"
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in compose["services"] and condition == {"condition": "service_healthy"}
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is published beyond loopback"
    grafana = compose["services"]["grafana"]["environment"]
    assert re.fullmatch(r"grafana-clickhouse-datasource@\d+\.\d+\.\d+", grafana["GF_PLUGINS_PREINSTALL_SYNC"])
    mounts = {
        v.split(":")[1]: (path.parent / v.split(":")[0]).resolve() for v in compose["services"]["grafana"]["volumes"]
    }
    assert mounts["/etc/grafana/provisioning/alerting"] == ROOT / "dashboards" / "alerting"
    assert mounts["/var/lib/grafana/dashboards/foothold"] == ROOT / "dashboards" / "json"
    collector = compose["services"]["collector"]
    assert collector["command"] == ["collect", "--config", "/etc/foothold/foothold.yaml"]


def test_grafana_provisioning_uses_the_pinned_datasource_and_the_generated_dashboards():
    from foothold.dashboards import build

    provisioning = ROOT / "compose" / "grafana" / "provisioning"
    (datasource,) = load(provisioning / "datasources" / "clickhouse.yaml")["datasources"]
    assert datasource["uid"] == build.DATASOURCE_UID and datasource["type"] == build.PLUGIN_TYPE
    assert datasource["jsonData"]["defaultDatabase"] == "foothold" and datasource["jsonData"]["protocol"] == "http"
    (provider,) = load(provisioning / "dashboards" / "foothold.yaml")["providers"]
    assert (
        provider["options"]["path"] == "/var/lib/grafana/dashboards/foothold"
        and provider["folder"] == build.FOLDER_TITLE
    )
    compose = load(COMPOSE_FILES[0])
    environment = compose["services"]["grafana"]["environment"]
    used = set(
        re.findall(r"\$\{(\w+)\}", (provisioning / "datasources" / "clickhouse.yaml").read_text(encoding="utf-8"))
    )
    used |= set(re.findall(r"\$\{(\w+)\}", (build.ALERTING_DIR / "contact-points.yaml").read_text(encoding="utf-8")))
    assert used <= set(environment), f"Grafana needs {sorted(used - set(environment))} in its environment"


@pytest.mark.parametrize(
    ("config", "compose_file", "cluster"),
    [
        ("compose/foothold.yaml", COMPOSE_FILES[0], None),
        ("compose/cluster/foothold.yaml", COMPOSE_FILES[1], "foothold"),
    ],
)
def test_collector_config_loads_and_points_at_the_clickhouse_service(config, compose_file, cluster, monkeypatch):
    from foothold.collector.config import ConfigError, load_settings

    for name in [n for n in __import__("os").environ if n.startswith("FOOTHOLD_")]:
        monkeypatch.delenv(name)
    compose = load(compose_file)
    environment = compose["services"]["collector"]["environment"]
    # Receivers bind 0.0.0.0: without tokens the collector refuses to start, so compose requires them.
    with pytest.raises(ConfigError, match="auth"):
        load_settings(ROOT / config)
    assert re.fullmatch(r"\$\{FOOTHOLD_AUTH_TOKENS:\?[^}]+\}", environment["FOOTHOLD_AUTH__TOKENS"])
    required = {
        "FOOTHOLD_AUTH_TOKENS": '[{"name": "agents", "sha256": "' + "ab" * 32 + '"}]',
        "FOOTHOLD_FINGERPRINT_KEY": "k",
    }

    def interpolate(value: str) -> str:  # compose's ${VAR:-default} and ${VAR:?error}
        value = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(value))
        return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: required[m.group(1)], value)

    for key, value in environment.items():
        monkeypatch.setenv(key, interpolate(value))
    settings = load_settings(ROOT / config)
    assert settings.store.database == "foothold" and settings.store.cluster == cluster
    assert settings.receivers.grpc.address.host == "0.0.0.0" and settings.receivers.grpc.address.port == 4317
    assert [t.name for t in settings.auth.tokens] == ["agents"]
    dsn_host = re.search(r"@([\w-]+):8123$", environment["FOOTHOLD_STORE__DSN"]).group(1)
    assert dsn_host in compose["services"] and settings.store.dsn == f"http://foothold:foothold@{dsn_host}:8123"
    if cluster:
        assert environment["FOOTHOLD_STORE__CLUSTER"] == cluster


def test_cluster_xml_matches_the_services():
    cluster_dir = ROOT / "compose" / "cluster"
    compose = load(cluster_dir / "docker-compose.yml")
    nodes = sorted(n for n in compose["services"] if n.startswith("ch-s"))
    assert nodes == ["ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"]
    servers = ET.parse(cluster_dir / "clickhouse" / "remote_servers.xml").getroot()
    shards = servers.findall("./remote_servers/foothold/shard")
    assert [[r.findtext("host") for r in s.findall("replica")] for s in shards] == [
        ["ch-s1r1", "ch-s1r2"],
        ["ch-s2r1", "ch-s2r2"],
    ]
    for shard in shards:
        assert shard.findtext("internal_replication") == "true"
    for node in nodes:
        mounts = {
            v.split(":")[1]: cluster_dir / v.split(":")[0]
            for v in compose["services"][node]["volumes"]
            if v.startswith(".")
        }
        macros = ET.parse(mounts["/etc/clickhouse-server/config.d/macros.xml"]).getroot().find("macros")
        shard, replica = re.fullmatch(r"ch-s(\d)r(\d)", node).groups()
        assert macros.findtext("shard") == shard and macros.findtext("replica") == node
        keeper = ET.parse(mounts["/etc/clickhouse-server/config.d/use-keeper.xml"]).getroot()
        assert keeper.findtext("./zookeeper/node/host") == "keeper"
    keeper = ET.parse(cluster_dir / "clickhouse" / "keeper.xml").getroot()
    assert keeper.findtext("./keeper_server/tcp_port") == "9181"
    assert keeper.findtext("./keeper_server/raft_configuration/server/hostname") == "keeper"


def test_dockerfile_installs_the_collector_extra_and_runs_collect():
    dockerfile = (ROOT / "compose" / "Dockerfile").read_text(encoding="utf-8")
    assert 'pip install --no-cache-dir ".[collector]"' in dockerfile
    assert 'CMD ["collect", "--config", "/etc/foothold/foothold.yaml"]' in dockerfile
    for copied in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M):
        for source in copied.split():
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    import tomllib

    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-dir"
    ]
    copied = {s for line in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M) for s in line.split()}
    assert set(package_dirs.values()) <= copied, "the image must contain every package folder"


# --- Grafana cannot be turned against the store ---------------------------------------------------------

READER_XML = ROOT / "compose" / "clickhouse" / "users.d" / "foothold-reader.xml"


def test_the_reader_user_can_only_select_from_the_foothold_database():
    root = ET.parse(READER_XML).getroot()
    (user,) = root.findall("./users/*")
    assert user.tag == "foothold_reader" and user.find("password").get("from_env") == "CLICKHOUSE_READER_PASSWORD"
    assert [q.text for q in user.findall("./grants/query")] == ["GRANT SELECT ON foothold.*"]
    assert user.findtext("access_management") == "0"
    profile = root.find(f"./profiles/{user.findtext('profile')}")
    assert profile.findtext("readonly") in ("1", "2")  # no writes, no DDL whatever the grants


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_grafana_logs_in_as_the_reader_and_every_server_knows_it(path):
    compose = load(path)
    grafana = compose["services"]["grafana"]["environment"]
    assert grafana["FOOTHOLD_CLICKHOUSE_USER"] == "foothold_reader"
    assert grafana["FOOTHOLD_CLICKHOUSE_PASSWORD"].startswith("${CLICKHOUSE_READER_PASSWORD")
    assert "foothold_reader" not in compose["services"]["collector"]["environment"]["FOOTHOLD_STORE__DSN"]
    servers = [n for n, s in compose["services"].items() if "clickhouse-server" in s.get("image", "")]
    assert servers
    for name in servers:
        service = compose["services"][name]
        mounts = {v.split(":")[1]: (path.parent / v.split(":")[0]).resolve() for v in service["volumes"]}
        assert mounts["/etc/clickhouse-server/users.d/foothold-reader.xml"] == READER_XML, name
        assert "CLICKHOUSE_READER_PASSWORD" in service["environment"], name


def test_one_folder_holds_the_dashboards_and_the_alert_rules():
    """Alert-rule files name their folder by title and are provisioned first; the dashboards must join it."""
    from foothold.dashboards import build

    (provider,) = load(ROOT / "compose" / "grafana" / "provisioning" / "dashboards" / "foothold.yaml")["providers"]
    alerting = load(build.ALERTING_DIR / "foothold-alerts.yaml")
    assert {g["folder"] for g in alerting["groups"]} == {provider["folder"]} == {build.FOLDER_TITLE}
    assert "folderUid" not in provider  # a uid the rules' folder cannot have would make a second folder


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_versions_are_current_and_consistent(path):
    """The pins checked on 2026-12-02 (docs/deployment.md says how); server and keeper move together."""
    images = {
        s["image"].split(":")[0]: s["image"].split(":")[1] for s in load(path)["services"].values() if "image" in s
    }
    assert images["grafana/grafana"] == "13.2.3" and images["clickhouse/clickhouse-server"] == "26.8.19.9"
    if "clickhouse/clickhouse-keeper" in images:
        assert images["clickhouse/clickhouse-keeper"] == images["clickhouse/clickhouse-server"]
    plugin = load(path)["services"]["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    assert plugin == "grafana-clickhouse-datasource@4.14.0"


def test_the_build_context_leaves_out_venvs_and_history_but_keeps_what_the_image_copies():
    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for excluded in (".venv", ".git", "**/__pycache__", ".env"):
        assert excluded in patterns
    dockerfile = (ROOT / "compose" / "Dockerfile").read_text(encoding="utf-8")
    copied = {s for line in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M) for s in line.split()}
    assert not copied & set(patterns), "the Dockerfile copies something .dockerignore leaves out"


def test_the_cluster_collector_and_grafana_reach_every_node_through_the_balancer():
    cluster_dir = ROOT / "compose" / "cluster"
    compose = load(cluster_dir / "docker-compose.yml")
    nodes = sorted(n for n in compose["services"] if n.startswith("ch-s"))
    assert re.search(r"@ch-lb:8123$", compose["services"]["collector"]["environment"]["FOOTHOLD_STORE__DSN"])
    assert compose["services"]["grafana"]["environment"]["FOOTHOLD_CLICKHOUSE_HOST"] == "ch-lb"
    config = (cluster_dir / "haproxy.cfg").read_text(encoding="utf-8")
    servers = re.findall(r"^\s*server (\S+) (\S+):8123 check", config, flags=re.M)
    assert sorted(name for name, _ in servers) == nodes and all(name == host for name, host in servers)
    assert "option httpchk GET /ping" in config
    assert set(compose["services"]["ch-lb"]["depends_on"]) == set(nodes)
