"""The responder's commands end to end: sessions sent through the OTel SDK to a real collector, read back with
`foothold ...` in its own process (through the collector's query API, as in real use)."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import orjson
import pytest

from foothold import semconv
from tests.conftest import sdk_agent
from tests.scenarios import HOME, Session, artifact, credential_sessions, injected_devops_session, look_alike_session
from tests.test_report import HOSTILE_UNIT
from tests.test_timeline import PLANTED_SECRETS, leaky_session, run_cli

FINGERPRINT = "fp-deploy-token"  # the credential credential_sessions declares
SSH_KEYS = f"{HOME}/.ssh/authorized_keys"
ALERTED = {
    "injected",
    "weeks-later",
    "hostile-unit",
}  # the look-alike, leaky, release and host-files sessions raise nothing


@pytest.fixture
def fleet(collector, tmp_path) -> Path:
    """Seven sessions: an injection, a credential reused after expiry, look-alikes, leaked secrets, a unit file
    with a hostile name, and a file still on this host (returned) whose hash the artifact span carries."""
    kept = tmp_path / "kept.conf"
    kept.write_text("listen 8080\n")
    digest = hashlib.sha256(kept.read_bytes()).hexdigest()
    agent = sdk_agent(collector, service="agents")
    injected_devops_session(agent.tracer)
    credential_sessions(agent.tracer)
    look_alike_session(agent.tracer)
    leaky_session(agent.tracer)
    hostile = Session(agent.tracer, "hostile-unit", agent="provisioner")
    hostile.call("write_file", {"file_path": HOSTILE_UNIT}, artifacts=[artifact(HOSTILE_UNIT, "create")])
    host = Session(agent.tracer, "host-files", agent="configurator")
    host.call(
        "write_file",
        {"file_path": str(kept)},
        artifacts=[artifact(str(kept), "create", **{semconv.ARTIFACT_SHA256: digest})],
    )
    agent.close()
    collector.evaluate_alerts()
    return kept


def _ok(settings, *args: str) -> str:
    result = run_cli(settings, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _table(output: str) -> list[dict[str, str]]:
    """The rows of the rich table a command printed, keyed by column header."""
    lines = [line.strip() for line in output.splitlines()]
    header = next(_cells(line, "┃") for line in lines if line.startswith("┃"))
    return [dict(zip(header, _cells(line, "│"), strict=False)) for line in lines if line.startswith("│")]


def _cells(line: str, bar: str) -> list[str]:
    return [cell.strip() for cell in line.strip(bar).split(bar)]


def test_sessions_lists_every_session_with_its_agent_and_alerts(fleet, settings):
    rows = _table(_ok(settings, "sessions"))
    assert {row["Session"]: row["Agent"] for row in rows} == {
        "injected": "devops-agent",
        "benign": "devops-agent",
        "release": "deployer",
        "weeks-later": "helper",
        "leaky": "other-framework",
        "hostile-unit": "provisioner",
        "host-files": "configurator",
    }
    assert {row["Session"] for row in rows if row["Alerts"] != "0"} == ALERTED


def test_sessions_by_fingerprint_lists_the_sessions_that_used_the_credential(fleet, settings):
    rows = _table(_ok(settings, "sessions", "--fingerprint", FINGERPRINT))
    assert {(row["Session"], row["Agent"]) for row in rows} == {("release", "deployer"), ("weeks-later", "helper")}


def test_artifacts_check_lists_persistence_with_technique_and_host_state(fleet, settings):
    rows = {row["Path"]: row for row in _table(_ok(settings, "artifacts", "--check"))}
    assert set(rows) == {SSH_KEYS, HOSTILE_UNIT}  # the look-alikes and the plain file are not persistence
    assert (rows[SSH_KEYS]["Kind"], rows[SSH_KEYS]["Technique"], rows[SSH_KEYS]["Sessions"]) == (
        "ssh_authorized_keys",
        "T1098.004",
        '["injected"]',
    )
    unit = rows[HOSTILE_UNIT]
    assert (unit["Kind"], unit["Technique"], unit["Agents"], unit["On this host"]) == (
        "systemd_unit",
        "T1543.002",
        '["provisioner"]',
        "missing",
    )


def test_artifacts_check_all_compares_a_file_still_on_this_host(fleet, settings):
    args = ("artifacts", "--all", "--check", "--path", str(fleet.parent))
    (row,) = _table(_ok(settings, *args))
    assert (row["Path"], row["Sessions"], row["On this host"]) == (str(fleet), '["host-files"]', "present-same")
    fleet.write_text("listen 0.0.0.0:8080\n")
    (row,) = _table(_ok(settings, *args))
    assert row["On this host"] == "present-changed"


def test_credentials_show_the_fingerprint_reused_after_expiry(fleet, settings):
    (row,) = _table(_ok(settings, "credentials"))
    assert (row["Fingerprint"], row["Kind"], row["IssuedTo"], row["UsesAfterExpiry"]) == (
        FINGERPRINT,
        "github_token",
        "deployer",
        "1",
    )
    assert sorted(orjson.loads(row["Agents"])) == ["deployer", "helper"]
    assert sorted(orjson.loads(row["Sessions"])) == ["release", "weeks-later"]


def test_report_for_a_session_gives_a_quoted_removal_command(fleet, settings):
    document = orjson.loads(_ok(settings, "report", "hostile-unit", "-f", "json"))
    (step,) = document["remove"]
    assert (step["path"], step["kind"], step["technique"], step["observed"]) == (
        HOSTILE_UNIT,
        "systemd_unit",
        "T1543.002",
        True,
    )
    assert shlex.split(step["command"]) == [
        "systemctl",
        "disable",
        "--now",
        "--",
        Path(HOSTILE_UNIT).name,
        "&&",
        "rm",
        "--",
        HOSTILE_UNIT,
        "&&",
        "systemctl",
        "daemon-reload",
    ]
    assert document["revoke"] == [] and [item["session"] for item in document["review"]] == ["hostile-unit"]
    markdown = _ok(settings, "report", "hostile-unit").splitlines()
    assert f"  - ``{step['command']}``" in markdown  # a code span the path's own backticks cannot close


def test_report_since_lists_what_to_remove_revoke_and_review(fleet, settings):
    document = orjson.loads(_ok(settings, "report", "--since", "1h", "-f", "json"))
    assert {step["path"] for step in document["remove"]} == {SSH_KEYS, HOSTILE_UNIT}
    (usage,) = document["revoke"]
    assert (usage["Fingerprint"], usage["UsesAfterExpiry"]) == (FINGERPRINT, 1)
    lines = _ok(settings, "report", "--since", "1h").splitlines()
    assert f"  - `ssh-keygen -lf {SSH_KEYS}  # then delete the key lines nobody issued`" in lines
    (revoke,) = [line for line in lines if line.startswith("- [ ] revoke")]
    assert f"fingerprint {FINGERPRINT}" in revoke and revoke.endswith("**1 use(s) after expiry**")
    reviewed = {line.split("`")[1] for line in lines if line.startswith("- [ ] session ")}
    assert reviewed == ALERTED


def test_timeline_html_file_shows_the_calls_and_their_alerts(fleet, settings, tmp_path):
    page = tmp_path / "injected.html"
    result = run_cli(settings, "timeline", "injected", "-f", "html", "-o", str(page))
    assert result.returncode == 0 and result.stdout == "" and f"wrote {page}" in result.stderr
    html = page.read_text()
    assert html.count('class="row call"') == 6 and "web_fetch" in html
    assert "cat /tmp/k.pub &gt;&gt; ~/.ssh/authorized_keys" in html and SSH_KEYS in html
    assert '<span class="sev sev-critical">critical</span>durable_write [T1098.004]' in html
    assert 'id="remediation"' in html and f"ssh-keygen -lf {SSH_KEYS}" in html  # the checklist travels with it


def test_alerts_lists_each_rule_that_fired_per_session(fleet, settings):
    fired = {(row["SessionId"], row["RuleId"], row["Severity"]) for row in _table(_ok(settings, "alerts"))}
    assert {
        ("injected", "durable_write", "critical"),
        ("injected", "untrusted_input_to_durable_write", "critical"),
        ("injected", "credential_read_then_egress", "high"),
        ("hostile-unit", "durable_write", "critical"),
        ("weeks-later", "credential_expired", "high"),
        ("weeks-later", "credential_foreign_agent", "high"),
    } <= fired
    assert {session for session, _, _ in fired} == ALERTED


def test_no_planted_secret_reaches_any_command_output(fleet, settings, tmp_path):
    page = tmp_path / "leaky.html"
    timelines = [_ok(settings, "timeline", "leaky"), _ok(settings, "timeline", "leaky", "-f", "json")]
    _ok(settings, "timeline", "leaky", "-f", "html", "-o", str(page))
    timelines.append(page.read_text())
    for text in timelines:
        assert "[REDACTED:github_token:fp=" in text  # the leaked command is shown, redacted
    commands = [
        ("sessions",),
        ("artifacts", "--all"),
        ("credentials",),
        ("alerts",),
        ("report", "leaky"),
        ("report", "leaky", "-f", "json"),
        ("report", "--since", "1h"),
        ("report", "--since", "1h", "-f", "json"),
    ]
    for text in timelines + [_ok(settings, *args) for args in commands]:
        leaked = [line for line in text.splitlines() if any(secret in line for secret in PLANTED_SECRETS)]
        assert leaked == []


@pytest.mark.parametrize(
    ("command", "valid"),
    [
        (("timeline", "injected"), "'text', 'json', 'html'"),
        (("report", "injected"), "'markdown', 'json'"),
        (("sql", "SELECT 1"), "'table', 'json'"),
        (("verify",), "'text', 'json'"),
    ],
)
def test_an_unknown_format_is_refused_naming_the_valid_ones(settings, command, valid):
    result = run_cli(settings, *command, "--format", "xyz")
    message = " ".join(result.stderr.replace("│", " ").split())
    assert result.returncode == 2 and result.stdout == ""
    assert f"'xyz' is not one of {valid}" in message
