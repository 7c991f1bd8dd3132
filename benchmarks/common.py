"""Shared pieces of the benchmarks: the machine, a collector subprocess, realistic spans, tables.

Everything here measures from the outside: the collector runs as ``python -m foothold collect -c cfg.yaml``
with its own data dir, and its CPU time and memory are read from ``/proc/<pid>`` (psutil is not a
dependency). Spans are made by the real OpenTelemetry SDK and encoded by the SDK's own OTLP encoder.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from foothold import semconv

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICE = "bench-agent"

# --- the machine ------------------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": platform.python_version(),
        "chdb": _version("chdb"),
        "clickhouse-connect": _version("clickhouse-connect"),
        "grpcio": _version("grpcio"),
        "protobuf": _version("protobuf"),
        "opentelemetry-sdk": _version("opentelemetry-sdk"),
        "pyarrow": _version("pyarrow"),
        "load average at start": load,
    }


def print_machine(title: str) -> None:
    print(f"== {title}")
    for key, value in machine().items():
        print(f"   {key:<22} {value}")
    print()


# --- tables and statistics --------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(headers))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def progress(message: str) -> None:
    print(f"   .. {message}", file=sys.stderr, flush=True)


# --- /proc readings ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads (chDB runs inside the collector's process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (the collector's redaction workers), from each thread's children list."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    except OSError:  # gone meanwhile: it has nothing below it any more
        pass
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and everything below it: its own, its reaped children's (cutime + cstime, a replaced worker's)
    and each live descendant's (own + reaped). A descendant that exits between two readings moves into its parent's
    reaped share, so nothing is counted twice or lost."""
    total = 0.0
    for process in (pid, *descendants(pid)):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / CLK_TCK
    return total


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def tree_memory_kib(pid: int) -> dict[str, int]:
    """:func:`memory_kib` summed over the process and its descendants, so a worker pool's memory counts.

    The summed VmHWM is each process's own peak added up: an upper bound of the tree's peak (the processes need
    not peak at once), and a child that already exited is not in it. Shared pages (a forked child's copy-on-write
    pages, the same library mapped in each) count once per process, as the kernel charges RSS.
    """
    total: dict[str, int] = {}
    for member in (pid, *descendants(pid)):
        try:
            reading = memory_kib(member)
        except OSError:  # exited between the listing and the read
            continue
        for key, value in reading.items():
            total[key] = total.get(key, 0) + value
    return total


class RssSampler:
    """Samples the resident set of a process and its descendants every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []  # (monotonic, KiB)
        self.anon_max_kib = 0  # the process's own allocations (RssAnon), without mapped library code
        self.children_max_kib = 0  # the peak of its descendants' RSS summed (the collector's worker processes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reading = tree_memory_kib(self.pid)  # with any worker processes it started
                self.samples.append((time.monotonic(), reading["VmRSS"]))
                self.anon_max_kib = max(self.anon_max_kib, reading.get("RssAnon", 0))
            except (OSError, KeyError):
                return
            self.children_max_kib = max(self.children_max_kib, self._children_kib())
            self._stop.wait(self.interval)

    def _children_kib(self) -> int:
        total = 0
        for child in descendants(self.pid):
            try:
                total += memory_kib(child).get("VmRSS", 0)
            except OSError:  # exited since it was listed
                continue
        return total

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mib_at(self, fraction: float) -> float:
        """RSS at a fraction of the sampled window (0.5: the middle), in MiB."""
        if not self.samples:
            return float("nan")
        return self.samples[min(len(self.samples) - 1, int(fraction * len(self.samples)))][1] / 1024

    def max_mib(self, start: float = 0.0) -> float:
        part = self.samples[int(start * len(self.samples)) :]
        return max(s[1] for s in part) / 1024 if part else float("nan")


# --- the collector as a subprocess ------------------------------------------------------------------------


@dataclass
class CollectorProcess:
    """``python -m foothold collect -c cfg.yaml`` on loopback ports picked by the OS, own chDB data dir."""

    batch: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, Any] = field(default_factory=dict)  # e.g. {"workers": 2}
    alerts: bool = False
    log_level: str = "WARNING"
    keep_dir: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="foothold-bench-"))
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self._http: httpx.Client | None = None

    def start(self, timeout: float = 90.0) -> CollectorProcess:
        import yaml

        config = {
            "data_dir": str(self.dir / "data"),
            "log_level": self.log_level,
            "fingerprint_key": "benchmark-fingerprint-key-0123456789",
            "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
            "query_api": {"endpoint": "127.0.0.1:0"},
            "alerts": {"enabled": self.alerts},
        }
        if self.batch:
            config["batch"] = self.batch
        if self.pipeline:
            config["pipeline"] = self.pipeline
        cfg = self.dir / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHOLD_")} | self.extra_env
        self._log = open(self.dir / "collector.log", "wb")  # noqa: SIM115 (closed in stop(): the log outlives this method)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "foothold", "collect", "-c", str(cfg)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        discovery = self.dir / "data" / "collector.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}: {self.log_tail()}")
            if discovery.exists():
                try:
                    self.info = orjson.loads(discovery.read_bytes())
                    break
                except orjson.JSONDecodeError:
                    pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"collector did not write {discovery} within {timeout}s: {self.log_tail()}")
        self._http = httpx.Client(base_url=self.info["query_api"], timeout=300)
        return self

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.dir / "collector.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def grpc_target(self) -> str:
        return self.info["otlp_grpc"]

    @property
    def http_url(self) -> str:
        return self.info["otlp_http"]

    @property
    def query_url(self) -> str:
        return self.info["query_api"]

    def query(self, sql: str, parameters: dict | None = None) -> list[list[Any]]:
        response = self._http.post("/v1/query", json={"sql": sql, "parameters": parameters})
        if response.status_code != 200:
            raise RuntimeError(f"query failed ({response.status_code}): {response.text[:500]}")
        return response.json()["rows"]

    def scalar(self, sql: str) -> Any:
        return self.query(sql)[0][0]

    def flush(self, timeout: float = 900.0) -> None:
        """Until everything accepted is stored (each /v1/flush call waits up to 60 s server-side)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._http.post("/v1/flush")
            if response.status_code == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"flush did not finish within {timeout:.0f}s: {response.text[:300]}")

    def health(self) -> dict[str, Any]:
        return self._http.get("/healthz").json()

    def stop(self, timeout: float = 120.0) -> int | None:
        if self._http is not None:
            self._http.close()
            self._http = None
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return code

    def __enter__(self) -> CollectorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- realistic agent spans --------------------------------------------------------------------------------

TOOLS: tuple[tuple[str, str, float], ...] = (  # (tool, description, weight)
    ("bash", "Run a shell command in the workspace", 0.40),
    ("read_file", "Read a file from the workspace", 0.25),
    ("write_file", "Write a file in the workspace", 0.15),
    ("edit_file", "Apply an edit to a file", 0.10),
    ("web_fetch", "Fetch a URL and return its text", 0.06),
    ("http_post", "POST JSON to a URL", 0.04),
)
COMMANDS = (
    "git status --short",
    "pytest -q tests/test_api.py -x",
    "ls -la src/",
    "cat README.md | head -50",
    "grep -rn 'TODO' src/ | wc -l",
    "python -m pip install -e .",
    "make lint",
    "git diff --stat HEAD~1",
    "docker ps --format '{{.Names}}'",
    "curl -s https://api.example.com/health",
    "npm test -- --watch=false",
    "find . -name '*.py' -newer setup.cfg",
    "echo 'export PATH=$HOME/bin:$PATH' >> ~/.bashrc",
)
FILES = (
    "src/app/main.py",
    "src/app/models.py",
    "tests/test_api.py",
    "README.md",
    "pyproject.toml",
    "docs/index.md",
    ".github/workflows/ci.yml",
    "src/app/handlers/users.py",
    "config/settings.yaml",
)


def tool_call_attributes(
    rng: random.Random, session: str, agent: str, call_no: int
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(tool name, 15 tool-call attributes, artifact attributes) for one realistic call."""
    tool = rng.choices([t[0] for t in TOOLS], weights=[t[2] for t in TOOLS])[0]
    description = next(t[1] for t in TOOLS if t[0] == tool)
    path = rng.choice(FILES)
    if tool == "bash":
        arguments = {"command": f"{rng.choice(COMMANDS)}  # {CONTENT_NONCE}", "timeout": 120}
        result = "collected 42 items\n\n" + "." * 40 + "\n42 passed in 3.21s"
    elif tool in ("write_file", "edit_file"):
        arguments = {"path": f"/srv/app/{path}", "content": "def handler(request):\n    return {'ok': True}\n" * 3}
        result = f"wrote {rng.randint(100, 4000)} bytes"
    elif tool == "read_file":
        arguments = {"path": f"/srv/app/{path}"}
        result = "import os\nimport sys\n\n" + "# line of source\n" * 12
    elif tool == "web_fetch":
        arguments = {"url": f"https://docs.example.com/guide/{rng.randint(1, 400)}"}
        result = "<html><body>Installation guide ...</body></html>"
    else:
        arguments = {
            "url": "https://hooks.example.com/notify",
            "json": {"status": "done", "build": rng.randint(1, 9999)},
        }
        result = '{"ok": true}'
    arguments["request_id"] = CONTENT_NONCE  # constant here; replay-fresh rewrites it per send
    result += f"\nrequest {CONTENT_NONCE}"
    attrs = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
        semconv.GEN_AI_TOOL_NAME: tool,
        semconv.GEN_AI_TOOL_CALL_ID: f"call_{rng.getrandbits(64):016x}{CALL_NONCE}",  # unique per send (Template)
        semconv.GEN_AI_TOOL_TYPE: "function",
        semconv.GEN_AI_TOOL_DESCRIPTION: description,
        semconv.GEN_AI_TOOL_CALL_ARGUMENTS: orjson.dumps(arguments).decode(),
        semconv.GEN_AI_TOOL_CALL_RESULT: result,
        semconv.GEN_AI_CONVERSATION_ID: session,
        semconv.GEN_AI_AGENT_ID: f"agent-{agent}",
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.TASK_ID: f"task-{session[-6:]}",
        semconv.CWD: "/srv/app",
        semconv.HOME: "/home/dev",
        semconv.MCP_METHOD_NAME: "tools/call",
        semconv.JSONRPC_REQUEST_ID: str(call_no),
    }
    artifact = {
        semconv.GEN_AI_CONVERSATION_ID: session,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.ARTIFACT_KIND: "file",
        semconv.ARTIFACT_ACTION: "modify" if tool in ("write_file", "edit_file") else "read",
        semconv.ARTIFACT_PATH: f"/srv/app/{path}",
        semconv.ARTIFACT_SHA256: f"{rng.getrandbits(256):064x}",
        semconv.ARTIFACT_SIZE: rng.randint(100, 40000),
        semconv.ARTIFACT_DURABLE: False,
        semconv.ARTIFACT_SOURCE: "audit_hook",
        semconv.CWD: "/srv/app",
    }
    return tool, attrs, artifact


class AgentLoad:
    """Emits tool-call spans (each with an artifact child) through a tracer, sessions of ~50 calls."""

    def __init__(self, tracer, seed: int, agent: str = "devops-agent", calls_per_session: int = 50) -> None:
        self.tracer = tracer
        self.rng = random.Random(seed)
        self.agent = agent
        self.calls_per_session = calls_per_session
        self.calls = 0
        self.session = ""

    def one_call(self, extra: dict[str, Any] | None = None) -> int:
        """One tool call and its artifact span; returns the spans made (2)."""
        if self.calls % self.calls_per_session == 0:
            self.session = f"sess-{self.rng.getrandbits(64):016x}"
        tool, attrs, artifact = tool_call_attributes(self.rng, self.session, self.agent, self.calls)
        if extra:
            attrs |= extra
        with self.tracer.start_as_current_span(semconv.tool_span_name(tool), attributes=attrs):
            with self.tracer.start_as_current_span(f"{semconv.ARTIFACT_SPAN_PREFIX}file", attributes=artifact):
                pass
        self.calls += 1
        return 2


# The realistic mix: an agent's trace is mostly model calls carrying the conversation, with tool calls between.
# Names from the GenAI semantic conventions, as a third-party GenAI instrumentation sends them.
MODELS = ("claude-sonnet-4-5", "gpt-5", "gemini-2.5-pro")
_TEXT = (
    "the function returns a list of users filtered by role and the test asserts the count matches "
    "we need to update the handler so that it validates the request body before writing to the database "
    "running pytest shows two failures in test_api where the fixture expects a different schema version "
    "import os import sys def main(argv): parser = argparse.ArgumentParser() return 0 if ok else 1"
)
_WORDS = tuple(_TEXT.split())


def _prose(rng: random.Random, size: int) -> str:
    """~``size`` bytes of agent-conversation text, with the per-send nonce so no two messages are equal."""
    words, length = [], 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    words.insert(rng.randrange(len(words)), CONTENT_NONCE)
    return " ".join(words)


def llm_span_attributes(rng: random.Random, session: str, agent: str) -> tuple[str, dict[str, Any]]:
    """(span name, attributes) of one chat call with 2-8 KB of input/output messages (OTel GenAI JSON)."""
    model = rng.choice(MODELS)
    budget = rng.randint(2048, 8192)
    system = {"role": "system", "parts": [{"type": "text", "content": _prose(rng, 300)}]}
    user = {"role": "user", "parts": [{"type": "text", "content": _prose(rng, budget * 6 // 10)}]}
    if rng.random() < 0.05:  # now and then a credential pasted into the conversation: redaction has work to do
        user["parts"][0]["content"] += " export GITHUB_TOKEN=ghp_" + f"{rng.getrandbits(180):045x}"[:36]
    reply = {
        "role": "assistant",
        "parts": [{"type": "text", "content": _prose(rng, budget * 3 // 10)}],
        "finish_reason": "stop",
    }
    attrs = {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        "gen_ai.provider.name": "anthropic" if model.startswith("claude") else "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": budget // 4,
        "gen_ai.usage.output_tokens": budget // 12,
        semconv.GEN_AI_CONVERSATION_ID: session,
        semconv.GEN_AI_AGENT_NAME: agent,
        "gen_ai.input.messages": orjson.dumps([system, user]).decode(),
        "gen_ai.output.messages": orjson.dumps([reply]).decode(),
    }
    return f"chat {model}", attrs


class MixLoad(AgentLoad):
    """The realistic mix: per tool call (with its artifact span), four chat spans: 2 of every 10 spans are
    tool calls with artifacts, 8 are model calls with 2-8 KB of messages."""

    def one_call(self, extra: dict[str, Any] | None = None) -> int:
        if self.calls % self.calls_per_session == 0:
            self.session = f"sess-{self.rng.getrandbits(64):016x}"
        for _ in range(4):
            name, attrs = llm_span_attributes(self.rng, self.session, self.agent)
            with self.tracer.start_as_current_span(name, attributes=attrs):
                pass
        return 4 + super().one_call(extra)


def resource_attributes(service: str = SERVICE) -> dict[str, Any]:
    return {
        "service.name": service,
        "service.version": "1.4.2",
        "host.name": "agent-host-01",
        "deployment.environment": "bench",
        "process.pid": os.getpid(),
    }


def encoded_requests(
    count: int,
    spans_per_request: int,
    seed: int = 1,
    service: str = SERVICE,
    probe: bool = False,
    mix: bool = False,
) -> list[bytes]:
    """``count`` distinct ExportTraceServiceRequest bodies, made by the SDK and its own OTLP encoder.

    With ``probe``, each request also carries one probe tool call (session ``PROBE_SESSION``) whose
    ``gen_ai.tool.call.id`` is the placeholder ``PROBE_PLACEHOLDER``, patched per send by the latency
    benchmark with a zero-padded sequence number. With ``mix``, the spans are the realistic mix (:class:`MixLoad`).
    """
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource_attributes(service)))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("foothold.instrumentation", "0.1.0")
    load = (MixLoad if mix else AgentLoad)(tracer, seed)
    bodies = []
    for _ in range(count):
        memory.clear()
        made = 0
        if probe:
            probe_attrs = {
                semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
                semconv.GEN_AI_TOOL_NAME: "bench_probe",
                semconv.GEN_AI_TOOL_CALL_ID: PROBE_PLACEHOLDER,
                semconv.GEN_AI_CONVERSATION_ID: PROBE_SESSION,
            }
            with tracer.start_as_current_span("execute_tool bench_probe", attributes=probe_attrs):
                pass
            made += 1
        while made < spans_per_request:
            made += load.one_call()
        bodies.append(encode_spans(memory.get_finished_spans()).SerializeToString())
    provider.shutdown()
    return bodies


PROBE_PLACEHOLDER = "PROBE-SEQ-000000000000"  # 22 characters, patched in place
# In every call's arguments and result: rewritten per send in replay-fresh, so no two calls' content is equal
# and the collector's processor caches never hit (the worst case for them; real traffic lies in between).
CONTENT_NONCE = "~00000000"
# In every tool call id: rewritten on every send in every replay mode. A replayed call id is the same call to
# the collector (processors/native.py CallOfRecord keeps one record per (session, call id)), so without it every
# send after the first was stored as a duplicate record and left out of tool_calls: a lighter load than real
# agents make, whose call ids are unique.
CALL_NONCE = "~c0000000"
PROBE_SESSION = "bench-latency-probe"


@dataclass
class Template:
    """A request body plus where its ids sit, so each send can get fresh ids by patching 4 bytes each."""

    body: bytes
    spans: int
    id_offsets: list[int]  # first byte of every trace/span/parent id occurrence
    probe_offset: int = -1
    nonce_offsets: tuple[int, ...] = ()  # every CONTENT_NONCE in the body
    call_offsets: tuple[int, ...] = ()  # every CALL_NONCE in the body

    @classmethod
    def of(cls, body: bytes) -> Template:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest.FromString(body)
        ids: set[bytes] = set()
        spans = 0
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    spans += 1
                    ids.update(x for x in (span.trace_id, span.span_id, span.parent_span_id) if x)
        offsets = []
        for value in ids:
            tagged = bytes([len(value)]) + value  # length prefix: the field's value, not a coincidence
            start = body.find(tagged)
            while start >= 0:
                offsets.append(start + 1)
                start = body.find(tagged, start + 1)
        nonce = CONTENT_NONCE.encode()
        found = []
        at = body.find(nonce)
        while at >= 0:
            found.append(at)
            at = body.find(nonce, at + len(nonce))
        nonces = tuple(found)
        return cls(
            body, spans, sorted(offsets), body.find(PROBE_PLACEHOLDER.encode()), nonces, _offsets(body, CALL_NONCE)
        )

    def render(self, unique: int, probe_seq: str | None = None, fresh_content: bool = False) -> bytes:
        """The body with the first 4 bytes of every id replaced by ``unique`` (must be non-zero).

        With ``fresh_content`` every call's arguments and result get a value of their own as well.
        """
        out = bytearray(self.body)
        prefix = unique.to_bytes(4, "big")
        for offset in self.id_offsets:
            out[offset : offset + 4] = prefix
        if probe_seq is not None and self.probe_offset >= 0:
            out[self.probe_offset : self.probe_offset + len(PROBE_PLACEHOLDER)] = probe_seq.encode()
        for i, offset in enumerate(self.call_offsets):
            out[offset : offset + len(CALL_NONCE)] = b"~c%07x" % ((unique * 4099 + i) & 0xFFFFFFF)
        if fresh_content:
            for i, offset in enumerate(self.nonce_offsets):
                out[offset : offset + len(CONTENT_NONCE)] = b"~%08x" % ((unique * 4099 + i) & 0xFFFFFFFF)
        return bytes(out)


def _offsets(body: bytes, placeholder: str) -> tuple[int, ...]:
    needle, found = placeholder.encode(), []
    at = body.find(needle)
    while at >= 0:
        found.append(at)
        at = body.find(needle, at + len(needle))
    return tuple(found)


def open_temp_store(prefix: str = "foothold-bench-store-") -> tuple[Any, Path]:
    """A fresh in-process chDB store (migrated), and its temp dir."""
    from foothold.collector.store import open_store

    base = Path(tempfile.mkdtemp(prefix=prefix))
    return open_store(f"chdb://{base / 'store'}"), base
