"""CPU time per span of each collector stage, on fresh content (no cache ever hits), one thread, no I/O.

    python -m benchmarks.bench_stages [--spans 16384] [--modes replay-fresh,mix] [--profile FILE]

Every request is rendered with fresh content (the benchmark's ``CONTENT_NONCE`` rewritten per request), so
the redaction and classification caches never hit: the worst case, and the case issue 18 measures. Each
stage runs alone over the same requests in the order the collector runs them (decode, validate, redact at
the door, re-encode what changed, decode again in the worker, flatten, each processor, encode the insert),
and its CPU time (``time.process_time``: this process only, so a busy machine inflates it far less than
wall time) is divided by the spans. ``--profile FILE`` also writes a cProfile of the whole chain
(``python -m pstats FILE``) and prints its top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import io
import os
import pstats
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Template, encoded_requests, print_machine, progress, table

FINGERPRINT_KEY = "benchmark-fingerprint-key-0123456789"


def _timed(costs: dict[str, float], name: str, action: Callable[[], Any]) -> Any:
    started = time.process_time()
    result = action()
    costs[name] = costs.get(name, 0.0) + time.process_time() - started
    return result


def stage_costs(bodies: list[bytes], spans: int, first: int = 1) -> tuple[dict[str, float], int]:
    """CPU seconds per stage over ``spans`` fresh spans (rounded to whole requests), and the spans run."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from foothold.collector.config import BatchConfig, load_settings
    from foothold.collector.exporter import json_columns
    from foothold.collector.otlp import validate
    from foothold.collector.rows import to_batch
    from foothold.collector.service import default_processors, request_redactor

    templates = [Template.of(b) for b in bodies]
    per_request = templates[0].spans
    n_requests = max(1, spans // per_request)
    wire = [
        templates[i % len(templates)].render((first + i) << 8 | 1, fresh_content=True) for i in range(n_requests)
    ]  # every request's content differs from every other's, and from the warm-up's (another ``first``)
    settings = load_settings(fingerprint_key=FINGERPRINT_KEY)
    processors = default_processors(settings)
    redactor = request_redactor(settings)
    costs: dict[str, float] = {}
    queued: list[bytes] = []
    for body in wire:  # the receiver's side, request by request as it arrives
        request = _timed(costs, "decode (receiver)", lambda b=body: ExportTraceServiceRequest.FromString(b))
        accepted = _timed(costs, "validate (receiver)", lambda r=request: validate(r))
        changed = _timed(costs, "redact at the door", lambda r=request: redactor(r))
        payload = body if not (changed or accepted.changed) else None
        queued.append(
            _timed(costs, "re-encode changed requests", lambda r=request, p=payload: p or r.SerializeToString())
        )
    per_batch = max(1, BatchConfig().max_spans // per_request)
    for start in range(0, len(queued), per_batch):  # the worker's side, batch by batch
        part = queued[start : start + per_batch]
        requests = _timed(costs, "decode (worker)", lambda p=part: [ExportTraceServiceRequest.FromString(b) for b in p])
        batch = _timed(costs, "flatten (rows.to_batch)", lambda r=requests: to_batch(r))
        for processor in processors:
            _timed(costs, f"processor {type(processor).__name__}", lambda p=processor, b=batch: p.process(b))
        _timed(costs, "encode the insert (JSONColumns)", lambda b=batch: json_columns(b))
    return costs, n_requests * per_request


def _memory_mib() -> dict[str, float]:
    from benchmarks.common import memory_kib

    kib = memory_kib(os.getpid())
    return {name: kib.get(name, 0) / 1024 for name in ("VmRSS", "RssAnon", "RssFile")}


def _reset_peak() -> None:
    """Start VmHWM afresh at the current RSS (``clear_refs`` 5), so the next reading is one phase's peak."""
    Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")


def _peak_row(label: str) -> list[Any]:
    """VmHWM since :func:`_reset_peak`; its anonymous part is VmHWM less the file-backed pages mapped now
    (the library code does not change size within a phase)."""
    from benchmarks.common import memory_kib

    kib = memory_kib(os.getpid())
    return [label, kib["VmHWM"] / 1024, (kib["VmHWM"] - kib["RssFile"]) / 1024, kib["RssFile"] / 1024]


def _give_back_heap() -> None:
    """Return the C heap's free pages to the system (glibc ``malloc_trim``), so the next phase starts from what
    is live rather than from what the previous phase freed but the allocator kept."""
    ctypes.CDLL(None).malloc_trim(0)


def _batch_requests(templates: list[Template], spans: int, first: int) -> list[Any]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    count = max(1, spans // templates[0].spans)
    return [
        ExportTraceServiceRequest.FromString(templates[i % len(templates)].render(first + i, fresh_content=True))
        for i in range(count)
    ]


def memory_split(bodies: list[bytes]) -> list[list[Any]]:
    """RSS of this process with the collector imported, then one pipeline batch through the stages without an
    engine (what the collector holds with a ClickHouse server), then with chDB opened, one batch flattened and
    inserted through the exporter (with the insert's own peak): which part of the memory is chDB's, which ours."""
    import foothold.collector.service  # noqa: F401  (everything the collector imports, without a store)
    from benchmarks.common import open_temp_store
    from foothold.collector.config import BatchConfig, load_settings
    from foothold.collector.exporter import ClickHouseExporter, json_columns
    from foothold.collector.rows import to_batch
    from foothold.collector.service import default_processors

    templates = [Template.of(b) for b in bodies]
    spans = BatchConfig().max_spans
    rows = [["collector imported, no store", *_memory_mib().values()]]
    processors = default_processors(load_settings(fingerprint_key=FINGERPRINT_KEY))
    _reset_peak()
    batch = to_batch(_batch_requests(templates, spans, 1 << 24))
    for processor in processors:
        processor.process(batch)
    document = json_columns(batch)
    rows.append(_peak_row(f"peak: one batch flattened, processed, encoded, no engine ({len(batch):,} spans)"))
    del batch, document
    _give_back_heap()
    store, base = open_temp_store()
    try:
        client = store.client()
        rows.append(["+ chDB opened (schema migrated)", *_memory_mib().values()])
        batch = to_batch(_batch_requests(templates, spans, 1))
        rows.append([f"+ one batch flattened ({len(batch):,} spans)", *_memory_mib().values()])
        _reset_peak()
        ClickHouseExporter(store).export(batch)
        rows.append(_peak_row("peak during its insert (JSONColumns encode + chDB)"))
        del batch
        rows.append(["+ inserted, batch freed", *_memory_mib().values()])
        # What chDB's jemalloc does on its own within seconds (dirty_decay_ms 5000, background threads; ~3 s here): the
        # freed insert memory goes back to the system; what stays is the engine's live allocations.
        client.command("SYSTEM JEMALLOC PURGE")
        rows.append(["+ chDB's allocator returned freed pages", *_memory_mib().values()])
    finally:
        store.close()
        shutil.rmtree(base, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_stages", description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=16384)
    parser.add_argument("--modes", default="replay-fresh,mix")
    parser.add_argument("--profile", default=None, help="write a cProfile of the chain here and print its top")
    args = parser.parse_args(argv)
    print_machine("collector stage costs on fresh content")
    for mode in filter(None, args.modes.split(",")):
        bodies = encoded_requests(8 if mode == "mix" else 16, 512, mix=mode == "mix")
        progress(f"{mode}: {args.spans:,} spans, every request's content fresh")
        stage_costs(bodies, 1024, first=1 << 20)  # warm-up: imports, rule compilation (other content)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        costs, spans = stage_costs(bodies, args.spans)
        if profiler:
            profiler.disable()
        total = sum(costs.values())
        rows = [
            [name, 1e6 * cpu / spans, f"{cpu / total:.0%}", spans / cpu if cpu else 0] for name, cpu in costs.items()
        ]
        rows.append(["all stages, one core", 1e6 * total / spans, "100%", spans / total])
        print(f"\n-- {mode}: CPU per span by stage, {spans:,} fresh spans, one thread (process_time)")
        print(table(["stage", "CPU µs/span", "share", "spans per CPU-s"], rows))
        if profiler:
            path = f"{args.profile}.{mode}"
            profiler.dump_stats(path)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(f"\n-- cProfile of the chain ({path}), top 25 by own time (cProfile inflates call-heavy code)")
            print("\n".join(out.getvalue().splitlines()[4:40]))
    progress("memory: the collector's own vs chDB's")
    rows = memory_split(encoded_requests(16, 512))
    print(
        "\n-- memory of one process: what chDB adds to the collector (MiB; RssFile = mapped library code; "
        "'peak' rows: VmHWM over that phase alone, RssAnon = VmHWM - RssFile)"
    )
    print(table(["state", "VmRSS", "RssAnon", "RssFile"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
