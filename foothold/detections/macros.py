"""Expansion of the Grafana ClickHouse data source's SQL macros, as the plugin does it server-side.

Detection rules are written once with these macros, so the same SQL runs in Grafana (panels and alert
rules), in Foothold's alert evaluator, and in the tests against chDB.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)\b")


class MacroError(ValueError):
    """A macro with the wrong arguments, or a variable nobody defined."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_seconds: float = 60.0

    @classmethod
    def last(cls, seconds: float, now: datetime | None = None, interval_seconds: float = 60.0) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(datetime.fromtimestamp(end.timestamp() - seconds, UTC), end, interval_seconds)


def _seconds(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _millis(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC):%Y-%m-%d}')"


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _expand_macro(name: str, args: list[str], tr: TimeRange) -> str:
    interval = max(int(tr.interval_seconds), 1)
    fixed = {
        "fromTime": _seconds(tr.start),
        "toTime": _seconds(tr.end),
        "fromTime_ms": _millis(tr.start),
        "toTime_ms": _millis(tr.end),
        "interval_s": str(interval),
    }
    if name in fixed:
        return fixed[name]
    one_arg = {
        "timeFilter": lambda c: _between(c, _seconds(tr.start), _seconds(tr.end)),
        "timeFilter_ms": lambda c: _between(c, _millis(tr.start), _millis(tr.end)),
        "dateFilter": lambda c: _between(c, _date(tr.start), _date(tr.end)),
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {interval} second)",
        "timeInterval_ms": lambda c: (
            f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {max(int(tr.interval_seconds * 1000), 1)} millisecond)"
        ),
    }
    if name in one_arg:
        if len(args) != 1:
            raise MacroError(f"$__{name} takes one column, got {len(args)} argument(s)")
        return one_arg[name](args[0])
    if name in ("dateTimeFilter", "dt"):
        if len(args) != 2:
            raise MacroError(f"$__{name} takes a date column and a time column")
        date_col, time_col = args
        dates = _between(date_col, _date(tr.start), _date(tr.end))
        return f"({dates}) AND ({_between(time_col, _seconds(tr.start), _seconds(tr.end))})"
    raise MacroError(f"unknown macro $__{name}")


def expand(sql: str, time_range: TimeRange, variables: Mapping[str, str] | None = None) -> str:
    """Expand ``$__macros`` and dashboard variables (``$name`` / ``${name}``) into plain ClickHouse SQL."""

    def macro(match: re.Match[str]) -> str:
        raw = match.group(2)
        args = [a.strip().strip("'\"") for a in raw.split(",")] if raw else []
        return _expand_macro(match.group(1), args, time_range)

    expanded = _MACRO.sub(macro, sql)
    values = variables or {}

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise MacroError(f"dashboard variable ${name} has no value")
        return values[name]

    return _VARIABLE.sub(variable, expanded)
