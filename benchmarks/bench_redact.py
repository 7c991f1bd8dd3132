"""Secret redaction per value: hostile inputs that used to be quadratic, and the values agents really send.

    python -m benchmarks.bench_redact [--runs 5] [--baseline REV] [--baseline-cap 120]

Method. Each value goes through ``foothold.redact.redact_content`` (what the collector runs on an attribute
value, and the agent side on tool content) ``--runs`` times on one core after one warm-up call (which compiles the
rules the value needs); the figure is the median wall time of one call. Values are generated from a fixed seed:

- ``jwt_256k``: 256 KiB of ``eyJeyJeyJ…``: every ``eyJ`` starts a JWT match that runs to the end of the value
  and fails there, so a backtracking engine does quadratic work (the issue's 50 s).
- ``base64_256k``: ``eyJ`` and 256 KiB of random base64url (a large encoded blob in a tool result).
- ``adversarial_1m``: 1 MiB of fragments that start many rules (``aws_secret=``, ``eyJ…``, a PEM header
  without its dashes, ``password: x``), then one real token; every ``aws_secret=…`` is a secret-named value
  (16k hits), so this is also the many-hits case.
- ``tool_result_100k``: a 100,000-character tool result (build output) with two tokens in it.
- ``bash_command``: a 200-byte command line with a password flag; ``clean_1k``: 1 KiB of prose, nothing to find.
- ``genai_messages_4k``: a 4 KiB ``gen_ai.input.messages`` JSON array with a token in a tool call's arguments.

``--baseline REV`` also times ``foothold/redact.py`` as it was at git revision REV (e.g. 02ad1bb, Python
``re``), each value in a child process stopped after ``--baseline-cap`` seconds (shown as "> cap").
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from benchmarks.common import median, print_machine, progress, table

KEY = b"benchmark-fingerprint-key"
ROOT = Path(__file__).resolve().parent.parent
_URLSAFE = string.ascii_letters + string.digits + "_-"


def values() -> dict[str, str]:
    rng = random.Random(18)

    def rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    token = "ghp_" + rand(36)
    fragment = "aws_secret=eyJaaaaaaa.eyJ-----BEGIN RSA PRIVATE KEY password: x "
    adversarial = fragment * ((1 << 20) // len(fragment)) + token
    lines = [f"[{i:05d}] compiling module_{rand(8)}.c -O2 -Wall ... ok" for i in range(2000)]
    lines[700] += f" export GITHUB_TOKEN={token}"
    lines[1500] += f" curl -u deploy:{rand(12)} https://ci.internal"
    tool_result = "\n".join(lines)[:100_000]
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "You are a careful DevOps agent. " * 20}]},
        {"role": "user", "parts": [{"type": "text", "content": "Rotate the deploy key and restart. " * 40}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Running the rotation script now. " * 30},
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "bash",
                    "arguments": {"command": f"deploy --token {token}"},
                },
            ],
        },
    ]
    return {
        "jwt_256k": "eyJ" * (256 * 1024 // 3),
        "base64_256k": "eyJ" + rand(256 * 1024, _URLSAFE),
        "adversarial_1m": adversarial,
        "tool_result_100k": tool_result,
        "genai_messages_4k": orjson.dumps(messages).decode(),
        "bash_command": f"cd /srv/app && mysql -h db.internal -u app -p{rand(14)} app < migrate.sql && make restart",
        "clean_1k": ("The agent read the README, ran the test suite and opened a pull request. " * 15)[:1024],
    }


def _time(function: Callable[[str, bytes], object], value: str, runs: int) -> float:
    from foothold import redact

    samples = []
    for _ in range(runs):
        redact._clean_digests.clear()  # the scan is measured, not the clean-text memo (a repeat would hit it)
        started = time.perf_counter()
        function(value, KEY)
        samples.append(time.perf_counter() - started)
    return median(samples)


_CHILD = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("old_redact", sys.argv[1])
module = importlib.util.module_from_spec(spec); sys.modules["old_redact"] = module; spec.loader.exec_module(module)
value = open(sys.argv[2], encoding="utf-8").read()
started = time.perf_counter(); module.redact_text(value, b"k"); print(time.perf_counter() - started)
"""


def _baseline(revision: str, cases: dict[str, str], cap: float) -> dict[str, str]:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:foothold/redact.py"], capture_output=True, text=True, check=True
    ).stdout
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-redact-") as tmp:
        module = Path(tmp) / "old_redact.py"
        module.write_text(source)
        for name, value in cases.items():
            progress(f"baseline {revision}: {name}")
            path = Path(tmp) / f"{name}.txt"
            path.write_text(value)
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(module), str(path)], capture_output=True, text=True, timeout=cap
                )
                figures[name] = _ms(float(done.stdout.strip())) if done.returncode == 0 else "error"
            except subprocess.TimeoutExpired:
                figures[name] = f"> {cap * 1000:,.0f}"
    return figures


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run per value")
    parser.add_argument("--baseline", default="", help="also time foothold/redact.py at this git revision")
    parser.add_argument("--baseline-cap", type=float, default=120.0, help="seconds before a baseline value is cut")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    print_machine("redaction benchmark")
    if importlib.util.find_spec("re2") is None:
        print("google-re2 is not installed: pip install google-re2", file=sys.stderr)
        return 1
    from foothold import redact

    started = time.perf_counter()
    redact.rules()  # what the first scan in a process pays: parse secrets.toml, compile every rule and the Set
    compile_ms = (time.perf_counter() - started) * 1000
    cases = values()
    baseline = _baseline(args.baseline, cases, args.baseline_cap) if args.baseline else {}
    rows = []
    for name, value in cases.items():
        progress(f"{name}: {len(value):,} characters, {runs} run(s)")
        hits = len(redact.redact_text(value, KEY)[1])  # also the warm-up: the rules it needs are compiled now
        seconds = _time(redact.redact_content, value, runs)
        mib_s = len(value.encode()) / (1 << 20) / seconds if seconds else float("inf")
        row = [name, f"{len(value):,}", hits, _ms(seconds), f"{mib_s:,.1f}"]
        if args.baseline:
            row.append(baseline[name])
        rows.append(row)
    headers = ["value", "characters", "secrets", "ms per value", "MiB/s"]
    if args.baseline:
        headers.append(f"ms at {args.baseline} (Python re)")
    print()
    print(table(headers, rows))
    print(f"\n   rules: {len(redact.rules())} in secrets.toml, compiled on first use in {compile_ms:,.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
