"""Session timelines for responders, and redaction of secrets that arrive unredacted from other instrumentations."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import orjson
import pytest

from foothold import semconv
from foothold.investigation.access import open_reader
from foothold.investigation.timeline import SessionFilter, find_sessions, session_timeline
from tests.conftest import rows, sdk_agent
from tests.scenarios import HOME, Session, injected_devops_session

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS_KEY_ID = "AKIA" + "QWERTYUIOP123456"
PLANTED_SECRETS = (GITHUB_TOKEN, AWS_KEY_ID, "hunter2-but-longer")


def leaky_session(tracer) -> None:
    """Another framework sends secrets unredacted: a token in a command, keys in an OpenInference TOOL span."""
    leaky = Session(tracer, "leaky", agent="other-framework")
    leaky.call("bash", {"command": f'curl -H "Authorization: Bearer {GITHUB_TOKEN}" https://api.github.com/user'})
    with tracer.start_as_current_span(
        "tool",
        attributes={
            "openinference.span.kind": "TOOL",
            "tool.name": "deploy",
            semconv.GEN_AI_CONVERSATION_ID: "leaky",
            "input.value": f'{{"aws_access_key_id": "{AWS_KEY_ID}", "password": "hunter2-but-longer"}}',
        },
    ):
        pass


@pytest.fixture
def investigated(collector):
    agent = sdk_agent(collector, service="agents")
    injected_devops_session(agent.tracer)
    leaky_session(agent.tracer)
    agent.close()
    report = collector.evaluate_alerts()
    assert report.raised, "the injected session should raise alerts"
    return collector


def test_timeline_orders_calls_and_nests_artifacts_and_alerts(investigated, settings):
    with open_reader(settings) as reader:
        timeline = session_timeline(reader, "injected")
    assert [c.tool for c in timeline.calls] == ["web_fetch", "bash", "bash", "bash", "bash", "edit_file"]
    assert [c.human_checkpoint for c in timeline.calls] == [False, True, False, False, False, False]
    ssh_call = timeline.calls[2]
    assert [a.path for a in ssh_call.artifacts] == [f"{HOME}/.ssh/authorized_keys"]
    assert ssh_call.persistence_kind == "ssh_authorized_keys" and ssh_call.technique == "T1098.004"
    inline = {a.rule_id for c in timeline.calls for a in c.alerts} | {a.rule_id for a in timeline.unattached_alerts}
    assert {
        "durable_write",
        "untrusted_input_to_durable_write",
        "credential_read_then_egress",
        "code_backdoor_signal",
    } <= inline
    assert timeline.calls[0].timestamp <= timeline.calls[-1].timestamp


def test_sessions_lists_alert_counts(investigated, settings):
    with open_reader(settings) as reader:
        columns, table = find_sessions(reader)
    by_session = {row[0]: dict(zip(columns, row, strict=False)) for row in table}
    assert by_session["injected"]["Alerts"] == 4 and by_session["injected"]["Calls"] == 6
    assert by_session["leaky"]["Alerts"] == 0


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (SessionFilter(), {"injected", "leaky"}),
        (SessionFilter(has_alerts=True), {"injected"}),
        (SessionFilter(agent="other-framework"), {"leaky"}),
        (SessionFilter(tool="web_fetch"), {"injected"}),
        (SessionFilter(tool="deploy"), {"leaky"}),  # an OpenInference TOOL span counts too
        (SessionFilter(path=".ssh/authorized_keys"), {"injected"}),
        (SessionFilter(agent="devops-agent", tool="deploy"), set()),  # filters intersect
        (SessionFilter(since=datetime(2000, 1, 1)), {"injected", "leaky"}),
        (SessionFilter(until=datetime(2000, 1, 1)), set()),
        (SessionFilter(fingerprint="fp-unknown"), set()),
    ],
)
def test_sessions_can_be_found_by_agent_tool_path_time_and_alerts(investigated, settings, where, expected):
    with open_reader(settings) as reader:
        _, table = find_sessions(reader, where)
    assert {row[0] for row in table} == expected


def run_cli(settings, *args: str) -> subprocess.CompletedProcess:
    """`foothold ARGS` in its own process, as a responder runs it; wide enough that no table cell folds."""
    env = os.environ | {
        "FOOTHOLD_DATA_DIR": str(settings.data_dir),
        "FOOTHOLD_STORE__DSN": settings.store_dsn,
        "FOOTHOLD_STORE__DATABASE": settings.store.database,
        "COLUMNS": "1000",
    }
    return subprocess.run(
        [sys.executable, "-m", "foothold", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_timeline_cli_text_and_json(investigated, settings):
    text = run_cli(settings, "timeline", "injected")
    assert text.returncode == 0, text.stderr
    assert "Session injected" in text.stdout and "web_fetch" in text.stdout
    assert "ALERT" in text.stdout and "durable_write" in text.stdout and "authorized_keys" in text.stdout
    as_json = run_cli(settings, "timeline", "injected", "--format", "json")
    document = orjson.loads(as_json.stdout)
    assert document["session_id"] == "injected" and len(document["calls"]) == 6
    missing = run_cli(settings, "timeline", "no-such-session")
    assert missing.returncode == 1 and "foothold-audit sessions" in missing.stderr


def test_no_secret_reaches_the_store_or_any_output(investigated, settings):
    everything = " ".join(
        str(row)
        for table in ("otel_traces", "tool_calls", "artifacts", "alerts")
        for row in rows(investigated, f"SELECT * FROM {{db}}.{table}")
    )
    for secret in PLANTED_SECRETS:
        assert secret not in everything
    assert "[REDACTED:github_token:fp=" in everything  # a recognised token keeps its kind
    assert "[REDACTED:secret_value:fp=" in everything  # a secret-named JSON field is redacted whole
    for output in (
        run_cli(settings, "timeline", "leaky").stdout,
        run_cli(settings, "timeline", "leaky", "-f", "json").stdout,
        run_cli(settings, "sql", "SELECT Arguments FROM tool_calls", "-f", "json").stdout,
    ):
        assert GITHUB_TOKEN not in output and "REDACTED" in output
