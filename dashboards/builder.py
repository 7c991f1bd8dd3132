"""The typed builder for Grafana dashboards: queries, panels, variables and dashboards as frozen dataclasses
that render to the JSON Grafana provisions. Knows Grafana and the ClickHouse plugin, nothing of Foothold's
tables; the dashboards themselves are in :mod:`foothold.dashboards.definitions`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PLUGIN_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "foothold-clickhouse"
DATASOURCE = {"type": PLUGIN_TYPE, "uid": DATASOURCE_UID}
EXPRESSION_UID = "__expr__"
TIMELINE_UID = "foothold-session-timeline"

# The ClickHouse plugin's query formats (sqlutil.FormatQueryOption): 0 time series, 1 table, 3 trace.
TIME_SERIES, TABLE, TRACE = 0, 1, 3


@dataclass(frozen=True)
class Query:
    """A raw-SQL ClickHouse query; ``format`` is the plugin's table / time series / trace option."""

    sql: str
    format: int = TABLE
    ref_id: str = "A"

    @property
    def query_type(self) -> str:
        return {TIME_SERIES: "timeseries", TABLE: "table", TRACE: "traces"}[self.format]

    def to_json(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": dict(DATASOURCE),
            "editorType": "sql",
            "format": self.format,
            "queryType": self.query_type,
            "rawSql": self.sql.strip(),
        }


@dataclass(frozen=True)
class Link:
    """A data link on the table column ``field`` (``${__value.raw}`` is the clicked cell)."""

    field: str
    title: str
    url: str


def session_link(column: str) -> Link:
    return Link(column, "Session timeline", f"/d/{TIMELINE_UID}?var-session=${{__value.raw}}&${{__url_time_range}}")


def trace_link(column: str) -> Link:
    return Link(
        column,
        "Trace view",
        f"/d/{TIMELINE_UID}?var-session=${{session}}&var-trace_id=${{__value.raw}}&${{__url_time_range}}",
    )


@dataclass(frozen=True)
class Panel:
    title: str
    type: str  # timeseries | table | stat | barchart | traces | text
    query: Query | None = None
    description: str = ""
    unit: str | None = None
    column_units: tuple[tuple[str, str], ...] = ()  # (column, unit): a table's unit where it applies, not on counts
    width: int = 12
    height: int = 8
    links: tuple[Link, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    content: str = ""  # text panels

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if self.unit:
            defaults["unit"] = self.unit
        overrides = [
            {
                "matcher": {"id": "byName", "options": link.field},
                "properties": [{"id": "links", "value": [{"title": link.title, "url": link.url}]}],
            }
            for link in self.links
        ] + [
            {"matcher": {"id": "byName", "options": column}, "properties": [{"id": "unit", "value": unit}]}
            for column, unit in self.column_units
        ]
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
        }
        if self.type == "text":
            panel["options"] = {"mode": "markdown", "content": self.content}
            return panel
        assert self.query is not None, f"panel {self.title!r} needs a query"
        panel |= {
            "datasource": dict(DATASOURCE),
            "targets": [self.query.to_json()],
            "fieldConfig": {"defaults": defaults, "overrides": overrides},
            "options": dict(self.options),
        }
        return panel


@dataclass(frozen=True)
class Variable:
    """A dashboard variable: a query against the data source, or a free-text box."""

    name: str
    label: str
    sql: str | None = None  # None: a textbox
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.sql is None:
            return {
                "type": "textbox",
                "name": self.name,
                "label": self.label,
                "query": "",
                "current": {"text": "", "value": ""},
                "hide": 0,
            }
        variable: dict[str, Any] = {
            "type": "query",
            "name": self.name,
            "label": self.label,
            "datasource": dict(DATASOURCE),
            "query": {"editorType": "sql", "rawSql": self.sql.strip(), "format": TABLE, "queryType": "table"},
            "definition": self.sql.strip(),
            "refresh": 2,  # on time range change
            "multi": self.multi,
            "includeAll": self.include_all,
            "sort": 0,
            "hide": 0,
        }
        if self.include_all:
            variable["current"] = (
                {"text": ["All"], "value": ["$__all"]} if self.multi else {"text": "All", "value": "$__all"}
            )
        if self.all_value is not None:
            variable["allValue"] = self.all_value
        return variable


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-24h"
    tags: tuple[str, ...] = ("foothold",)

    def to_json(self) -> dict[str, Any]:
        rendered, x, y, row_height = [], 0, 0, 0
        for panel_id, panel in enumerate(self.panels, start=1):
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            rendered.append(panel.to_json(panel_id, x, y))
            x, row_height = x + panel.width, max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "refresh": "1m",
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "templating": {"list": [v.to_json() for v in self.variables]},
            "annotations": {"list": []},
            "links": [
                {
                    "type": "dashboards",
                    "tags": ["foothold"],
                    "asDropdown": True,
                    "title": "Foothold",
                    "includeVars": False,
                    "keepTime": True,
                }
            ],
            "panels": rendered,
        }


def ts(sql: str) -> Query:
    return Query(sql, TIME_SERIES)


def table(sql: str) -> Query:
    return Query(sql, TABLE)


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows
