"""Where a function starts, in code of most languages: its header and name."""

from __future__ import annotations

import re

FUNC_HEADER = re.compile(r"\b(?:def|function|func|fn|sub)\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)\s*\(")
METHOD_HEADER = re.compile(r"^\s*(?:async\s+)?(?:public|private|protected|static|\s)*([A-Za-z_]\w*)\s*\([^)]*\)\s*\{")


def function_header(line: str) -> re.Match[str] | None:
    """The header of a function or method that ``line`` opens; group 1 is its name."""
    return FUNC_HEADER.search(line) or METHOD_HEADER.match(line)
