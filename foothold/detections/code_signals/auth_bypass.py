"""Authentication taken away or short-circuited: always-true checks, master passwords, secret knocks."""

from __future__ import annotations

import re

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals.functions import function_header, headers
from foothold.detections.code_signals.rules import CodeRules

_ALWAYS = re.compile(
    r"^\s*(?:return\s+(?:True|true|1|nil|null|None|Ok\(\(\)\)|next\(\))\s*;?\s*$|return\s+next\(\)|next\(\)\s*;?\s*$)"
)
_CREDENTIAL_NAME = r"(?:password|passwd|passphrase|token|api_?key|secret|username|user_?name|otp|pin)"
# A credential-named value (a variable, attribute, or header/dict key) compared with a literal: a magic value.
_LITERAL = r"""(?:"[^"\n]{3,}"|'[^'\n]{3,}')"""
_MAGIC_COMPARE = re.compile(
    rf"""\w*{_CREDENTIAL_NAME}[\w\-]*["']?\]?\)?\s*(?:===?|\.equals\(|\.Equals\()\s*{_LITERAL}"""
    rf"""|{_LITERAL}\s*(?:===?|\.equals\(|\.Equals\()\s*[\w.\[\]"'\-]*{_CREDENTIAL_NAME}""",
    re.IGNORECASE,
)
_ALWAYS_TRUE_GUARD = re.compile(
    r"\b(?:if|return)\s*\(?\s*(?:True|true|1)\s*(?:or|\|\|)|(?:or|\|\|)\s*(?:True|true)\b\s*\)?\s*:?"
)
_HANDLER = re.compile(r"\bcatch\b|\bexcept\b|\brescue\b|\.catch\(|\bErr\(")
# Switches that are not the request's identity: an environment variable, a debug flag, a literal.
_FOREIGN_SWITCH = re.compile(r"getenv|environ|env::var|process\.env|ENV\[|System\.getenv|\bdebug\b|DEBUG", re.I)
# Comparing the user's own role or group with a name is how authorisation works, not a knock.
_ROLE_ATTRIBUTE = re.compile(
    r"\b(?:role|roles|group|groups|scope|scopes|permission|permissions|is_staff|is_superuser|plan|tier)\b", re.I
)


_COMPARE_LITERAL = re.compile(
    r"""(?:===?|!==?|\.equals\(|\.Equals\(|strpos\(|startsWith\(|startswith\(|StartsWith\(|includes\(|indexOf\("""
    r"""|\bin\b)[^\n]{0,120}["'][^"'\s]{4,}["']|["'][^"'\s]{4,}["'][^\n]{0,60}(?:===?|\.equals\(|\bin\b)"""
)


def _auth_headers(rules: CodeRules) -> tuple[re.Pattern[str], ...]:
    """Headers of functions whose name has an auth word (the headers ``function_header`` finds, narrowed)."""
    return headers(rf"\w*{rules.lists['auth_words'].pattern}\w*")


# Every finding below needs an added line one of these matches: an auth-named header or an always-true body
# (the first finding: one of the two is added), a comparison with a literal, a switch that is not the
# caller's identity, a magic compare, an always-true guard.
SCREEN = (_ALWAYS, _auth_headers, _COMPARE_LITERAL, _FOREIGN_SWITCH, _MAGIC_COMPARE, _ALWAYS_TRUE_GUARD)


def auth_bypass(added: list[str], _removed: list[str], change: CodeChange, rules: CodeRules) -> str | None:
    """An auth-named function that now succeeds first thing, or grants early on a switch that is not the
    caller's identity (an environment variable, a debug flag, a literal); an auth check whose failure handler
    now grants; a credential compared with a literal (a master password); a request input (header, cookie,
    user agent, parameter) compared with a literal that grants when it matches (a secret knock); a guard made
    always-true."""
    auth_name, grants = rules.lists["auth_words"], rules.lists["grants"]
    lines = change.after.splitlines() if change.after is not None else added
    added_set = set(added)
    in_auth = _in_auth_function(lines, auth_name) if change.after is not None else [False] * len(lines)
    auth_file = bool(auth_name.search(change.path))
    for i, line in enumerate(lines):
        header = function_header(line)
        if header and auth_name.search(header.group(1)):
            body = _first_statement(lines, i + 1)
            if body is not None and _ALWAYS.match(body) and (body in added_set or line in added_set):
                return f"{line.strip()} -> {body.strip()}"
        if line not in added_set:
            continue
        # Whether the next lines grant is asked last: its alternation over four lines is the costly test.
        knock = _COMPARE_LITERAL.search(line) and rules.lists["request_inputs"].search(line)
        if knock and _grants_near(lines, i, grants):
            return line.strip()  # a secret knock
        switch = re.match(r"\s*(?:if|elif|else\s+if|unless)\b", line) and (
            _FOREIGN_SWITCH.search(line) or (_COMPARE_LITERAL.search(line) and not _ROLE_ATTRIBUTE.search(line))
        )
        if switch and (in_auth[i] or auth_file) and _grants_near(lines, i, grants):
            return line.strip()
        if _ALWAYS.match(line) and any(_HANDLER.search(prev) for prev in lines[max(0, i - 3) : i]):
            if in_auth[i] or auth_file or rules.lists["auth_checks"].search("\n".join(lines[max(0, i - 8) : i])):
                return f"failure handler grants: {line.strip()}"
    for i, line in enumerate(added):
        if _MAGIC_COMPARE.search(line):
            return line.strip()
        if _ALWAYS_TRUE_GUARD.search(line):
            near = "\n".join(added[max(0, i - 3) : i + 1])
            if auth_name.search(near) or rules.lists["auth_checks"].search(near) or auth_file:
                return line.strip()
    return None


def _grants_near(lines: list[str], i: int, grants: re.Pattern[str]) -> bool:
    """Whether line ``i`` or one of the three after it grants (succeeds, passes on, becomes admin)."""
    return any(grants.search(nxt) for nxt in lines[i : i + 4])


def _in_auth_function(lines: list[str], auth_name: re.Pattern[str]) -> list[bool]:
    """For each line, whether the nearest function header above it has an auth-like name."""
    inside, out = False, []
    for line in lines:
        header = function_header(line)
        if header:
            inside = bool(auth_name.search(header.group(1)))
        out.append(inside)
    return out


def _first_statement(lines: list[str], start: int) -> str | None:
    in_docstring = False
    for line in lines[start : start + 12]:
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//", "/*", "*", "@")) or stripped in ("{", "begin"):
            continue
        if stripped.startswith(('"""', "'''")):
            if not (len(stripped) > 3 and stripped.endswith(stripped[:3])):
                in_docstring = not in_docstring
            continue
        if in_docstring:
            if stripped.endswith(('"""', "'''")):
                in_docstring = False
            continue
        return line
    return None
