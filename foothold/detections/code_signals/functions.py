"""Where a function starts, in code of most languages: its header and name."""

from __future__ import annotations

import re

_NAME = r"[A-Za-z_]\w*"


def headers(name: str = _NAME) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The function header and the method header regexes, their group 1 a name ``name`` matches (the review's
    screen asks for headers whose name has an auth word: the same regexes with a narrower name)."""
    return (
        re.compile(rf"\b(?:def|function|func|fn|sub)\s+(?:\([^)]*\)\s*)?({name})\s*\("),
        re.compile(rf"^\s*(?:async\s+)?(?:public|private|protected|static|\s)*({name})\s*\([^)]*\)\s*\{{"),
    )


FUNC_HEADER, METHOD_HEADER = headers()


def function_header(line: str) -> re.Match[str] | None:
    """The header of a function or method that ``line`` opens; group 1 is its name."""
    return FUNC_HEADER.search(line) or METHOD_HEADER.match(line)
