"""Terminal escapes in stored data never reach the responder's terminal raw (issue 13).

Whoever steers the agent chooses its tool names and arguments. Here they carry an OSC window-title
sequence, a screen erase, carriage return and backspace (overwrite what was printed), a C1 CSI and a
bidi override; they travel the real way (OTel SDK -> OTLP/gRPC -> collector -> chDB, alerts raised by the
rules), and every command a responder runs reads them back in its own process through the query API.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from foothold.render import SafeConsole, shown
from tests.conftest import sdk_agent
from tests.scenarios import HOME, Session, artifact
from tests.test_timeline import run_cli

TITLE = "\x1b]0;you have been pwned\x07"
ERASE = "\x1b[2J\x1b[H"
TOOL = f"bash{TITLE}{ERASE}"
KEYS = f"{HOME}/.ssh/authorized_keys\u202etxt.exe"
COMMAND = f"echo ok\r\x1b[1A\x1b[2Kcat /tmp/k.pub >> ~/.ssh/authorized_keys\x08\x9b31m # {TITLE}"
RAW = ("\x1b", "\x07", "\x08", "\r", "\x9b", "\u202e")


@pytest.fixture
def hostile(collector, settings):
    agent = sdk_agent(collector, service="agents")
    session = Session(agent.tracer, "esc-session", agent=f"agent{ERASE}")
    session.call(TOOL, {"command": COMMAND}, artifacts=[artifact(KEYS)])
    session.call("bash", {"command": f"cat ~/.aws/credentials {ERASE}"})
    agent.close()
    assert collector.evaluate_alerts().raised, "the authorized_keys write should raise alerts"
    return settings


def test_the_collector_alert_log_escapes_stored_values(capfd, hostile):
    """The stdout alert sink is read in a terminal too (docker logs, journalctl)."""
    printed = capfd.readouterr().out
    assert "ALERT" in printed and not any(c in printed for c in RAW) and "\\u001b[2J" in printed


COMMANDS = [
    ("timeline", "esc-session"),
    ("sql", "SELECT ToolName, Arguments FROM tool_calls"),
    ("sql", "SELECT ToolName, Arguments FROM tool_calls", "--format", "json"),
    ("sql", "SELECT toUInt8(ToolName) FROM tool_calls"),  # the engine's error quotes the stored value
    ("sessions",),
    ("alerts",),
    ("artifacts", "--all"),
    ("credentials",),
    ("report", "esc-session"),
    ("timeline", f"missing{ERASE}"),
]


def test_no_command_prints_a_control_or_bidi_character_raw(hostile):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: (args, run_cli(hostile, *args)), COMMANDS))
    for args, result in results:
        for stream in (result.stdout, result.stderr):
            leaked = [hex(ord(c)) for c in RAW if c in stream]
            assert not leaked, f"`foothold-audit {' '.join(args)}` printed {leaked} raw:\n{stream!r}"
    timeline = results[0][1].stdout
    assert "\\u001b]0;you have been pwned" in timeline, "the escape is shown, not silently dropped"
    assert "authorized_keys\\u202etxt.exe" in timeline
    assert "\\u001b" in results[3][1].stderr, "an engine error quoting a stored value is escaped too"


def test_the_render_layer_escapes_every_segment():
    """A console message (markup with a stored value in it) goes through the same escaping."""
    out = io.StringIO()
    console = SafeConsole(file=out, width=200, color_system=None)  # no styling: any ESC would be the data's
    console.print(f"[bold]tool:[/] {TOOL} {KEYS}")
    text = out.getvalue()
    assert not any(c in text for c in RAW) and "\\u001b[2J" in text and "\\u202e" in text
    assert shown("a\tb\nc") == "a\tb\nc" and shown("a\nb", one_line=True) == "a\\u000ab"
