"""What each materialized view adds to an ``otel_traces`` insert, split into its SELECT and its write.

    python -m benchmarks.bench_views [--spans 32768] [--runs 7] [--modes replay,mix] [--baseline VERSION]

The spans are the ingest benchmark's (``replay``: 16 templates, half of them tool calls, half artifacts, every
call's content fresh; ``mix``: the realistic mix), redacted, flattened and processed as the collector does,
in one pipeline-sized batch.

Two measurements, CPU per span (``time.process_time``: the whole process, chDB's threads included; a busy
machine inflates it far less than wall time), median of ``--runs`` rounds after a warm-up round:

- the exporter's insert (``JSONColumns``) into ``otel_traces`` without views and with the schema's three:
  the issue-18 ratio, in CPU;
- each view alone, isolated: the rows go from a Memory table into a ``Null`` copy of ``otel_traces`` that
  carries only that view, so nothing but the view's work differs from the no-view insert of the same rows.
  The view writing into a ``Null`` copy of its target is its SELECT alone; into a real copy, SELECT and write.
  "Added" is, per round, the variant's CPU less the same round's no-view insert (the load drifts between
  rounds), then the median. ``--baseline`` adds the views as an older schema version defined them (the
  frozen migrations), where they differ from ``ddl.py``: before and after in the same conditions.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.common import Template, encoded_requests, median, open_temp_store, print_machine, progress, table
from foothold.collector.schema.migrations import LATEST

FINGERPRINT_KEY = "benchmark-fingerprint-key-0123456789"
ON_TRACES = ("otel_traces_trace_id_ts_mv", "tool_calls_mv", "artifacts_mv")  # the views an otel_traces insert runs


@dataclass(frozen=True)
class Variant:
    name: str
    view: str | None  # one of ON_TRACES, or None: no view
    version: int | None = None  # its SELECT as of this schema version; None: ddl.py's
    null_target: bool = False  # the view writes into a Null table: its SELECT only


def variants(baseline: int | None) -> list[Variant]:
    out = [Variant("no view", None)]
    for name in ON_TRACES:
        out += [Variant(f"{name}: SELECT only", name, null_target=True), Variant(f"{name}: SELECT + write", name)]
        if baseline is not None and view_selects(baseline)[name] != view_selects(None)[name]:
            out += [
                Variant(f"{name} (v{baseline}): SELECT only", name, baseline, null_target=True),
                Variant(f"{name} (v{baseline}): SELECT + write", name, baseline),
            ]
    return out


def view_selects(version: int | None) -> dict[str, str]:
    """Each view's SELECT naming its source ``{source}``: ddl.py's (``None``), or as the migrations left it."""
    from foothold.collector.schema.ddl import SCHEMA, View
    from foothold.collector.schema.migrations import MIGRATIONS
    from foothold.collector.schema.migrations.steps import CreateView, ModifyQuery

    if version is None:
        return {v.name: v.select.format(source="{source}") for v in SCHEMA if isinstance(v, View)}
    selects: dict[str, str] = {}
    for step in (step for migration in MIGRATIONS[:version] for step in migration.steps):
        if isinstance(step, CreateView):
            selects[step.name] = step.select
        elif isinstance(step, ModifyQuery):
            selects[step.view] = step.select
    return selects


def batches_of(bodies: list[bytes], spans: int) -> list[Any]:
    """Pipeline-sized batches of redacted, flattened and processed spans, as the exporter receives them."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from foothold.collector.config import BatchConfig, load_settings
    from foothold.collector.rows import to_batch
    from foothold.collector.service import default_processors, request_redactor

    templates = [Template.of(b) for b in bodies]
    per_request = templates[0].spans
    n_requests = max(1, spans // per_request)
    wire = [templates[i % len(templates)].render((i + 1) << 8 | 1, fresh_content=True) for i in range(n_requests)]
    settings = load_settings(fingerprint_key=FINGERPRINT_KEY)
    redactor = request_redactor(settings)
    requests = [ExportTraceServiceRequest.FromString(b) for b in wire]
    for request in requests:
        redactor(request)
    per_batch = max(1, BatchConfig().max_spans // per_request)
    batches = [to_batch(requests[i : i + per_batch]) for i in range(0, len(requests), per_batch)]
    for processor in default_processors(settings):
        for batch in batches:
            processor.process(batch)
    return batches


def _rounds(runs: int, cases: list[str], run: Any) -> dict[str, list[float]]:
    """CPU seconds of ``run(case)``, round by round (the first round warms up and is not kept)."""
    cpu: dict[str, list[float]] = {case: [] for case in cases}
    for r in range(runs + 1):
        for case in cases:
            started = time.process_time()
            run(case)
            if r:
                cpu[case].append(time.process_time() - started)
        progress(f"round {r}/{runs}")
    return cpu


def _added(cpu: dict[str, list[float]], case: str, base: str, spans: int) -> float:
    return median([a - b for a, b in zip(cpu[case], cpu[base], strict=True)]) / spans * 1e6


def measure(bodies: list[bytes], spans: int, runs: int, baseline: int | None) -> tuple[list[list[Any]], list[Any]]:
    from foothold.collector.exporter import insert_settings, json_columns
    from foothold.collector.rows import COLUMNS
    from foothold.collector.schema.ddl import SCHEMA, View

    batches = batches_of(bodies, spans)
    total = sum(len(b.columns["SpanId"]) for b in batches)
    blocks = [json_columns(b) for b in batches]  # encoded once: the engine's side is measured
    targets = {v.name: v.target for v in SCHEMA if isinstance(v, View)}
    store, base = open_temp_store()
    try:
        client, db = store.client(), store.database
        settings = insert_settings(store.insert, "")
        bare = f"{db}.bench_traces_no_views"
        client.command(f"CREATE TABLE {bare} AS {db}.otel_traces")

        def export(table: str) -> None:
            for name in (table, f"{db}.otel_traces_trace_id_ts", f"{db}.tool_calls", f"{db}.artifacts"):
                client.command(f"TRUNCATE TABLE {name}")
            for block in blocks:
                client.raw_insert(table, column_names=COLUMNS, insert_block=block, fmt="JSONColumns", settings=settings)

        progress("the exporter's insert, without and with the views")
        exported = _rounds(runs, [bare, f"{db}.otel_traces"], export)
        no_views, views = (median(exported[t]) / total * 1e6 for t in (bare, f"{db}.otel_traces"))
        summary = [no_views, views, _added(exported, f"{db}.otel_traces", bare, total)]

        client.command(f"CREATE TABLE {db}.bench_rows AS {db}.otel_traces ENGINE = Memory")
        for block in blocks:
            client.raw_insert(f"{db}.bench_rows", column_names=COLUMNS, insert_block=block, fmt="JSONColumns")
        cases = variants(baseline)
        sources, written = [], {}
        for i, case in enumerate(cases):
            source = f"{db}.bench_src_{i}"
            client.command(f"CREATE TABLE {source} AS {db}.otel_traces ENGINE = Null")
            if case.view:
                target = f"{db}.bench_dst_{i}"
                null = " ENGINE = Null" if case.null_target else ""
                client.command(f"CREATE TABLE {target} AS {db}.{targets[case.view]}{null}")
                select = view_selects(case.version)[case.view].replace("{source}", source)
                client.command(f"CREATE MATERIALIZED VIEW {db}.bench_mv_{i} TO {target} AS {select}")
                if not case.null_target:
                    written[source] = target
            sources.append(source)

        def isolated(source: str) -> None:
            if source in written:
                client.command(f"TRUNCATE TABLE {written[source]}")
            client.command(f"INSERT INTO {source} SELECT * FROM {db}.bench_rows", settings=settings)

        progress("each view alone")
        cpu = _rounds(runs, sources, isolated)
        rows = [
            [case.name, _added(cpu, source, sources[0], total)] for case, source in zip(cases, sources, strict=True)
        ]
        return rows[1:], summary
    finally:
        store.close()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_views", description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=32768, help="spans per round (default 32768: one batch)")
    parser.add_argument("--runs", type=int, default=7, help="measured rounds, median reported (default 7)")
    parser.add_argument("--modes", default="replay,mix", help="replay (16 templates) and/or mix (realistic)")
    parser.add_argument(
        "--baseline", type=int, default=None, help=f"also the views of this schema version (1..{LATEST})"
    )
    args = parser.parse_args(argv)
    print_machine("materialized views at insert")
    for mode in filter(None, args.modes.split(",")):
        progress(f"{mode}: encoding and processing {args.spans} spans")
        bodies = encoded_requests(8 if mode == "mix" else 16, 512, mix=mode == "mix")
        rows, (no_views, views, added) = measure(bodies, args.spans, args.runs, args.baseline)
        print(
            f"\n-- {mode} spans: the exporter's insert (JSONColumns), CPU µs per span, median of {args.runs} round(s)"
        )
        print(
            table(
                ["insert", "CPU µs/span", "views' share of it"],
                [["without views", no_views, ""], ["with the 3 views", views, f"{added / views:.0%} (+{added:.2f})"]],
            )
        )
        print(f"   CPU share (no views / with views): {no_views / views:.0%}; target of issue 18: >= 80% (of rates)")
        print("\n-- each view alone (Memory -> Null copy of otel_traces carrying only it): CPU µs per span added")
        print(table(["view", "added µs/span"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
