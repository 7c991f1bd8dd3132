"""Read side at scale: a session timeline and every alert rule over 1M and 10M stored spans.

    python -m benchmarks.bench_queries [--quick] [--sizes 1000000,10000000] [--runs 5]

Seeding. Rows are generated server-side with ``INSERT INTO otel_traces SELECT ... FROM numbers(...)``
into an in-process chDB store opened with ``open_store`` (same schema and migrations as the collector),
so the materialized views fill ``tool_calls``, ``artifacts`` and the trace-id table exactly as they do
for collector inserts. The mix, per 500 spans (one session, spread over the last 7 days): 50 tool calls
(10%, 15-17 attributes, tool mix bash/read/write/edit/web_fetch/http_post/read_secret/grep with their
flow categories, ~10% human checkpoints, ~5% with a credential fingerprint from a pool of 2,000,
0.1% durable writes), 10 artifact child spans (2%), 440 other spans (LLM chat and HTTP client spans).
Sizes are reached incrementally (1M, then 9M more for 10M).

Timings are medians of ``--runs`` runs after one cold run (reported separately), on unmerged data as
inserted (background merges run as they would in the collector). Timeline: ``session_timeline`` with a
direct in-process reader (its three queries with ``FINAL``), for a session of 50 calls. Rules: every
rule from ``load_alert_rules()``, ``expand(rule.sql, TimeRange.last(7 days))``, run to completion.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import timedelta
from typing import Any

from benchmarks.common import median, open_temp_store, print_machine, progress, table

CHUNK = 1_000_000
SPANS_PER_SESSION = 500

TOOLS = (
    ["bash"] * 35
    + ["read_file"] * 25
    + ["write_file"] * 12
    + ["edit_file"] * 10
    + ["web_fetch"] * 8
    + ["http_post"] * 5
    + ["read_secret"] * 3
    + ["grep"] * 2
)
COMMANDS = [
    "git status --short",
    "pytest -q tests/",
    "ls -la src/",
    "cat README.md",
    "make lint",
    "curl -s https://api.example.com/health",
    "npm test",
    "python -m build",
]
PATHS = [
    "/srv/app/src/main.py",
    "/srv/app/tests/test_api.py",
    "/srv/app/README.md",
    "/srv/app/pyproject.toml",
    "/srv/app/config/settings.yaml",
    "/srv/app/.github/workflows/ci.yml",
]


def _array(items: list[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "\\'") + "'" for i in items) + "]"


def seed_sql(database: str, start: int, count: int, horizon_seconds: int) -> str:
    """One INSERT ... SELECT FROM numbers(start, count): span n of session intDiv(n, 500)."""
    tools, commands, paths = _array(TOOLS), _array(COMMANDS), _array(PATHS)
    return f"""
INSERT INTO {database}.otel_traces
    (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes,
     ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
     `Events.Timestamp`, `Events.Name`, `Events.Attributes`,
     `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`)
SELECT
    ts AS Timestamp,
    concat(leftPad(lower(hex(cityHash64(call, 1))), 16, '0'),
           leftPad(lower(hex(cityHash64(call, 2))), 16, '0')) AS TraceId,
    leftPad(lower(hex(cityHash64(number, 11))), 16, '0') AS SpanId,
    if(is_artifact, leftPad(lower(hex(cityHash64(number - 1, 11))), 16, '0'), '') AS ParentSpanId,
    '' AS TraceState,
    multiIf(is_tool, concat('execute_tool ', tool), is_artifact, 'artifact file',
            number % 3 = 0, 'POST', 'chat gpt-5') AS SpanName,
    multiIf(is_tool OR is_artifact, 'Internal', 'Client') AS SpanKind,
    concat('agent-service-', toString(session % 20)) AS ServiceName,
    map('service.name', concat('agent-service-', toString(session % 20)), 'service.version', '1.4.2',
        'telemetry.sdk.language', 'python', 'telemetry.sdk.name', 'opentelemetry',
        'telemetry.sdk.version', '1.45.2', 'host.name', concat('host-', toString(session % 64))) AS ResourceAttributes,
    'foothold.instrumentation' AS ScopeName,
    '0.1.0' AS ScopeVersion,
    multiIf(
        is_tool, mapFilter((k, v) -> v != '', map(
            'gen_ai.operation.name', 'execute_tool',
            'gen_ai.tool.name', tool,
            'gen_ai.tool.call.id', concat('call_', lower(hex(cityHash64(call, 3)))),
            'gen_ai.tool.type', 'function',
            'gen_ai.tool.description', concat('The ', tool, ' tool'),
            'gen_ai.tool.call.arguments', multiIf(
                tool = 'bash', concat('{{"command": "', {commands}[1 + cityHash64(call, 4) % {len(COMMANDS)}], '"}}'),
                tool IN ('web_fetch', 'http_post'),
                concat('{{"url": "https://docs.example.com/p/', toString(call % 997), '"}}'),
                concat('{{"path": "', {paths}[1 + cityHash64(call, 5) % {len(PATHS)}], '"}}')),
            'gen_ai.tool.call.result', 'ok: 42 passed in 3.21s',
            'gen_ai.conversation.id', session_id,
            'gen_ai.agent.id', concat('agent-', toString(session % 40)),
            'gen_ai.agent.name', concat('agent-', toString(session % 40)),
            'foothold.task.id', concat('task-', toString(session)),
            'foothold.cwd', '/srv/app',
            'foothold.home', '/home/dev',
            'mcp.method.name', 'tools/call',
            'jsonrpc.request.id', toString(call % 50),
            'foothold.tool.categories', multiIf(tool = 'bash', 'exec', tool = 'web_fetch', 'untrusted_input',
                                                tool = 'http_post', 'egress',
                                                tool = 'read_secret', 'credential_read', ''),
            'foothold.credential.fingerprint', if(has_cred, concat('fp-', toString(cityHash64(call, 6) % 2000)), ''),
            'foothold.credential.kind', if(has_cred, 'github_token', ''),
            'foothold.credential.task.id',
                if(has_cred, if(cityHash64(call, 7) % 10 = 0, 'task-other', concat('task-', toString(session))), ''),
            'foothold.credential.issued_to',
                if(has_cred, if(cityHash64(call, 8) % 50 = 0, 'agent-x', concat('agent-', toString(session % 40))), ''),
            'foothold.credential.expires_at', if(has_cred AND cityHash64(call, 9) % 30 = 0, '2020-01-01T00:00:00Z', ''),
            'foothold.persistence.kind', if(durable, 'shell_rc', ''),
            'foothold.persistence.technique', if(durable, 'T1546.004', ''),
            'foothold.persistence.target', if(durable, '/home/dev/.bashrc', ''),
            'foothold.persistence.evidence', if(durable, 'append to ~/.bashrc', ''))),
        is_artifact, mapFilter((k, v) -> v != '', map(
            'gen_ai.conversation.id', session_id,
            'gen_ai.agent.name', concat('agent-', toString(session % 40)),
            'foothold.artifact.kind', 'file',
            'foothold.artifact.action', 'modify',
            'foothold.artifact.path', {paths}[1 + cityHash64(call, 5) % {len(PATHS)}],
            'foothold.artifact.sha256', lower(hex(SHA256(toString(number)))),
            'foothold.artifact.size', toString(cityHash64(number) % 40000),
            'foothold.artifact.durable', 'false',
            'foothold.artifact.source', 'audit_hook',
            'foothold.persistence.kind', if(cityHash64(call, 10) % 500 = 0, 'cron', ''),
            'foothold.persistence.technique', if(cityHash64(call, 10) % 500 = 0, 'T1053.003', ''))),
        number % 3 = 0, map('http.request.method', 'POST', 'url.full', 'https://api.example.com/v1/chat/completions',
                            'http.response.status_code', '200', 'gen_ai.conversation.id', session_id),
        map('gen_ai.operation.name', 'chat', 'gen_ai.conversation.id', session_id, 'gen_ai.request.model', 'gpt-5',
            'gen_ai.usage.input_tokens', toString(cityHash64(number) % 8000),
            'gen_ai.usage.output_tokens', toString(cityHash64(number, 1) % 2000))
    ) AS SpanAttributes,
    1000000 + cityHash64(number, 12) % 2000000000 AS Duration,
    if(cityHash64(number, 13) % 50 = 0, 'Error', 'Ok') AS StatusCode,
    '' AS StatusMessage,
    if(checkpoint, [ts], []) AS `Events.Timestamp`,
    if(checkpoint, ['foothold.human_checkpoint'], []) AS `Events.Name`,
    if(checkpoint,
       [map('foothold.checkpoint.approver', 'oncall@example.com', 'foothold.checkpoint.decision', 'approved')],
       CAST([], 'Array(Map(String, String))')) AS `Events.Attributes`,
    [] AS `Links.TraceId`, [] AS `Links.SpanId`, [] AS `Links.TraceState`,
    CAST([], 'Array(Map(String, String))') AS `Links.Attributes`
FROM (
    SELECT
        number,
        intDiv(number, {SPANS_PER_SESSION}) AS session,
        concat('sess-', leftPad(toString(session), 8, '0')) AS session_id,
        intDiv(number, 10) AS call,
        number % 10 = 0 AS is_tool,
        number % 50 = 1 AS is_artifact,
        {tools}[1 + cityHash64(call, 0) % {len(TOOLS)}] AS tool,
        is_tool AND cityHash64(call, 20) % 20 = 0 AS has_cred,
        is_tool AND cityHash64(call, 21) % 1000 = 0 AS durable,
        is_tool AND cityHash64(call, 22) % 10 = 0 AS checkpoint,
        toDateTime64(now() - {horizon_seconds}, 9)
            + toIntervalSecond(cityHash64(session, 30) % {horizon_seconds - 1800})
            + toIntervalMillisecond((number % {SPANS_PER_SESSION}) * 2000 + number % 997) AS ts
    FROM numbers({start}, {count})
)
"""


class _Reader:
    """A DirectReader over an already open store (read-only settings, as the CLI's)."""

    via = "in-process store"

    def __init__(self, client) -> None:
        self._client = client

    def query(self, sql: str, parameters: dict[str, Any] | None = None):
        from foothold.investigation.access import QueryResult

        result = self._client.query(sql, parameters=parameters, settings={"readonly": 1})
        return QueryResult(
            list(result.column_names), [t.name for t in result.column_types], [list(r) for r in result.result_rows]
        )

    def flush(self) -> None:
        pass


def _timed(fn, runs: int) -> tuple[float, float, Any]:
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return cold, median(times), out


def seed(client, database: str, start: int, end: int, horizon: int) -> float:
    t0 = time.perf_counter()
    done = start
    while done < end:
        count = min(CHUNK, end - done)
        client.command(seed_sql(database, done, count, horizon))
        done += count
        rate = (done - start) / (time.perf_counter() - t0)
        eta = (end - done) / rate if rate else 0
        progress(f"seeded {done:,}/{end:,} spans ({rate:,.0f} spans/s, ~{eta:.0f} s left)")
    return time.perf_counter() - t0


def measure(client, store, size: int, runs: int) -> tuple[list[list[Any]], list[list[Any]]]:
    from foothold.detections.macros import TimeRange, expand
    from foothold.detections.rules import load_alert_rules
    from foothold.investigation import timeline as tl

    db = store.database

    def q(sql):
        return client.query(sql).result_rows

    counts = {t: q(f"SELECT count() FROM {db}.{t}")[0][0] for t in ("otel_traces", "tool_calls", "artifacts")}
    parts = {
        t: q(f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = '{t}' AND active")[0][0]
        for t in ("otel_traces", "tool_calls")
    }
    progress(f"{size:,}: {counts}, active parts {parts}")
    session = q(
        f"SELECT SessionId FROM {db}.tool_calls GROUP BY SessionId HAVING count() = 50 "
        f"ORDER BY SessionId LIMIT 1 OFFSET {max(0, counts['tool_calls'] // 100 - 1)}"
    )[0][0]
    reader = _Reader(client)
    rows = []
    cold, warm, result = _timed(lambda: tl.session_timeline(reader, session), runs)
    rows.append(
        [
            f"{size:,}",
            "session_timeline (3 queries)",
            len(result.calls),
            cold * 1000,
            warm * 1000,
            "< 200 ms",
            "met" if warm < 0.2 else f"missed by {warm / 0.2:.1f}x",
        ]
    )
    for name, sql in (("  calls", tl._CALLS), ("  artifacts", tl._ARTIFACTS), ("  alerts", tl._ALERTS)):
        cold, warm, out = _timed(lambda sql=sql: reader.query(sql, {"session": session}), runs)
        rows.append([f"{size:,}", name, len(out.rows), cold * 1000, warm * 1000, "", ""])
    rule_rows = []
    time_range = TimeRange.last(timedelta(days=7).total_seconds())
    for rule in load_alert_rules():
        sql = expand(rule.sql, time_range)
        cold, warm, out = _timed(lambda sql=sql: client.query(sql).result_rows, max(1, runs // 2 + 1))
        rule_rows.append(
            [
                f"{size:,}",
                rule.id,
                len(out),
                cold * 1000,
                warm * 1000,
                "< 5,000 ms",
                "met" if warm < 5 else f"missed by {warm / 5:.1f}x",
            ]
        )
        progress(f"{size:,}: rule {rule.id}: {warm * 1000:,.0f} ms, {len(out)} finding(s)")
    return rows, rule_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_queries", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only 1M spans, 3 runs")
    parser.add_argument("--sizes", default=None, help="comma-separated span counts; default 1000000,10000000")
    parser.add_argument("--runs", type=int, default=None, help="timed runs after the cold one; default 5")
    parser.add_argument("--keep", action="store_true", help="keep the seeded store (its path is printed)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in (args.sizes or ("1000000" if args.quick else "1000000,10000000")).split(","))
    runs = args.runs or (3 if args.quick else 5)
    print_machine("query benchmark")
    print("   " + __doc__.split("Seeding. ", 1)[1].strip().replace("\n", "\n   ") + "\n")
    store, base = open_temp_store()
    client = store.client()
    horizon = int(timedelta(days=7).total_seconds()) - 3600
    timeline_rows, rule_rows, seed_rows = [], [], []
    try:
        done = 0
        for size in sizes:
            seconds = seed(client, store.database, done, size, horizon)
            seed_rows.append([f"{done:,} -> {size:,}", seconds, (size - done) / seconds])
            done = size
            t, r = measure(client, store, size, runs)
            timeline_rows += t
            rule_rows += r
        disk = client.query(
            f"SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts "
            f"WHERE database = '{store.database}' AND active"
        ).result_rows[0][0]
    finally:
        store.close()
        if args.keep:
            print(f"   store kept at {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print("-- seeding (server-side INSERT ... SELECT, materialized views included)")
    print(table(["spans", "seconds", "spans/s"], seed_rows))
    print(f"   store on disk after seeding: {disk}\n")
    print(f"-- session timeline (one session of 50 calls), cold run and median of {runs} warm runs")
    print(table(["stored spans", "query", "rows", "cold ms", "median ms", "target", "verdict"], timeline_rows))
    print(f"\n-- alert rules over the last 7 days, cold run and median of {max(1, runs // 2 + 1)} warm runs")
    print(table(["stored spans", "rule", "findings", "cold ms", "median ms", "target", "verdict"], rule_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
