"""`make demo` runs `foothold-audit demo`: it must show the attack, the alerts it raises and the remediation."""

from __future__ import annotations

import os
import subprocess
import sys

from foothold.demo import ATTACKER_KEY, DEMO_TOKEN


def test_demo_end_to_end(tmp_path):
    real_home = os.path.expanduser("~")
    env = os.environ | {"COLUMNS": "160", "HOME": str(tmp_path / "untouched-home")}
    result = subprocess.run(
        [sys.executable, "-m", "foothold", "demo", "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Stored" in out and "tool calls" in out and "artifacts" in out
    assert "Alerts raised (8)" in out
    # a Claude Code session seen only through its native telemetry (OTLP logs): each call once, with its decision
    assert "claude-native-4790 arrived as native telemetry (OTLP logs): 3 tool calls" in out
    assert "Bash (accept by user_temporary)" in out
    for rule in (
        "durable_write",
        "untrusted_input_to_durable_write",
        "credential_multi_session",
        "credential_expired",
        "credential_outside_task",
        "credential_after_task_end",
        "credential_foreign_agent",
    ):
        assert rule in out
    assert "T1098.004" in out and "T1677" in out and "✔ human checkpoint" in out
    timeline = out[out.index("Session fix-ci-4711") : out.index("What to remove and revoke")]
    calls = ["read_file  done", "web_fetch  done", "bash  done", "write_file  done", "git_push  done"]
    assert [timeline.index(call) for call in calls] == sorted(timeline.index(call) for call in calls)  # in order
    remediation = out[out.index("What to remove and revoke") :]
    assert ".ssh/authorized_keys" in remediation and "$ ssh-keygen -lf" in remediation
    assert "revoke and reissue the github_token with fingerprint" in remediation
    assert "Tamper evidence (foothold-audit verify):" in out and "intact" in out
    assert DEMO_TOKEN not in out  # the token is only ever shown as a fingerprint
    sandbox_keys = tmp_path / "demo" / "sandbox" / "home" / ".ssh" / "authorized_keys"
    assert ATTACKER_KEY in sandbox_keys.read_text()  # the attack really ran, inside the sandbox
    assert not (tmp_path / "untouched-home" / ".ssh").exists() and real_home != str(tmp_path)
