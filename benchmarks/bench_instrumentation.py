"""Added cost of a Foothold tool call over a bare OpenTelemetry span.

    python -m benchmarks.bench_instrumentation [--iterations N] [--runs R]

Both sides export through a BatchSpanProcessor into a no-op exporter, so only in-process cost is
measured. Figures are medians over runs of each run's p50/p99. The watch-list case uses the default
list with ``~`` at a temp dir holding typical dotfiles; system paths are the real ones (only stat-ed).
The content case adds captured arguments and a result (~1 KiB) with one token to redact.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import foothold.instrumentation as fh
from foothold.instrumentation import audit, runtime


class _NullExporter(SpanExporter):
    def export(self, spans) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass(frozen=True)
class Figures:
    p50_us: float
    p99_us: float


def _percentiles(samples_ns: list[int]) -> Figures:
    ordered = sorted(samples_ns)
    return Figures(ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000)


def _measure(body: Callable[[], None], iterations: int, runs: int) -> Figures:
    for _ in range(min(iterations, 500)):  # warm-up: first-sight hashing, caches, code paths
        body()
    per_run = []
    for _ in range(runs):
        samples = []
        for _ in range(iterations):
            started = time.perf_counter_ns()
            body()
            samples.append(time.perf_counter_ns() - started)
        per_run.append(_percentiles(samples))
    return Figures(statistics.median(f.p50_us for f in per_run), statistics.median(f.p99_us for f in per_run))


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_NullExporter(), max_queue_size=1 << 16))
    return provider


def _fake_home(root: Path) -> Path:
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    for name in (".ssh/authorized_keys", ".ssh/known_hosts", ".ssh/config", ".bashrc", ".profile", ".gitconfig"):
        (home / name).write_text("# benchmark fixture\n" * 20)
    return home


# A typical shell call's content, with one secret to redact: what capture_content=True pays for.
ARGUMENTS = {
    "command": "curl -s -H 'Authorization: Bearer ghp_0123456789abcdefghijklmnopqrstuvwxyzAB' https://api.github.com/user"
}
RESULT = '{"login": "octocat", "id": 1, "type": "User"}\n' * 20


def _tool_call_case(provider: TracerProvider, home: Path, watch: bool, content: bool = False) -> Callable[[], None]:
    fh.setup(tracer_provider=provider, watch=watch, home=str(home), fingerprint_key="bench", capture_content=content)
    arguments = ARGUMENTS if content else None

    def body() -> None:
        with fh.tool_call("noop", call_id="call_1", arguments=arguments) as call:
            if content:
                call.set_result(RESULT)

    return body


def _print_machine() -> None:
    print(f"platform: {platform.platform()}")
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs")
    print(f"python: {sys.version.split()[0]} ({platform.python_implementation()})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    _print_machine()
    with tempfile.TemporaryDirectory() as scratch:
        home = _fake_home(Path(scratch))
        previous_cwd = os.getcwd()
        os.chdir(home)
        try:
            provider = _provider()
            tracer = provider.get_tracer("bench")

            def bare() -> None:
                with tracer.start_as_current_span("execute_tool noop"):
                    pass

            baseline = _measure(bare, args.iterations, args.runs)
            plain = _measure(_tool_call_case(provider, home, watch=False), args.iterations, args.runs)
            watched = _measure(_tool_call_case(provider, home, watch=True), args.iterations, args.runs)
            roots = len(runtime.current.watcher._resolve(str(home))) if runtime.current.watcher else 0
            captured = _measure(_tool_call_case(provider, home, watch=True, content=True), args.iterations, args.runs)
            provider.shutdown()
        finally:
            os.chdir(previous_cwd)
            audit.enable(False)
    print(f"iterations: {args.iterations} x {args.runs} runs (medians of per-run percentiles)")
    print(f"bare OpenTelemetry span          p50 {baseline.p50_us:7.1f} µs   p99 {baseline.p99_us:7.1f} µs")
    cases = (
        ("tool_call, no watch list", plain, 50),
        (f"tool_call, watch list ({roots} roots)", watched, 200),
        ("  + content capture, redaction", captured, None),
    )
    for label, figures, target in cases:
        added50, added99 = figures.p50_us - baseline.p50_us, figures.p99_us - baseline.p99_us
        verdict = (
            "no target"
            if target is None
            else f"target p50 < {target} µs: {'ok' if added50 < target else 'OVER TARGET'}"
        )
        print(
            f"{label:<32} p50 {figures.p50_us:7.1f} µs   p99 {figures.p99_us:7.1f} µs   "
            f"added p50 {added50:6.1f} µs / p99 {added99:6.1f} µs ({verdict})"
        )


if __name__ == "__main__":
    main()
