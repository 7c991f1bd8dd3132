"""Rule globs -> regex, written once for the persistence rules and the code review's path lists.

``**/`` is any number of directories, ``**`` anything, ``*`` anything but ``/`` (or anything at all, for host
names), ``?`` one character but ``/``, ``{a,b}`` either word, ``[...]`` a character class.
"""

from __future__ import annotations

import re


def glob_to_regex(glob: str, *, star: str = "[^/]*") -> str:
    """The regex (not anchored) for one glob; ``star`` is what a single ``*`` matches."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append(star)
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "{" and "}" in glob[i:]:
            end = glob.index("}", i)
            out.append("(?:" + "|".join(re.escape(a) for a in glob[i + 1 : end].split(",")) + ")")
            i = end + 1
        elif ch == "[" and "]" in glob[i:]:
            end = glob.index("]", i)
            out.append(glob[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)
