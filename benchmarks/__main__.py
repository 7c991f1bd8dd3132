"""Run every benchmark in sequence: ``python -m benchmarks [--quick]`` (``make bench``).

Each benchmark runs in its own Python process: chDB allows one store path per process, and a fresh
process keeps one benchmark's memory and threads out of the next one's figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

BENCHMARKS = (
    "bench_ingest",
    "bench_stages",
    "bench_views",
    "bench_code_review",
    "bench_latency",
    "bench_queries",
    "bench_instrumentation",
    "bench_hook",
    "bench_redact",
)
QUICK_ARGS = {  # these have no --quick: smaller counts instead
    "bench_instrumentation": ["--iterations", "2000", "--runs", "3"],
    "bench_hook": ["--calls", "10"],
    "bench_stages": ["--spans", "4096"],
    "bench_views": ["--spans", "8192", "--runs", "2"],
    "bench_code_review": ["--runs", "1"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and single runs (a few minutes)")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. bench_ingest,bench_queries")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b in args.only.split(",")]
    failed = []
    for name in chosen:
        if importlib.util.find_spec(f"benchmarks.{name}") is None:
            print(f"== {name}: not present, skipped\n", flush=True)
            continue
        extra = QUICK_ARGS.get(name, ["--quick"]) if args.quick else []
        command = [sys.executable, "-m", f"benchmarks.{name}", *extra]
        print(f"\n######## {' '.join(command[1:])}\n", flush=True)
        started = time.monotonic()
        code = subprocess.call(command)
        print(f"\n######## {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
