"""Draft the next migration from what ``ddl.py`` now has and the frozen versions do not.

``python -m foothold.collector.schema.migrations.draft "what changed"`` prints a ``vNNNN_*.py`` module (``--write``
creates it): a ``CreateTable`` per new table, ``CreateView`` per new view and ``ModifyQuery`` per view whose
SELECT changed, all as literal SQL, and the new schema fingerprint. A column, index or setting change on an
existing table it cannot infer (the frozen versions hold it as ``ALTER`` clauses): it leaves a TODO naming
the table, and tests/test_migrations.py shows what still differs.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from foothold.collector.schema import ddl
from foothold.collector.schema.migrations import LATEST, MIGRATIONS, schema_fingerprint
from foothold.collector.schema.migrations.steps import CreateTable, CreateView, ModifyQuery, Step

_WIDTH = 108  # SQL lines inside the module, so it passes the 120-column lint


def _folded(sql: str) -> str:
    return " ".join(sql.split())


def _frozen_state() -> tuple[set[str], dict[str, str]]:
    """The tables the versions create, and each view's latest SELECT."""
    tables: set[str] = set()
    views: dict[str, str] = {}
    for migration in MIGRATIONS:
        for step in migration.steps:
            if isinstance(step, CreateTable):
                tables.add(step.name)
            elif isinstance(step, CreateView):
                views[step.name] = step.select
            elif isinstance(step, ModifyQuery):
                views[step.view] = step.select
    return tables, views


def pending_steps() -> tuple[list[Step], list[str]]:
    """Steps for what is new in ``ddl.py``, and the existing tables whose definition a person must compare."""
    tables, views = _frozen_state()
    steps: list[Step] = []
    for obj in ddl.SCHEMA:
        if isinstance(obj, ddl.View):
            select = obj.select.format(source="{source}")
            if obj.name not in views:
                steps.append(CreateView(obj.name, obj.source, obj.target, select))
            elif _folded(select) != _folded(views[obj.name]):
                steps.append(ModifyQuery(obj.name, obj.source, select))
        elif obj.name not in tables:
            steps.append(
                CreateTable(
                    obj.name,
                    obj.body,
                    obj.order_by,
                    obj.partition_by,
                    obj.shard_key,
                    obj.engine,
                    obj.engine_args,
                    obj.primary_key,
                    obj.settings,
                )
            )
    existing = [obj.name for obj in ddl.SCHEMA if isinstance(obj, ddl.Table) and obj.name in tables]
    return steps, existing


def _wrap(line: str) -> list[str]:
    """Break a long SQL line at spaces outside quotes (ClickHouse stores its own formatting either way)."""
    if len(line) <= _WIDTH:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()))
    words = re.findall(r"(?:'(?:[^'\\]|\\.)*'|[^\s'])+", line)
    out, current = [], indent
    for word in words:
        if current.strip() and len(current) + 1 + len(word) > _WIDTH:
            out.append(current)
            current = indent + "    " + word
        else:
            current = f"{current} {word}" if current.strip() else current + word
    return [*out, current]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    if "\n" not in text and len(text) < 80:
        return _quoted(text)
    body = text if text.startswith("\n") else "\n    " + text
    body = "\n".join(part for line in body.split("\n") for part in _wrap(line))
    return ('r"""' if "\\" in body else '"""') + body + '"""'


def _render(step: Step) -> str:
    defaults = {name: f.default for name, f in type(step).__dataclass_fields__.items()}
    fields = [
        f"            {name}={_literal(value) if isinstance(value, str) else repr(value)},"
        for name, value in vars(step).items()
        if value != defaults[name]
    ]
    return f"        {type(step).__name__}(\n" + "\n".join(fields) + "\n        ),"


def _description(text: str) -> str:
    lines = textwrap.wrap(text, 96, drop_whitespace=False)
    if len(lines) <= 1:
        return _quoted(text)
    return "(\n" + "".join(f"        {_quoted(line)}\n" for line in lines) + "    )"


def module_text(description: str) -> str:
    steps, existing = pending_steps()
    version = LATEST + 1
    kinds = sorted({type(s).__name__ for s in steps} | {"Migration"})
    todo = [
        "TODO: a changed column, index or setting of an existing table needs an AlterTable (import it), e.g.",
        'AlterTable("tool_calls", "ADD COLUMN IF NOT EXISTS X String AFTER Y", distributed=True),',
        *textwrap.wrap("existing tables: " + ", ".join(existing), 100),
    ]
    todo_text = "".join(f"        # {line}\n" for line in todo)
    rendered = "\n".join(_render(s) for s in steps)
    return (
        '"""' + "\n".join(textwrap.wrap(f"Schema version {version}: {description}.", 116)) + "\n\n"
        "Frozen: stores ran exactly these statements. Never edit a released migration; add the next one.\n"
        '"""\n\n'
        f"from foothold.collector.schema.migrations.steps import {', '.join(kinds)}\n\n"
        "MIGRATION = Migration(\n"
        f"    version={version},\n"
        f"    description={_description(description)},\n"
        "    steps=(\n"
        f"{todo_text}{rendered}{chr(10) if rendered else ''}"
        "    ),\n"
        f'    fingerprint="{schema_fingerprint()}",\n'
        ")\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("description", help="what the version changes, one sentence")
    parser.add_argument("--write", action="store_true", help="create the module instead of printing it")
    args = parser.parse_args(argv)
    text = module_text(args.description)
    if not args.write:
        sys.stdout.write(text)
        return 0
    slug = re.sub(r"[^a-z0-9]+", "_", args.description.lower()).strip("_")[:48] or "change"
    path = Path(__file__).with_name(f"v{LATEST + 1:04d}_{slug}.py")
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}; fill in the TODO, then run: pytest tests/test_migrations.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
