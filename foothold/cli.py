"""The ``foothold-audit`` command.

Collector-side commands import the collector lazily: the agent-side install (``pip install foothold-audit``)
has no ClickHouse client, and its commands must still start; a command that needs an extra says which.
Expected failures (bad input, an unknown session, no store, a busy port) are one error line, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from rich.markup import escape

from foothold.render import console, emit, err, print_table

if TYPE_CHECKING:  # the collector extra: imported where a command needs it, so a missing extra is named
    from foothold.collector.config import Settings
    from foothold.investigation.access import ApiReader, DirectReader, QueryResult, Reader
    from foothold.investigation.inventory import Report

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tool-call observability and audit for AI agents.")


class SqlFormat(StrEnum):
    table = "table"
    json = "json"


class TimelineFormat(StrEnum):
    text = "text"
    json = "json"
    html = "html"


class ReportFormat(StrEnum):
    markdown = "markdown"
    json = "json"


class VerifyFormat(StrEnum):
    text = "text"
    json = "json"


ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file (FOOTHOLD_* env vars override it).")
]


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=1)


# The top-level module each optional extra brings, so a missing one names the extra to install.
_EXTRA_OF_MODULE = {
    **dict.fromkeys(
        (
            "clickhouse_connect",
            "chdb",
            "grpc",
            "starlette",
            "uvicorn",
            "pydantic",
            "pydantic_settings",
            "httpx",
            "jinja2",
        ),
        "collector",
    ),
    "grafana_client": "dashboards",
    "mcp": "mcp",
    "langchain_core": "langchain",
    "agents": "openai-agents",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The error line for a module an extra provides; None for anything else (a real bug keeps its traceback)."""
    module = (exc.name or "").partition(".")[0]
    extra = _EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    return f"{module} is not installed: this command needs the {extra} extra, pip install 'foothold-audit[{extra}]'"


def _require_collector() -> None:
    """The collector extra is installed, else an error naming it."""
    try:
        for module in ("foothold.collector.config", "foothold.collector.store"):
            importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise fail(missing_extra(exc) or str(exc)) from None


def load(config_path: Path | None) -> Settings:
    _require_collector()
    from foothold.collector.config import ConfigError, load_settings

    try:
        return load_settings(config_path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@app.command()
def collect(config: ConfigOption = None) -> None:
    """Run the collector: OTLP/gRPC and OTLP/HTTP in, ClickHouse out, plus the query API."""
    import asyncio

    settings = load(config)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from foothold.collector.service import Collector
    from foothold.collector.store import StoreError

    try:
        lost = asyncio.run(Collector(settings).run_until_signalled())
    except (StoreError, OSError) as exc:
        raise fail(str(exc)) from None
    if lost:
        raise typer.Exit(code=2)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help='SQL to run read-only, e.g. "SELECT * FROM tool_calls LIMIT 5".')],
    config: ConfigOption = None,
    output: Annotated[SqlFormat, typer.Option("--format", "-f", help="table or json")] = SqlFormat.table,
) -> None:
    """Run a read-only query, through the running collector when it owns the store."""
    settings = load(config)

    def run() -> QueryResult:
        with _reader(settings) as reader:
            return reader.query(query)

    result = _query_or_fail(run)
    if output is SqlFormat.json:
        records = [dict(zip(result.columns, row, strict=False)) for row in result.rows]
        emit(orjson.dumps(records, default=str, option=orjson.OPT_INDENT_2).decode())
    else:
        print_table(result.columns, result.rows, empty="The query returned no rows.")


@contextmanager
def _reader(settings: Settings) -> Iterator[ApiReader | DirectReader]:
    """The running collector's query API, else the store itself; never a new, empty embedded store.

    Says on stderr which one it reads, so a responder knows whose data an answer (or an empty one) is about.
    """
    from foothold.collector.discovery import read_discovery
    from foothold.collector.store import chdb_path
    from foothold.investigation.access import open_reader

    path = chdb_path(settings.store_dsn)
    if path is not None and not path.exists() and not read_discovery(settings.data_dir):
        raise fail(
            f"no Foothold store at {path} and no collector running for data_dir {settings.data_dir}: "
            "pass the collector's config with -c (or set FOOTHOLD_DATA_DIR / FOOTHOLD_STORE__DSN), "
            "or start one with `foothold-audit collect -c CONFIG`"
        )
    with open_reader(settings) as reader:
        err.print(f"[dim]reading {escape(reader.via)}[/]")
        yield reader


def _query_or_fail(action: Callable[[], T]) -> T:
    from foothold.collector.store import StoreError

    try:
        return action()
    except StoreError as exc:
        raise fail(str(exc)) from None


@app.command()
def sessions(
    config: ConfigOption = None,
    agent: Annotated[str, typer.Option(help="a call by this agent name")] = "",
    tool: Annotated[str, typer.Option(help="a call of this tool")] = "",
    path: Annotated[str, typer.Option(help="an artifact, target or argument containing this path")] = "",
    fingerprint: Annotated[str, typer.Option(help="a call using this credential fingerprint")] = "",
    since: Annotated[str | None, typer.Option(help="active since: ISO time or 30m / 24h / 7d")] = None,
    until: Annotated[str | None, typer.Option(help="active until: ISO time")] = None,
    has_alerts: Annotated[bool, typer.Option("--has-alerts", help="only sessions with alerts")] = False,
    limit: Annotated[int, typer.Option(help="how many")] = 20,
) -> None:
    """Find sessions (by agent, tool, path, credential, time, alerts), with call, error, durable-write and alert
    counts."""
    from foothold.investigation.timeline import SessionFilter, find_sessions

    settings = load(config)
    where = SessionFilter(agent, tool, fingerprint, path, _since(since), _since(until), has_alerts)

    def run() -> tuple[list[str], list[list[Any]]]:
        with _reader(settings) as reader:
            return find_sessions(reader, where, limit)

    columns, rows = _query_or_fail(run)
    filtered = any(v not in ("", None, False) for v in (agent, tool, path, fingerprint, since, until, has_alerts))
    empty = "No session matches these filters." if filtered else "No sessions stored yet."
    print_table(columns, rows, title="Sessions (most recent first)", empty=empty)


@app.command()
def timeline(
    session: Annotated[str, typer.Argument(help="session (conversation) id")],
    config: ConfigOption = None,
    output: Annotated[TimelineFormat, typer.Option("--format", "-f", help="text, json or html")] = TimelineFormat.text,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file instead of stdout")] = None,
) -> None:
    """A session in order: tool calls, the artifacts under each, human checkpoints and alerts."""
    from foothold.investigation.timeline import Timeline, session_timeline

    settings = load(config)

    def run() -> tuple[Timeline, Report | None]:
        with _reader(settings) as reader:
            timeline = session_timeline(reader, session)
            if not timeline.calls and not timeline.unattached_alerts:
                raise _unknown_session(reader, session)
            return timeline, _session_report(reader, session) if output is TimelineFormat.html else None

    result, remediation = _query_or_fail(run)
    if output is TimelineFormat.text and out is None:
        from foothold.render import timeline_tree

        console.print(timeline_tree(result))
        return
    if output is TimelineFormat.html:
        from foothold.investigation.report import timeline_html

        document = timeline_html(result, remediation)
    else:
        document = orjson.dumps(result.to_dict(), default=str, option=orjson.OPT_INDENT_2).decode()
    _emit(document, out)


def _session_report(reader: Reader, session: str) -> Report:
    from foothold.investigation.inventory import remediation_report

    return remediation_report(reader, session=session)


def _unknown_session(reader: Reader, session: str) -> typer.Exit:
    """An error naming what exists: the closest session ids, else how many there are."""
    from foothold.investigation.timeline import similar_sessions

    close, known = similar_sessions(reader, session)
    if close:
        hint = "did you mean " + ", ".join(repr(s) for s in close) + "?"
    elif known:
        hint = f"the store holds {known} other session(s); `foothold-audit sessions` lists them"
    else:
        hint = "the store holds no sessions yet"
    return fail(f"no tool calls stored for session {session!r} ({reader.via}); {hint}")


def _emit(document: str, out: Path | None) -> None:
    try:
        emit(document, out)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None


def _since(value: str | None) -> datetime | None:
    """An ISO time, or a span back from now such as 30m, 24h, 7d."""
    from datetime import UTC, timedelta

    if value is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[:-1].isdigit() and value[-1] in units:
        return datetime.now(UTC).replace(tzinfo=None) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise fail(f"--since takes an ISO time (2026-11-22T10:00) or a span like 30m, 24h, 7d; got {value!r}") from None


@app.command()
def artifacts(
    config: ConfigOption = None,
    technique: Annotated[str, typer.Option(help="only this ATT&CK technique, e.g. T1098.004")] = "",
    agent: Annotated[str, typer.Option(help="only this agent name")] = "",
    path: Annotated[str, typer.Option(help="only paths containing this text")] = "",
    since: Annotated[str | None, typer.Option(help="ISO time or 30m / 24h / 7d")] = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="every durable file, not only persistence locations")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="compare each path with this host: present, changed, missing")
    ] = False,
) -> None:
    """Inventory of durable artifacts agents left: technique, agents, sessions, first and last seen."""
    from foothold.investigation.inventory import ArtifactRecord, artifact_inventory

    settings = load(config)

    def run() -> list[ArtifactRecord]:
        with _reader(settings) as reader:
            return artifact_inventory(
                reader, technique=technique, agent=agent, path=path, since=_since(since), include_all=include_all
            )

    records = _query_or_fail(run)
    columns = ["Path", "Kind", "Technique", "Agents", "Sessions", "First seen", "Last seen", "sha256"]
    if check:
        for record in records:
            record.check()
        columns.append("On this host")
    table = [
        [
            r.path,
            r.kind,
            r.technique,
            r.agents,
            r.sessions,
            str(r.first_seen)[:19],
            str(r.last_seen)[:19],
            r.sha256[:16],
        ]
        + ([r.on_host] if check else [])
        for r in records
    ]
    what = "durable file" if include_all else "persistence artifact"
    print_table(columns, table, title=f"Durable artifacts ({len(records)})", empty=f"No {what} matches.")


@app.command()
def credentials(
    config: ConfigOption = None,
    since: Annotated[str | None, typer.Option(help="ISO time or 30m / 24h / 7d")] = None,
) -> None:
    """Each credential fingerprint's use across agents, tasks and sessions, with uses after expiry."""
    from foothold.investigation.inventory import credential_usage

    settings = load(config)

    def run() -> tuple[list[str], list[list[Any]]]:
        with _reader(settings) as reader:
            return credential_usage(reader, since=_since(since))

    columns, table = _query_or_fail(run)
    print_table(columns, table, title="Credentials used", empty="No declared credential was used.")


@app.command()
def report(
    session: Annotated[str | None, typer.Argument(help="a session id; or use --since")] = None,
    config: ConfigOption = None,
    since: Annotated[str | None, typer.Option(help="every session active since: ISO time or 30m / 24h / 7d")] = None,
    output: Annotated[ReportFormat, typer.Option("--format", "-f", help="markdown or json")] = ReportFormat.markdown,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file instead of stdout")] = None,
) -> None:
    """Remediation checklist: artifacts to remove, credentials to revoke, sessions to review, with commands."""
    from foothold.investigation.inventory import remediation_report
    from foothold.investigation.report import report_markdown

    if session is None and since is None:
        raise fail("name a SESSION or pass --since (e.g. --since 24h)")
    settings = load(config)

    def run() -> Report:
        with _reader(settings) as reader:
            if session is not None:
                from foothold.investigation.timeline import session_exists

                if not session_exists(reader, session):
                    raise _unknown_session(reader, session)
            return remediation_report(reader, session=session, since=_since(since))

    result = _query_or_fail(run)
    if output is ReportFormat.json:
        _emit(orjson.dumps(result.to_dict(), default=str, option=orjson.OPT_INDENT_2).decode(), out)
    else:
        _emit(report_markdown(result), out)


@app.command()
def alerts(
    config: ConfigOption = None,
    evaluate: Annotated[bool, typer.Option("--evaluate", help="run the rules now before listing")] = False,
    limit: Annotated[int, typer.Option(help="how many")] = 50,
) -> None:
    """List raised alerts; with --evaluate, run the detection rules first (in the collector if it runs)."""
    settings = load(config)
    if evaluate:
        _query_or_fail(lambda: _evaluate(settings))
    query = (
        "SELECT RaisedAt, Severity, RuleId, SessionId, AgentName, Technique, Evidence FROM alerts FINAL "
        "ORDER BY RaisedAt DESC LIMIT {limit:UInt32}"
    )

    def run() -> QueryResult:
        with _reader(settings) as reader:
            return reader.query(query, {"limit": limit})

    result = _query_or_fail(run)
    hint = "" if evaluate else " (--evaluate runs the rules now)"
    print_table(result.columns, result.rows, title="Alerts (most recent first)", empty=f"No alerts raised{hint}.")


def _evaluate(settings: Settings) -> None:
    from foothold.investigation.access import ApiReader

    with _reader(settings) as reader:
        if isinstance(reader, ApiReader):
            answer = reader.evaluate_alerts()
            err.print(f"evaluated in the running collector: {len(answer['raised'])} new alert(s)")
            return
    from foothold.collector.alerting import build_evaluator
    from foothold.collector.chain import open_alert_chain
    from foothold.collector.store import open_store

    store = open_store(
        settings.store_dsn,
        settings.store.database,
        settings.store.cluster,
        replicated=settings.store.replicated,
        retention=settings.retention.policy(),
    )
    try:
        chain = open_alert_chain(settings, store)
        report = build_evaluator(settings.alerts, store.client(), chain=chain).evaluate()
    finally:
        store.close()
    for rule_id, problem in report.failed_rules.items():
        err.print(f"[yellow]rule {rule_id} failed:[/] {problem}")
    err.print(f"evaluated: {len(report.raised)} new alert(s)")


@app.command()
def schema(
    cluster: Annotated[str | None, typer.Option(help="render the cluster variant for this cluster name")] = None,
    database: Annotated[str, typer.Option(help="database name")] = "foothold",
    upgrade_from: Annotated[
        int | None, typer.Option(help="print what upgrading a store at this schema version runs instead")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print the schema DDL (single node, or a cluster with --cluster) and the configured TTLs, for review."""
    settings = load(config)
    from foothold.collector.schema.ddl import Topology
    from foothold.collector.schema.migrations import LATEST, render_all, upgrade_statements

    topology = Topology(database=database, cluster=cluster, replicated=settings.store.replicated)
    if upgrade_from is not None:
        if not 1 <= upgrade_from <= LATEST:
            raise typer.BadParameter(f"schema versions run from 1 to {LATEST}", param_hint="--upgrade-from")
        if upgrade_from == LATEST:
            typer.echo(f"-- version {LATEST} is the latest: an upgrade has nothing to run")
        for statement in upgrade_statements(upgrade_from, topology):
            typer.echo(statement + ";\n")
        return
    for statement in render_all(topology, settings.retention.policy()):
        typer.echo(statement + ";\n")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="where the demo keeps its store and sandbox")] = Path(".foothold/demo"),
) -> None:
    """End to end on the embedded store: a collector, a scripted agent with a persistence attack, the results."""
    _require_collector()
    from foothold.demo import run_demo

    raise typer.Exit(code=run_demo(data_dir.resolve(), console))


@app.command()
def verify(
    config: ConfigOption = None,
    output: Annotated[VerifyFormat, typer.Option("--format", "-f", help="text or json")] = VerifyFormat.text,
    mirror: Annotated[
        Path | None,
        typer.Option(help="chain mirror file to compare (default: chain.mirror_file, data_dir/chain-mirror.jsonl)"),
    ] = None,
) -> None:
    """Check the keyed chain against the store and its mirror: deleted, altered or inserted rows (exit 1 on any)."""
    settings = load(config)
    from foothold.collector.verify import VerifyReport
    from foothold.collector.verify import verify as verify_store
    from foothold.investigation.access import ApiReader

    def run() -> tuple[VerifyReport, str]:
        with _reader(settings) as reader:
            if isinstance(reader, ApiReader):  # the running collector owns the chDB store: it checks itself
                if mirror is not None:
                    raise fail(
                        "--mirror is read by the collector from its chain.mirror_file while it runs; "
                        "stop it to pass another file"
                    )
                return VerifyReport.from_dict(reader.verify()), reader.via
            from foothold.collector.chain import load_chain_key

            key = load_chain_key(settings.chain_key_path)
            mirror_file = mirror or settings.chain_mirror_path
            chains = (settings.chain.name,)
            return verify_store(reader.rows, key, mirror_file, settings.chain.other_writers, chains), reader.via

    report, via = _query_or_fail(run)
    if output is VerifyFormat.json:
        emit(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        chains = ", ".join(f"{name} (links 1-{last})" for name, last in report.chains.items()) or "none"
        err.print(f"verified {report.rows} row(s) against {report.links} chain link(s) via {via}; chains: {chains}")
        if report.findings:
            rows = [
                [f.kind, f.chain, "" if f.sequence is None else f.sequence, f.trace_id, f.span_id, f.detail]
                for f in report.findings[:200]
            ]
            print_table(
                ["finding", "chain", "batch", "trace", "span", "detail"], rows, title="Tamper evidence findings"
            )
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.counts().items()))
            more = " (first 200 shown; --format json lists all)" if len(report.findings) > 200 else ""
            err.print(f"[bold red]FAILED:[/] {counts}{more}")
        else:
            err.print("[green]OK:[/] every chained row is present and unchanged, and no row is unchained")
    if report.findings:
        raise typer.Exit(code=1)


token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for agents and the CLI (auth.tokens).")
app.add_typer(token_app, name="token")


@token_app.command("new")
def token_new(
    name: Annotated[str, typer.Option("--name", "-n", help="sender name stored on every span as foothold.sender")],
) -> None:
    """Print a fresh random token and the auth.tokens line that accepts it (only the hash goes in the config)."""
    import re

    from foothold.collector.tokens import hash_token, new_token

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@:/-]{0,127}", name):
        raise fail("--name: letters, digits and _ . @ : / - only (at most 128 characters)")
    token = new_token()
    digest = hash_token(token)
    typer.echo(token)
    err.print(
        "Give the token (first line) to the sender, e.g. OTEL_EXPORTER_OTLP_HEADERS='authorization=Bearer%20<token>'"
    )
    err.print("or FOOTHOLD_TOKEN for the CLI, and add this under auth.tokens in the collector's config:")
    typer.echo(f'  - {{name: "{name}", sha256: "{digest}"}}')


@token_app.command("hash")
def token_hash() -> None:
    """Read a token on stdin and print its SHA-256, the auth.tokens[].sha256 value."""
    import sys

    from foothold.collector.tokens import hash_token

    token = sys.stdin.read().strip()
    if not token:
        raise fail('no token on stdin: echo -n "$TOKEN" | foothold-audit token hash')
    typer.echo(hash_token(token))


def _mount_subcommands() -> None:
    """Sub-apps import only typer and rich at this point; their heavy imports happen inside commands."""
    from foothold.dashboards.cli import grafana_app
    from foothold.instrumentation.integrations.cli import PROXY_CONTEXT, hook_app, mcp_proxy_command

    app.add_typer(grafana_app, name="grafana", help="Dashboards and alert rules: generate files, push to a Grafana.")
    app.add_typer(hook_app, name="hook", help="Agent hooks: Claude Code events as spans, optional persistence deny.")
    app.command("mcp-proxy", context_settings=PROXY_CONTEXT)(mcp_proxy_command)


_mount_subcommands()


def main() -> None:
    try:
        app()
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None:
            raise
        err.print(f"[bold red]error:[/] {escape(message)}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
