"""The ``foothold`` command.

Collector-side commands import the collector lazily: the agent-side install (``pip install foothold``)
has no ClickHouse client, and its commands must still start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tool-call observability and audit for AI agents.")
console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file (FOOTHOLD_* env vars override it).")
]


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


def _collector_modules():
    try:
        from foothold.collector import config, store
    except ImportError as exc:
        raise fail(f"{exc.name} is missing: this command needs the collector extra, pip install 'foothold[collector]'")
    return config, store


def load(config_path: Path | None):
    config, _ = _collector_modules()
    try:
        return config.load_settings(config_path)
    except config.ConfigError as exc:
        raise fail(str(exc)) from None


def print_table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    table = Table(title=title, header_style="bold", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=str).decode()
    return "" if value is None else str(value)


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
    query: Annotated[str, typer.Argument(help="SQL to run read-only, e.g. \"SELECT * FROM tool_calls LIMIT 5\".")],
    config: ConfigOption = None,
    output: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
) -> None:
    """Run a read-only query, through the running collector when it owns the store."""
    settings = load(config)
    from foothold.collector.access import open_reader
    from foothold.collector.store import StoreError

    try:
        with open_reader(settings) as reader:
            result = reader.query(query)
    except StoreError as exc:
        raise fail(str(exc)) from None
    if output == "json":
        records = [dict(zip(result.columns, row)) for row in result.rows]
        typer.echo(orjson.dumps(records, default=str, option=orjson.OPT_INDENT_2).decode())
    else:
        print_table(result.columns, result.rows)


def _reader(settings):
    from foothold.collector.access import open_reader

    return open_reader(settings)


def _query_or_fail(action):
    from foothold.collector.store import StoreError

    try:
        return action()
    except StoreError as exc:
        raise fail(str(exc)) from None


@app.command()
def sessions(config: ConfigOption = None, limit: Annotated[int, typer.Option(help="how many")] = 20) -> None:
    """Recent sessions with their call, error, durable-write and alert counts."""
    from foothold.collector.timeline import recent_sessions

    settings = load(config)

    def run():
        with _reader(settings) as reader:
            return recent_sessions(reader, limit)

    columns, rows = _query_or_fail(run)
    print_table(columns, rows, title="Sessions (most recent first)")


@app.command()
def timeline(
    session: Annotated[str, typer.Argument(help="session (conversation) id")],
    config: ConfigOption = None,
    output: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
) -> None:
    """A session in order: tool calls, the artifacts under each, human checkpoints and alerts."""
    from foothold.collector.timeline import session_timeline

    settings = load(config)

    def run():
        with _reader(settings) as reader:
            return session_timeline(reader, session)

    result = _query_or_fail(run)
    if not result.calls and not result.unattached_alerts:
        raise fail(f"no tool calls stored for session {session!r}; `foothold sessions` lists the known ones")
    if output == "json":
        typer.echo(orjson.dumps(result.to_dict(), default=str, option=orjson.OPT_INDENT_2).decode())
    else:
        from foothold.render import timeline_tree

        console.print(timeline_tree(result))


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

    def run():
        with _reader(settings) as reader:
            return reader.query(query, {"limit": limit})

    result = _query_or_fail(run)
    print_table(result.columns, result.rows, title="Alerts (most recent first)")


def _evaluate(settings) -> None:
    from foothold.collector.access import ApiReader

    with _reader(settings) as reader:
        if isinstance(reader, ApiReader):
            report = reader.evaluate_alerts()
            err.print(f"evaluated in the running collector: {len(report['raised'])} new alert(s)")
            return
    from foothold.collector.alerting import build_evaluator
    from foothold.collector.store import open_store

    store = open_store(settings.store_dsn, settings.store.database, settings.store.cluster)
    try:
        report = build_evaluator(settings.alerts, store.client()).evaluate()
    finally:
        store.close()
    for rule_id, problem in report.failed_rules.items():
        err.print(f"[yellow]rule {rule_id} failed:[/] {problem}")
    err.print(f"evaluated: {len(report.raised)} new alert(s)")


@app.command()
def schema(
    cluster: Annotated[str | None, typer.Option(help="render the cluster variant for this cluster name")] = None,
    database: Annotated[str, typer.Option(help="database name")] = "foothold",
) -> None:
    """Print the schema DDL (single node, or a cluster with --cluster) for review or manual apply."""
    _collector_modules()
    from foothold.collector.schema.ddl import Topology
    from foothold.collector.schema.migrations import render_all

    for statement in render_all(Topology(database=database, cluster=cluster)):
        typer.echo(statement + ";\n")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="where the demo keeps its store and sandbox")] = Path(".foothold/demo"),
) -> None:
    """End to end on the embedded store: a collector, a scripted agent with a persistence attack, the results."""
    _collector_modules()
    from foothold.demo import run_demo

    raise typer.Exit(code=run_demo(data_dir.resolve(), console))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
