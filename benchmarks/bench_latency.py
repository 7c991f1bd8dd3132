"""Export-to-queryable latency at a moderate, steady load (target: p99 < 2 s at 5,000 spans/s).

    python -m benchmarks.bench_latency [--quick] [--rates 5000] [--duration 30] [--runs 3]

Method. A fresh collector runs as a subprocess (default batch settings: export at ``batch.max_spans`` spans or every
1 s). An open-loop sender paces OTLP/gRPC requests (SDK-encoded, ~500 spans each, fresh ids per send)
at the target span rate from a few threads, so a slow answer never lowers the offered load. Every
request carries one probe tool call whose ``gen_ai.tool.call.id`` is its sequence number; the sender
notes the monotonic time just before the export call. A poller asks the collector's query API
(``POST /v1/query``, the door the CLI uses) every ``--poll`` seconds for probe calls in ``tool_calls``
(the audit table the timeline reads; its materialized view is filled in the same insert as
``otel_traces``) newer than the last one seen. A probe's latency is (start of the first poll that saw
it) - (its send time): an upper bound, at most one poll period above the true value (a snapshot at
the poll start contained it; the previous poll's did not). Both clocks are the same process's
monotonic clock. A server-side ``now64() - Timestamp`` would mix the span's start time (set at
encoding) into the figure, so it is not used.
"""

from __future__ import annotations

import argparse
import threading
import time

import grpc
import httpx

from benchmarks.bench_ingest import GRPC_METHOD
from benchmarks.common import (
    PROBE_SESSION,
    CollectorProcess,
    RssSampler,
    Template,
    cpu_seconds,
    encoded_requests,
    median,
    percentile,
    print_machine,
    progress,
    table,
    tree_memory_kib,
)

SEQ_WIDTH = 22  # the placeholder's width


def run_once(rate: float, args: argparse.Namespace, templates: list[Template]) -> dict:
    spans_per_request = templates[0].spans
    request_rate = rate / spans_per_request
    n_requests = int(args.duration * request_rate)
    sent_at: dict[int, float] = {}
    seen_at: dict[int, float] = {}
    errors: list[str] = []
    polls = [0]
    with CollectorProcess() as collector:
        channel = grpc.insecure_channel(collector.grpc_target, options=[("grpc.max_send_message_length", 64 << 20)])
        call = channel.unary_unary(GRPC_METHOD)
        bodies = [templates[i % len(templates)].render((1 << 24) | i, f"{i:0{SEQ_WIDTH}d}") for i in range(n_requests)]
        start = time.monotonic() + 0.5
        done = threading.Event()

        def sender(lane: int) -> None:
            for i in range(lane, n_requests, args.senders):
                due = start + i / request_rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent_at[i] = time.monotonic()
                try:
                    call(bodies[i], timeout=30)
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code()}: {exc.details()}")

        def poller() -> None:
            last = -1
            sql = (
                "SELECT ToolCallId FROM tool_calls WHERE SessionId = {session:String} "
                "AND ToolCallId > {last:String} ORDER BY ToolCallId"
            )
            with httpx.Client(base_url=collector.query_url, timeout=30) as http:
                while not done.is_set() or len(seen_at) < len(sent_at):
                    polled = time.monotonic()
                    polls[0] += 1
                    response = http.post(
                        "/v1/query",
                        json={"sql": sql, "parameters": {"session": PROBE_SESSION, "last": f"{last:0{SEQ_WIDTH}d}"}},
                    )
                    for (call_id,) in response.json()["rows"]:
                        seq = int(call_id)
                        seen_at.setdefault(seq, polled)
                        last = max(last, seq)
                    if done.is_set() and time.monotonic() > done_at + 30:
                        break  # whatever has not arrived 30 s after the last send is counted missing
                    time.sleep(max(0.0, args.poll - (time.monotonic() - polled)))

        done_at = float("inf")
        senders = [threading.Thread(target=sender, args=(lane,)) for lane in range(args.senders)]
        poll = threading.Thread(target=poller)
        cpu0 = cpu_seconds(collector.pid)
        with RssSampler(collector.pid) as rss:
            poll.start()
            for s in senders:
                s.start()
            for s in senders:
                s.join()
            elapsed = time.monotonic() - start
            done_at = time.monotonic()
            done.set()
            poll.join()
        cpu = cpu_seconds(collector.pid) - cpu0
        hwm = tree_memory_kib(collector.pid)["VmHWM"] / 1024  # worker processes included
        stored = int(collector.scalar("SELECT count() FROM otel_traces"))
        channel.close()
    latencies = [seen_at[i] - sent_at[i] for i in sent_at if i in seen_at]
    return {
        "offered": n_requests * spans_per_request / elapsed,
        "requests": n_requests,
        "arrived": len(latencies),
        "missing": n_requests - len(latencies),
        "errors": len(errors),
        "p50": percentile(latencies, 0.50),
        "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies, default=float("nan")),
        "cores": cpu / (time.monotonic() - start),
        "poll_ms": 1000 * (time.monotonic() - start) / max(polls[0], 1),
        "rss": rss.max_mib(),
        "hwm": hwm,
        "stored": stored,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run of 10 s")
    parser.add_argument("--rates", default="1000,5000", help="comma-separated offered loads, spans/s")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load per run; default 30")
    parser.add_argument("--runs", type=int, default=None, help="runs per rate (median reported); default 3")
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--senders", type=int, default=4, help="sender threads (open loop)")
    parser.add_argument("--poll", type=float, default=0.05, help="poll period of the query API, seconds")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (10.0 if args.quick else 30.0)
    print_machine("export-to-queryable latency")
    print("   " + __doc__.split("Method. ", 1)[1].strip().replace("\n", "\n   ") + "\n")
    templates = [
        Template.of(b) for b in encoded_requests(16, args.spans_per_request, service="bench-latency", probe=True)
    ]
    rows = []
    for rate in (float(r) for r in args.rates.split(",")):
        runs = []
        for n in range(args.runs):
            progress(f"{rate:,.0f} spans/s: run {n + 1}/{args.runs} ({args.duration:.0f} s)")
            result = run_once(rate, args, templates)
            progress(
                f"   p50 {result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, "
                f"{result['missing']} missing, {result['errors']} errors"
            )
            runs.append(result)
        rows.append(
            [
                f"{rate:,.0f}",
                median([r["offered"] for r in runs]),
                sum(r["requests"] for r in runs),
                sum(r["missing"] for r in runs),
                sum(r["errors"] for r in runs),
                *(median([r[k] * 1000 for r in runs]) for k in ("p50", "p90", "p99", "max")),
                median([r["poll_ms"] for r in runs]),
                median([r["cores"] for r in runs]),
                median([r["hwm"] for r in runs]),
            ]
        )
    print(
        f"\n-- export-to-queryable latency, OTLP/gRPC, {templates[0].spans} spans/request, poll every "
        f"{args.poll * 1000:.0f} ms; median over {args.runs} run(s) of each run's percentile"
    )
    print(
        table(
            [
                "target spans/s",
                "offered/s",
                "probes",
                "missing",
                "errors",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "poll period ms",
                "coll. cores",
                "peak RSS MiB",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
