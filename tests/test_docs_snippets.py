"""The README and docs/integrations.md run as written.

A fenced block preceded by ``<!-- runnable -->`` (or ``<!-- runnable: NAME -->``) is executed: Python with
a Python interpreter, shell with bash (``set -e``). The README's walk, "Using it" then "Instrumenting agents"
then the investigation, runs in a fresh venv holding only the wheel built from this tree: ``python -m venv
--without-pip`` (seconds) and ``pip --python VENV install --no-deps`` of the wheel, with the test venv's
site-packages appended through a ``.pth`` for the dependencies (downloading them again would prove pip, not
us, and take minutes). ``foothold`` itself must then import from the fresh venv, not from this checkout
(asserted). The only liberties taken with the text are the ones the README documents: ``FOOTHOLD_*``
variables moving the collector to free loopback ports, ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing the agent
at it, and ``HOME`` in a temp dir.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import rows

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"<!-- runnable(?::\s*(?P<name>[\w-]+))? -->\s*\n```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)
_ANY_BLOCK = re.compile(r"```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)


@dataclass(frozen=True)
class Snippet:
    name: str
    lang: str
    code: str


def runnable(doc: str) -> list[Snippet]:
    text = (ROOT / doc).read_text()
    return [Snippet(m["name"] or "", m["lang"], m["code"]) for m in _BLOCK.finditer(text)]


def _section(doc: str, heading: str) -> str:
    text = (ROOT / doc).read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_readme_marks_its_walk_runnable():
    names = {s.name: s.lang for s in runnable("README.md")}
    assert names == {"collector": "sh", "investigate": "sh", "agent": "python"}
    assert "<!-- runnable: collector -->" in _section("README.md", "Using it")
    assert "<!-- runnable: agent -->" in _section("README.md", "Instrumenting agents")


def test_integration_snippets_capture_content_and_open_a_session():
    """Followed as written, a snippet without these records no arguments and makes every call its own session."""
    for heading in ("LangChain", "OpenAI Agents", "MCP (official"):
        text = (ROOT / "docs/integrations.md").read_text()
        start = text.index(f"## {heading}")
        code = _ANY_BLOCK.search(text, start)["code"]
        compile(code, heading, "exec")
        assert "capture_content=True" in code and "fh.session(" in code, heading


@pytest.mark.parametrize("snippet", runnable("docs/integrations.md"), ids=lambda s: s.code.splitlines()[0][:40])
def test_each_runnable_integration_snippet_records_its_calls(snippet, collector, tmp_path):
    assert snippet.lang == "python"
    env = os.environ | {
        "HOME": str(tmp_path),
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint_url("otlp_http"),
        "FOOTHOLD_FINGERPRINT_KEY": "test-deployment-key",
    }
    done = subprocess.run(
        [sys.executable, "-c", snippet.code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    session = re.search(r'conversation_id="([^"]+)"', snippet.code)[1]
    calls = rows(collector, "SELECT ToolName, Arguments FROM {db}.tool_calls WHERE SessionId = {{s:String}}", s=session)
    assert calls and all(arguments for _, arguments in calls), calls  # content captured, in the session


def test_an_http_endpoint_on_the_grpc_port_is_a_clear_warning(caplog, monkeypatch):
    """The agent side speaks OTLP/HTTP by default: pointed at the collector's gRPC port it would lose
    every span with only an exporter message; setup() says what to change instead."""
    from foothold.instrumentation.provider import _otlp_exporter

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    with caplog.at_level(logging.WARNING, logger="foothold.instrumentation"):
        _otlp_exporter("http://127.0.0.1:4317", None, 1.0)
        _otlp_exporter("http://127.0.0.1:4318", None, 1.0)
    (warning,) = caplog.messages
    assert "OTLP/gRPC port" in warning and "use port 4318" in warning and "protocol='grpc'" in warning


def _fresh_venv(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (wheel,) = wheels.glob("foothold_audit-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-deps"]
        + ["--no-index", str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    purelib = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (purelib / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_readme_walk_runs_end_to_end_in_a_fresh_venv(tmp_path):
    snippets = {s.name: s for s in runnable("README.md")}
    venv = _fresh_venv(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTHOLD_", "OTEL_", "VIRTUAL_ENV"))}
    env |= {
        "HOME": str(home),
        "PATH": f"{venv / 'bin'}:{env['PATH']}",
        "COLUMNS": "200",
        "FOOTHOLD_RECEIVERS__GRPC__ENDPOINT": "127.0.0.1:0",  # free ports: the README's defaults may be taken
        "FOOTHOLD_RECEIVERS__HTTP__ENDPOINT": "127.0.0.1:0",
        "FOOTHOLD_QUERY_API__ENDPOINT": "127.0.0.1:0",
        "FOOTHOLD_FINGERPRINT_KEY": "readme-walk-key",
    }
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import foothold; print(foothold.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not this checkout

    log = tmp_path / "collector.log"
    with open(log, "wb") as out:
        collector = subprocess.Popen(
            ["bash", "-ec", snippets["collector"].code], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    try:
        discovery = home / ".local" / "share" / "foothold" / "collector.json"
        endpoints = _wait_for(discovery, collector, log)
        agent_env = env | {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoints["otlp_http"], "GITHUB_TOKEN": "ghp_" + "x" * 36}
        agent = subprocess.run(
            [str(venv / "bin" / "python"), "-c", snippets["agent"].code],
            capture_output=True,
            text=True,
            env=agent_env,
            cwd=tmp_path,
            timeout=120,
        )
        assert agent.returncode == 0, agent.stderr
        flushed = httpx.post(endpoints["query_api"] + "/v1/flush", timeout=60)  # the batch is in the store
        assert flushed.status_code == 200, flushed.text
        walk = subprocess.run(
            ["bash", "-ec", snippets["investigate"].code],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert walk.returncode == 0, walk.stdout[-3000:] + walk.stderr[-3000:]
    finally:
        _stop(collector)
    out = walk.stdout
    assert "c-42" in out and "devops-agent" in out  # the agent shown by its id: the snippet sets no name
    assert "git status --short" in out  # arguments captured (capture_content=True)
    assert "github_token" in out and "ghp_" not in out  # the credential as a fingerprint only
    assert "reading collector query API at http://127.0.0.1:" in walk.stderr
    page = (tmp_path / "c-42.html").read_text()
    assert 'id="summary"' in page and "devops-agent" in page
    assert "CREATE TABLE IF NOT EXISTS foothold.tool_calls" in out


def _wait_for(discovery: Path, process: subprocess.Popen, log: Path, deadline: float = 120.0) -> dict:
    """The collector writes collector.json once it listens: a readiness probe, polled."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if process.poll() is not None:
            pytest.fail(f"the collector exited ({process.returncode}): {log.read_text()[-2000:]}")
        if discovery.exists():
            return orjson.loads(discovery.read_bytes())
        time.sleep(0.05)
    pytest.fail(f"the collector did not start: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the collector (bash may have exec'd it, or run it as its child): it flushes and exits."""
    for child in _children(process.pid):
        os.kill(child, signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]
