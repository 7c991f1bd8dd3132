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
