"""``foothold-audit grafana``: generate the dashboard / alert-rule files, push them to a running Grafana.

Importing this module stays light (typer and rich only): the generator, the detection rules and
grafana-client are imported inside the commands.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

grafana_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Grafana dashboards, alert rules and provisioning for Foothold."
)
console = Console(soft_wrap=True)  # paths and messages stay whole lines, terminal or not
err = Console(stderr=True, soft_wrap=True)


@grafana_app.command()
def generate(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the checked-in files are stale; write nothing.")
    ] = False,
) -> None:
    """Rewrite dashboards/json/*.json and dashboards/alerting/*.yaml from the generator."""
    from foothold.dashboards import build

    if check:
        stale = build.stale_files()
        for path in stale:
            err.print(f"stale: {path}")
        if stale:
            err.print("[bold red]generated Grafana files are out of date:[/] run `foothold-audit grafana generate`")
            raise typer.Exit(code=1)
        console.print("Grafana files are up to date.")
        return
    changed = build.write_files()
    for path in changed:
        console.print(f"wrote {path}")
    if not changed:
        console.print("Grafana files are up to date.")


@grafana_app.command()
def push(
    url: Annotated[
        str, typer.Option("--url", envvar="GRAFANA_URL", help="Grafana base URL, e.g. http://localhost:3000")
    ],
    token: Annotated[str | None, typer.Option("--token", envvar="GRAFANA_TOKEN", help="Service account token.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", envvar="GRAFANA_USER", help="Basic-auth user (instead of a token).")
    ] = None,
    password: Annotated[
        str | None, typer.Option("--password", envvar="GRAFANA_PASSWORD", help="Basic-auth password.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only read from Grafana and print what would change.")
    ] = False,
    clickhouse_host: Annotated[str, typer.Option(help="ClickHouse host as Grafana reaches it.")] = "clickhouse",
    clickhouse_port: Annotated[int, typer.Option(help="8123 for http, 9000 for native.")] = 8123,
    clickhouse_protocol: Annotated[str, typer.Option(help="http or native.")] = "http",
    clickhouse_database: Annotated[str, typer.Option(help="The Foothold database (store.database).")] = "foothold",
    clickhouse_user: Annotated[
        str, typer.Option(help="ClickHouse user for Grafana (read-only is enough).")
    ] = "default",
    clickhouse_password: Annotated[
        str | None,
        typer.Option(envvar="FOOTHOLD_CLICKHOUSE_PASSWORD", help="ClickHouse password (sent, never read back)."),
    ] = None,
    clickhouse_secure: Annotated[bool, typer.Option(help="TLS to ClickHouse.")] = False,
) -> None:
    """Create or update the data source, the Foothold folder, the dashboards and the alert rules."""
    try:
        from grafana_client.api import GrafanaApi
    except ImportError:
        err.print("[bold red]error:[/] grafana-client is missing: pip install 'foothold-audit[dashboards]'")
        raise typer.Exit(code=1) from None
    from foothold.dashboards.push import ClickHouseOptions
    from foothold.dashboards.push import push as run_push

    if token and (user or password):
        err.print("[bold red]error:[/] pass either --token or --user/--password, not both")
        raise typer.Exit(code=1)
    if clickhouse_protocol not in ("http", "native"):
        err.print(f"[bold red]error:[/] --clickhouse-protocol must be http or native, got {clickhouse_protocol!r}")
        raise typer.Exit(code=1)
    credential = token or ((user, password or "") if user else None)
    api = GrafanaApi.from_url(url.rstrip("/"), credential=credential)
    options = ClickHouseOptions(
        clickhouse_host,
        clickhouse_port,
        clickhouse_protocol,
        clickhouse_database,
        clickhouse_user,
        clickhouse_password,
        clickhouse_secure,
    )
    try:
        plan = run_push(api, options, dry_run=dry_run)
    except Exception as exc:  # grafana-client raises its own hierarchy plus connection errors
        err.print(f"[bold red]error:[/] Grafana at {url} refused the push: {exc}")
        raise typer.Exit(code=1) from None
    table = Table(title="Grafana (dry run: nothing written)" if dry_run else "Grafana", header_style="bold")
    for column in ("kind", "uid", "title", "would" if dry_run else "action"):
        table.add_column(column, overflow="fold")
    styles = {"create": "green", "update": "yellow", "unchanged": "dim"}
    for change in plan.changes:
        table.add_row(change.kind, change.uid, change.title, f"[{styles[change.action]}]{change.action}[/]")
    console.print(table)
    console.print(
        f"{plan.count('create')} to create, {plan.count('update')} to update, {plan.count('unchanged')} unchanged"
        if dry_run
        else f"{plan.count('create')} created, {plan.count('update')} updated, {plan.count('unchanged')} unchanged"
    )
