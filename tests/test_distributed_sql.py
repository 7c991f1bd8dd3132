"""Lint: no query the project ships may use a plain IN (SELECT …) or JOIN; each must be GLOBAL.

On a cluster every Foothold table a query names is a Distributed table, and ClickHouse refuses a plain
subquery IN or JOIN over a second Distributed table (Code 288, distributed_product_mode = 'deny'); with
'local' it would silently answer from one shard's slice (credential fingerprints, for one, span shards).
GLOBAL runs the subquery once and ships its result to every shard, and is a no-op on a single node. The
two-shard test (test_cluster.py) runs today's queries; this check keeps tomorrow's rules, panels and CLI
queries from regressing where that test has no data to exercise them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from foothold.dashboards import build
from foothold.detections.rules import load_alert_rules

ROOT = Path(__file__).resolve().parents[1]
PYTHON_SOURCES = [p for d in ("collector", "foothold", "dashboards") for p in sorted((ROOT / d).rglob("*.py"))]

_COMMENT = re.compile(r"--[^\n]*")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
# A subquery IN (also NOT IN) or any JOIN but ARRAY JOIN, not preceded by GLOBAL.
_PLAIN_IN = re.compile(r"\bIN\s*\(\s*SELECT\b", re.I)
_JOIN = re.compile(r"(?P<prefix>(?:\b\w+\s+){0,4})(?<!\.)\bJOIN\b", re.I)  # not Python's str.join
_JOIN_WORDS = {"ANY", "ALL", "ASOF", "SEMI", "ANTI", "LEFT", "RIGHT", "FULL", "INNER", "OUTER", "CROSS", "PASTE"}


def plain_distributed_subqueries(sql: str) -> list[str]:
    """The places in ``sql`` where an IN (SELECT …) or a JOIN lacks GLOBAL (comments and literals ignored)."""
    text = _STRING.sub("''", _COMMENT.sub("", sql))
    found = []
    for match in _PLAIN_IN.finditer(text):
        before = text[: match.start()].rstrip()
        if not re.search(r"\bGLOBAL(\s+NOT)?$", before, re.I):
            found.append(text[max(0, match.start() - 40) : match.end()].strip())
    for match in _JOIN.finditer(text):
        words = match.group("prefix").split()
        # Walk back over the join's own keywords (LEFT, ANY, OUTER…); the word before them must be GLOBAL.
        while words and words[-1].upper() in _JOIN_WORDS:
            words.pop()
        if words and words[-1].upper() == "ARRAY":
            continue  # ARRAY JOIN unfolds an array in place: nothing distributed
        if not (words and words[-1].upper() == "GLOBAL"):
            found.append(text[max(0, match.start() - 10) : match.end() + 30].strip())
    return found


@pytest.mark.parametrize(
    ("sql", "plain"),
    [
        ("SELECT 1 FROM t WHERE a IN (SELECT a FROM t)", True),
        ("SELECT 1 FROM t WHERE a NOT IN (SELECT a FROM t)", True),
        ("SELECT 1 FROM t WHERE a IN\n  ( SELECT a FROM t)", True),
        ("SELECT 1 FROM t WHERE a GLOBAL IN (SELECT a FROM t)", False),
        ("SELECT 1 FROM t WHERE (a, b) GLOBAL NOT IN (SELECT a, b FROM t)", False),
        ("SELECT 1 FROM t LEFT JOIN u ON t.a = u.a", True),
        ("SELECT 1 FROM t ANY LEFT OUTER JOIN u ON t.a = u.a", True),
        ("SELECT 1 FROM t INNER JOIN (SELECT a FROM u) AS u ON t.a = u.a", True),
        ("SELECT 1 FROM t JOIN u USING a", True),
        ("SELECT 1 FROM t GLOBAL ANY LEFT JOIN u ON t.a = u.a", False),
        ("SELECT 1 FROM t GLOBAL INNER JOIN (SELECT a FROM u) AS u ON t.a = u.a", False),
        ("SELECT x FROM t ARRAY JOIN xs AS x", False),
        ("SELECT 1 FROM t WHERE a IN ('x', 'y') AND b IN {keys:Array(String)}", False),
        ("SELECT 'a JOIN b', 1 -- x IN (SELECT 1)\nFROM t", False),
    ],
)
def test_the_lint_tells_plain_from_global(sql, plain):
    assert bool(plain_distributed_subqueries(sql)) is plain


@pytest.mark.parametrize("rule", load_alert_rules(), ids=lambda r: r.id)
def test_alert_rules_use_global_subqueries(rule):
    assert plain_distributed_subqueries(rule.sql) == [], f"rule {rule.id}: use GLOBAL IN / GLOBAL JOIN"


def _dashboard_sql():
    for path in sorted(build.JSON_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in build.iter_panels(dashboard):
            for target in panel.get("targets", []):
                yield pytest.param(target["rawSql"], id=f"{path.stem}:{panel['title']}")
        for variable in dashboard["templating"]["list"]:
            if variable.get("type") == "query":
                yield pytest.param(variable["query"]["rawSql"], id=f"{path.stem}:${variable['name']}")
    alerting = yaml.safe_load((build.ALERTING_DIR / "foothold-alerts.yaml").read_text(encoding="utf-8"))
    for group in alerting["groups"]:
        for rule in group["rules"]:
            for query in rule["data"]:
                if "rawSql" in query["model"]:
                    yield pytest.param(query["model"]["rawSql"], id=f"grafana-alert:{rule['uid']}")


@pytest.mark.parametrize("sql", list(_dashboard_sql()))
def test_dashboard_and_grafana_alert_queries_use_global_subqueries(sql):
    assert plain_distributed_subqueries(sql) == []


@pytest.mark.parametrize("path", PYTHON_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sql_in_the_python_sources_uses_global_subqueries(path):
    """SQL held in Python strings (timeline, inventory, the evaluator's delivery query…)."""
    text = path.read_text(encoding="utf-8")
    if "SELECT" not in text:
        return
    hits = [h for h in plain_distributed_subqueries(text) if re.search(r"\bSELECT\b|\bFROM\b|\bON\b|USING", h)]
    assert hits == [], f"{path.relative_to(ROOT)}: use GLOBAL IN / GLOBAL JOIN"
