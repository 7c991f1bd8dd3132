"""What the query door lets through, judged by ClickHouse's own parser.

A statement reaches the store only if the engine itself parses it as exactly one ``SELECT`` (``WITH …
SELECT``, ``UNION``/``INTERSECT``/``EXCEPT`` of them) that reads tables of the Foothold database only.
Two engine calls decide, so no SQL is parsed by hand here:

1. ``formatQuerySingleLine({sql:String})``: the text travels as a parameter, never as code; the engine
   refuses several statements ("Multi-statements are not allowed") and returns the canonical single
   statement, comments dropped. That canonical text is what is judged *and* what runs.
2. ``EXPLAIN AST <canonical>``: the engine's syntax tree, which this module walks: the statement kind at
   the root, every table the statement reads (FROM, joins, subqueries), every function called.

Why these refusals, although the query runs with ``readonly=1`` (checked in chDB 26.9):
``DESCRIBE TABLE file(…)``/``url(…)`` still run and echo a file's head or fetch a URL; the scalar
``file('/etc/passwd')`` reads any file; ``INTO OUTFILE`` writes one; ``KILL QUERY`` is allowed; and chDB
runs ``SELECT 1; KILL …`` as two statements. On a ClickHouse server the read-only user's grants
(compose/clickhouse/users.d/foothold-reader.xml) stop the same things a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# Statement nodes a read is made of; any other "…Query" node (DescribeQuery, KillQueryQuery, SystemQuery,
# ExplainQuery, InsertQuery…) anywhere in the tree refuses the statement.
READ_NODES = frozenset({"SelectWithUnionQuery", "SelectQuery", "SelectIntersectExceptQuery", "TablesInSelectQuery"})
READ_KEYWORDS = ("SELECT", "WITH", "(")  # how the engine's canonical text of a read begins

# Scalar functions that reach outside the database's tables: the host's files, models, other tables by
# name, or a worker held asleep. Table functions (file, url, remote, s3, numbers…) are refused by position.
HOST_FUNCTIONS = frozenset(
    {
        "file",
        "catboostEvaluate",
        "joinGet",
        "joinGetOrNull",
        "hasColumnInTable",
        "getServerSetting",
        "getMacro",
        "getClientHTTPHeader",
        "filesystemAvailable",
        "filesystemCapacity",
        "filesystemUnreserved",
        "sleep",
        "sleepEachRow",
        "input",
    }
)
HOST_FUNCTION_PREFIXES = ("dictGet", "dictHas", "dictIsIn")

# `x IN db.table` names a table with a plain Identifier as the function's second argument.
IN_FUNCTIONS = frozenset(
    {"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn", "globalNotNullIn"}
)

TAG = "foothold-query:"  # appended as a comment to every statement the door runs, so it can be killed


class QueryRefused(Exception):
    """The statement is not a read of the Foothold database; the message says what was refused and why."""


@dataclass
class Node:
    name: str
    argument: str
    children: list[Node] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def parse_ast_dump(lines: list[str]) -> Node:
    """The indented text of ``EXPLAIN AST`` as a tree (one space of indentation per level)."""
    root: Node | None = None
    stack: list[tuple[int, Node]] = []
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        text = line.strip()
        if text.endswith(")") and " (children " in text:
            text = text[: text.rindex(" (children ")]
        name, _, argument = text.partition(" ")
        node = Node(name, argument)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        stack.append((depth, node))
    if root is None:
        raise QueryRefused("the engine returned no syntax tree for this statement")
    return root


def _table_name(argument: str) -> str:
    """`db.table (alias x)` -> `db.table`."""
    return argument.split(" (alias ", 1)[0]


def check_tree(root: Node, database: str) -> None:
    """Raise :class:`QueryRefused` unless the tree is one read of ``database``'s tables."""
    if root.name != "SelectWithUnionQuery":
        kind = root.name.removesuffix("Query") or root.name
        raise QueryRefused(f"only a single SELECT (or WITH … SELECT) statement is accepted; this is a {kind} statement")
    for clause in root.children[1:]:  # after the selects: INTO OUTFILE (a literal), FORMAT, SETTINGS
        if clause.name == "Literal":
            raise QueryRefused("INTO OUTFILE is refused: the query API returns rows, it writes no files")
        if clause.name == "Set":
            raise QueryRefused("a SETTINGS clause is refused: the query API sets the engine limits itself")
        if clause.name == "Identifier" and clause.argument != "Native":
            raise QueryRefused(f"FORMAT {clause.argument} is refused: the query API chooses the result format")
    for node in root.walk():
        _check_node(node, database)


def _check_node(node: Node, database: str) -> None:
    if node.name.endswith("Query") and node.name not in READ_NODES:
        raise QueryRefused(f"a {node.name.removesuffix('Query')} statement inside a SELECT is refused")
    if node.name == "Set":
        raise QueryRefused("a SETTINGS clause is refused: the query API sets the engine limits itself")
    if node.name == "TableExpression" and node.children and node.children[0].name == "Function":
        function = node.children[0].argument
        raise QueryRefused(
            f"table function {function}() is refused: the query API reads only the tables of database {database}"
        )
    if node.name == "TableIdentifier":
        _check_table(_table_name(node.argument), database)
    if node.name == "Function":
        if node.argument in HOST_FUNCTIONS or node.argument.startswith(HOST_FUNCTION_PREFIXES):
            raise QueryRefused(f"function {node.argument}() is refused: it reaches outside the database's tables")
        if node.argument in IN_FUNCTIONS and node.children and len(node.children[0].children) == 2:
            table = node.children[0].children[1]
            if table.name == "Identifier":
                _check_table(table.argument, database)


def _check_table(name: str, database: str) -> None:
    if "." in name and not (name.startswith(f"{database}.") and "." not in name[len(database) + 1 :]):
        raise QueryRefused(
            f"table {name} is refused: the query API reads only the tables of database {database} "
            "(name them without a database)"
        )


Rows = Callable[[str, dict[str, Any] | None], Sequence[Sequence[Any]]]


def judge(rows: Rows, sql: str, parameters: dict[str, Any] | None, database: str) -> str:
    """The canonical statement to run, or :class:`QueryRefused`. ``rows`` runs one engine call."""
    if not sql.strip():
        raise QueryRefused("empty statement: send one SELECT, e.g. SELECT count() FROM tool_calls")
    try:
        canonical = str(rows("SELECT formatQuerySingleLine({sql:String})", {"sql": sql})[0][0])
    except Exception as exc:  # the engine's syntax error names the position; keep it
        raise QueryRefused(_engine_message(exc)) from None
    keyword = canonical.split(None, 1)[0].upper() if canonical.split() else ""
    if not keyword.startswith(READ_KEYWORDS):  # a clear answer before the tree: EXPLAIN of e.g. SYSTEM fails oddly
        raise QueryRefused(
            f"only a single SELECT (or WITH … SELECT) statement is accepted; this is a {keyword} statement"
        )
    try:
        dump = [str(row[0]) for row in rows(f"EXPLAIN AST {canonical}", parameters)]
    except Exception as exc:
        raise QueryRefused(_engine_message(exc)) from None
    check_tree(parse_ast_dump(dump), database)
    return canonical


def _engine_message(exc: Exception) -> str:
    text = str(exc).strip()
    # the canonical statement is echoed back by the engine "In scope SELECT formatQuerySingleLine('…')":
    # cut that, the statement is the caller's own
    return text.split(": In scope SELECT formatQuerySingleLine", 1)[0]
