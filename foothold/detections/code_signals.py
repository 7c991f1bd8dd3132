"""Backdoor signals in code an agent wrote, judged by what the code does (rules/code.yaml).

Persistence rules judge *where* a write lands; these judge *what* a write to ordinary source does: decode then
execute, a shell handed to a socket, secrets sent out, an auth check taken away, code run at install time.
Each signal names an effect and its regexes describe it in several languages, so it holds for code nobody
wrote a test for. Every regex sees at most MAX_LINE characters of a line: bounded time on hostile input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from foothold.detections.code_changes import CodeChange
from foothold.redact import MARKER_PREFIX, find_secrets

SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")
MAX_LINE = 4096  # no regex sees more than this of one line
MAX_LINES = 20_000  # per change
_REVIEW_KEY = b"foothold-code-review"  # fingerprints here only say "a secret"; correlation uses the real key


@dataclass(frozen=True)
class CodeFinding:
    signal: str
    severity: str
    technique: str
    title: str
    path: str
    evidence: str
    call_id: str = ""


# --- rules ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    id: str
    severity: str
    technique: str
    title: str
    kind: str | None
    added: re.Pattern[str] | None
    removed_only: re.Pattern[str] | None
    files: tuple[str, ...]
    skip_files: tuple[str, ...]
    in_tests: str | None


@dataclass(frozen=True)
class CodeRules:
    lists: dict[str, re.Pattern[str]]
    paths: dict[str, re.Pattern[str]]
    benign_hosts: re.Pattern[str]
    signals: tuple[Signal, ...]


@cache
def load_code_rules() -> CodeRules:
    text = resources.files("foothold.detections").joinpath("rules/code.yaml").read_text()
    return compile_code_rules(yaml.safe_load(text))


def compile_code_rules(data: dict[str, Any]) -> CodeRules:
    raw_lists: dict[str, list[str]] = data["lists"]
    nocase = set(data.get("case_insensitive", ()))
    alternations = {
        name: ("(?i:" if name in nocase else "(?:") + "|".join(items) + ")" for name, items in raw_lists.items()
    }

    def expand(pattern: str) -> re.Pattern[str]:
        return re.compile(re.sub(r"\{(\w+)\}", lambda m: alternations[m.group(1)], pattern))

    signals = []
    for raw in data["signals"]:
        if raw["severity"] not in SEVERITY_ORDER:
            raise ValueError(f"code rule {raw['id']}: severity {raw['severity']!r} is not one of {SEVERITY_ORDER}")
        signals.append(
            Signal(
                id=raw["id"],
                severity=raw["severity"],
                technique=raw.get("technique", ""),
                title=raw["title"],
                kind=raw.get("kind"),
                added=expand(raw["added"]) if "added" in raw else None,
                removed_only=expand(raw["removed_only"]) if "removed_only" in raw else None,
                files=tuple(raw.get("files", ())),
                skip_files=tuple(raw.get("skip_files", ())),
                in_tests=raw.get("in_tests"),
            )
        )
    return CodeRules(
        lists={name: expand(f"{{{name}}}") for name in raw_lists},
        paths={name: _globs(globs) for name, globs in data["paths"].items()},
        benign_hosts=_globs(data["benign_hosts"], anchored_names=True),
        signals=tuple(signals),
    )


def _globs(globs: Iterable[str], anchored_names: bool = False) -> re.Pattern[str]:
    parts = []
    for glob in globs:
        out, i = [], 0
        while i < len(glob):
            if glob.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            elif glob.startswith("**", i):
                out.append(".*")
                i += 2
            elif glob[i] == "*":
                out.append("[^/]*" if not anchored_names else ".*")
                i += 1
            elif glob[i] == "?":
                out.append("[^/]")
                i += 1
            elif glob[i] == "[":
                end = glob.index("]", i)
                out.append(glob[i : end + 1])
                i = end + 1
            else:
                out.append(re.escape(glob[i]))
                i += 1
        parts.append("".join(out))
    return re.compile("^(?:" + "|".join(parts) + ")$", re.IGNORECASE)


# --- reviewing ------------------------------------------------------------------------------------------


def review_changes(changes: Sequence[CodeChange], rules: CodeRules | None = None) -> list[CodeFinding]:
    """Every signal in a set of changes. Checks taken away are counted over the whole set, so an auth check
    moved from one file to another (a refactor) is not reported as removed."""
    rules = rules or load_code_rules()
    findings: list[CodeFinding] = []
    for change in changes:
        findings.extend(_review_one(change, rules))
    for signal in rules.signals:
        if signal.removed_only is not None:
            findings.extend(_removed_checks(signal, changes, rules))
    return findings


def _review_one(change: CodeChange, rules: CodeRules) -> list[CodeFinding]:
    added = [line[:MAX_LINE] for line in change.added[:MAX_LINES]]
    removed = [line[:MAX_LINE] for line in change.removed[:MAX_LINES]]
    findings = []
    for signal in rules.signals:
        if not _applies(signal, change.path, rules):
            continue
        evidence = None
        if signal.added is not None:
            evidence = next((line.strip() for line in added if signal.added.search(line)), None)
        elif signal.kind is not None:
            evidence = _KINDS[signal.kind](added, removed, change, rules)
        if evidence:
            findings.append(_finding(signal, change, evidence, rules))
    return findings


def _applies(signal: Signal, path: str, rules: CodeRules) -> bool:
    if signal.files and not any(rules.paths[name].match(path) for name in signal.files):
        return False
    return not any(rules.paths[name].match(path) for name in signal.skip_files)


def _finding(signal: Signal, change: CodeChange, evidence: str, rules: CodeRules) -> CodeFinding:
    severity = signal.severity
    if signal.in_tests and rules.paths["tests"].match(change.path):
        severity = signal.in_tests
    return CodeFinding(signal.id, severity, signal.technique, signal.title, change.path, evidence[:300], change.call_id)


def _removed_checks(signal: Signal, changes: Sequence[CodeChange], rules: CodeRules) -> list[CodeFinding]:
    """Checks taken away, counted over the whole change set. Not counted: a check whose guarded function was
    deleted with it (nothing is exposed), and any removal when the set now applies a check to everything
    below it (per-route checks moved into middleware, a decorator turned into a mixin)."""
    assert signal.removed_only is not None
    pattern = signal.removed_only
    relevant = [c for c in changes if _applies(signal, c.path, rules)]
    added_text = "\n".join(line[:MAX_LINE] for c in relevant for line in c.added)
    if rules.lists["auth_blankets"].search(added_text):
        return []
    gone: dict[int, list[str]] = {}
    kept = 0
    for n, change in enumerate(relevant):
        removed = [line[:MAX_LINE] for line in change.removed]
        for i, line in enumerate(removed):
            if pattern.search(line) and not _guards_deleted_code(removed, i, added_text):
                gone.setdefault(n, []).append(line.strip())
        kept += sum(1 for line in change.added if pattern.search(line[:MAX_LINE]))
    if sum(map(len, gone.values())) <= kept:
        return []  # as many checks as before, maybe renamed or moved (a refactor)
    return [_finding(signal, relevant[n], "removed: " + " | ".join(lines[:3]), rules) for n, lines in gone.items()]


def _guards_deleted_code(removed: list[str], index: int, added_text: str) -> bool:
    """The check at ``removed[index]`` decorates or opens a function that is gone from the change's result."""
    for line in removed[index : index + 4]:
        header = _FUNC_HEADER.search(line) or _METHOD_HEADER.match(line)
        if header:
            return not re.search(rf"\b{re.escape(header.group(1))}\b", added_text)
    return False


# --- signals computed by code ----------------------------------------------------------------------------

_ASSIGN = re.compile(
    r"^\s*(?:(?:const|let|var|my|local|val|auto)\s+)?\$?([A-Za-z_]\w*)(?:\s*,\s*\w+)*\s*(?::=|=)(?!=)\s*(.+)$"
)


def _decode_exec(added: list[str], _removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    sinks, decoders = rules.lists["exec_sinks"], rules.lists["decoders"]
    decoded_names: set[str] = set()
    for line in added:
        if sinks.search(line) and decoders.search(line):
            return line.strip()
        uses_decoded = any(re.search(rf"\b{re.escape(n)}\b", line) for n in decoded_names)
        if uses_decoded and sinks.search(line):
            return line.strip()
        m = _ASSIGN.match(line)
        if m and (decoders.search(m.group(2)) or uses_decoded):
            decoded_names.add(m.group(1))  # decoded data, or a renaming of it: payload = blob.decode()
    return None


_URL_HOST = re.compile(r"(?:https?|wss?|ftp)://(?:[^@/\s'\"<>]+@)?([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
_QUOTED_HOST = re.compile(r"""["']((?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})["']""", re.IGNORECASE)


def _hosts(lines: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for line in lines:
        found.update(h.lower().strip("[]") for h in _URL_HOST.findall(line))
        found.update(ip for ip in _IPV4.findall(line) if all(int(p) < 256 for p in ip.split(".")))
    return found


def _new_hosts(added: list[str], removed: list[str], rules: CodeRules) -> list[str]:
    before = _hosts(removed)
    return sorted(h for h in _hosts(added) - before if not rules.benign_hosts.match(h) and not _is_version(h))


def _is_version(host: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+){1,3}", host)) and not _IPV4.fullmatch(host)


def _new_host(added: list[str], removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    hosts = _new_hosts(added, removed, rules)
    return f"new host(s): {', '.join(hosts[:5])}" if hosts else None


def _secret_egress(added: list[str], removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    """Secrets leave when a change sends something out and it gathers what no client needs to send: the whole
    environment, a credential file, key material (a private key, a wallet seed); or when it sends to a drop-box
    service; or when it puts an environment secret into a DNS name. One API key in its own service's auth
    header is how clients work, and is not this signal."""
    text = "\n".join(added)
    lists = rules.lists
    sends = [line for line in added if lists["net_sends"].search(line) or lists["dns_lookups"].search(line)]
    if not sends:
        return None
    drop_box = lists["drop_boxes"].search(text)
    if drop_box:
        return f"sends to {drop_box.group(0)}: {sends[0].strip()}"
    gathered = lists["bulk_environment"].search(text) or lists["credential_files"].search(text)
    # Key material counts inside the send itself (its statement may run over a few lines: headers, body).
    windows = "\n".join("\n".join(added[i : i + 5]) for i, line in enumerate(added) if line in sends)
    gathered = gathered or lists["key_material"].search(windows)
    if gathered:
        return f"gathers {gathered.group(0)!r} and sends: {sends[0].strip()}"
    lookups = [line for line in added if lists["dns_lookups"].search(line)]
    if lookups and lists["secret_sources"].search(text):
        return f"puts environment data into a DNS lookup: {lookups[0].strip()}"
    return None


_DGRAM_PROBE = re.compile(r"SOCK_DGRAM[\s\S]*getsockname|getsockname[\s\S]*SOCK_DGRAM")


def _literal_socket(added: list[str], removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    connects = [line for line in added if rules.lists["socket_connect"].search(line)]
    if not connects or _DGRAM_PROBE.search("\n".join(added)):
        return None  # a UDP "connect" to learn the local address sends nothing
    literal = [h for h in _new_hosts(added, removed, rules) if _IPV4.fullmatch(h)]
    literal += [
        h
        for line in connects
        for h in _QUOTED_HOST.findall(line) + _IPV4.findall(line)
        if not rules.benign_hosts.match(h.lower()) and not _is_version(h)
    ]
    if literal:
        return f"connects to {literal[0]}: {connects[0].strip()}"
    return None


# Kinds the secret rules find by a name (``SECRET_KEY = ...``, ``Authorization: ...``) rather than by a token's
# own shape: in code they count only when the value is a literal, not os.environ[...] or a variable.
_NAMED_KINDS = ("secret_value", "authorization", "password")


def _hardcoded_secret(added: list[str], _removed: list[str], _change: CodeChange, _rules: CodeRules) -> str | None:
    for line in added:
        if MARKER_PREFIX in line:
            return line.strip()  # redacted upstream: a secret was written here
        for hit in find_secrets(line, _REVIEW_KEY):
            literal = hit.start > 0 and line[hit.start - 1] in "\"'`"
            if literal or not any(kind in hit.kind for kind in _NAMED_KINDS):
                return f"{hit.kind} in: {line[: hit.start].strip()}[{hit.kind}]"
    return None


_FUNC_HEADER = re.compile(r"\b(?:def|function|func|fn|sub)\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)\s*\(")
_METHOD_HEADER = re.compile(r"^\s*(?:async\s+)?(?:public|private|protected|static|\s)*([A-Za-z_]\w*)\s*\([^)]*\)\s*\{")
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
_ALWAYS_TRUE_GUARD = re.compile(r"\bif\s*\(?\s*(?:True|true|1)\s*(?:or|\|\|)|(?:or|\|\|)\s*(?:True|true)\b\s*\)?\s*:?")


_COMPARE_LITERAL = re.compile(
    r"""(?:===?|!==?|\.equals\(|\.Equals\(|strpos\(|startsWith\(|startswith\(|StartsWith\(|includes\(|indexOf\("""
    r"""|\bin\b)[^\n]{0,120}["'][^"'\s]{4,}["']|["'][^"'\s]{4,}["'][^\n]{0,60}(?:===?|\.equals\(|\bin\b)"""
)


def _auth_bypass(added: list[str], _removed: list[str], change: CodeChange, rules: CodeRules) -> str | None:
    """An auth-named function that now succeeds first thing; a credential compared with a literal (a master
    password); a request input (header, cookie, user agent, parameter) compared with a literal that, when it
    matches, grants (a secret knock); or a guard made always-true."""
    auth_name, grants = rules.lists["auth_words"], rules.lists["grants"]
    lines = change.after.splitlines() if change.after is not None else added
    added_set = set(added)
    for i, line in enumerate(lines):
        header = _FUNC_HEADER.search(line) or _METHOD_HEADER.match(line)
        if header and auth_name.search(header.group(1)):
            body = _first_statement(lines, i + 1)
            if body is not None and _ALWAYS.match(body) and (body in added_set or line in added_set):
                return f"{line.strip()} -> {body.strip()}"
        knock = (
            line in added_set
            and _COMPARE_LITERAL.search(line)
            and rules.lists["request_inputs"].search(line)
            and any(grants.search(nxt) for nxt in lines[i : i + 4])
        )
        if knock:
            return line.strip()
    for line in added:
        if _MAGIC_COMPARE.search(line):
            return line.strip()
        if _ALWAYS_TRUE_GUARD.search(line) and (auth_name.search(line) or rules.lists["auth_checks"].search(line)):
            return line.strip()
    return None


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


# npm and composer lifecycle scripts: run by every install of the package.
_LIFECYCLE = re.compile(
    r"""["'](preinstall|install|postinstall|prepare|prepublish|preuninstall|postuninstall|prepack|postpack"""
    r"""|(?:pre|post)-(?:install|update|autoload)-(?:cmd|dump))["']\s*:\s*\[?\s*["'](.*)["']"""
)
_FETCHES = re.compile(
    r"\b(?:curl|wget|Invoke-WebRequest|iwr|Invoke-RestMethod|urlopen|urllib|requests\.|reqwest|ureq|http\.Get"
    r"|HttpClient|WebClient|file\(\s*DOWNLOAD|fetch\()|https?://",
    re.IGNORECASE,
)
_RUNS = re.compile(
    r"node\s+-e|python[\d.]*\s+-c|\b(?:ba)?sh\s+-c|[\"']-c[\"']|\|\s*(?:ba)?sh\b|\beval\b|powershell|os\.system|subprocess"
    r"|Command::new|Command\(|exec\(|execute_process|Runtime\.getRuntime|ProcessBuilder|system\(|`[^`]+`|%x\{",
    re.IGNORECASE,
)
_SETUP_HOOK = re.compile(r"\bcmdclass\b|class\s+\w+\(\s*(?:install|develop|egg_info|build_py|build_ext|sdist)\s*\)")


def _install_hook(added: list[str], _removed: list[str], change: CodeChange, _rules: CodeRules) -> str | None:
    """Code that runs on every install or build of the package: npm/composer lifecycle scripts, setup.py
    install commands, build.rs, Gradle/Maven/CMake build logic, native-extension configs. ``husky install`` in
    ``prepare`` or ``node-gyp rebuild`` is routine; a hook that fetches or runs inline code is not."""
    for line in added:
        m = _LIFECYCLE.search(line)
        if m and (_FETCHES.search(m.group(2)) or _RUNS.search(m.group(2))):
            return f"{m.group(1)} script: {m.group(2)[:200]}"
    if change.path.endswith(("package.json", "composer.json")):
        return None  # only their lifecycle scripts run at install time
    text = "\n".join(added)
    if _SETUP_HOOK.search(text) and (_RUNS.search(text) or _FETCHES.search(text)):
        return next(line.strip() for line in added if _SETUP_HOOK.search(line))
    fetch, run = _FETCHES.search(text), _RUNS.search(text)
    if fetch and run:
        return f"build-time code fetches ({fetch.group(0)}) and runs ({run.group(0)})"
    return None


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*(?:[<>=!~;@ ]|$)")
_JSON_DEP = re.compile(r"""^\s*"(@?[A-Za-z0-9][\w.\-/]*)"\s*:\s*"([^"]*)"\s*,?\s*$""")
_TOML_DEP = re.compile(
    r"""^\s*["']([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*(?:[<>=!~;@ ][^"']*)?["']\s*,?\s*$"""
)
_TOML_TABLE_DEP = re.compile(r"""^\s*([A-Za-z0-9][A-Za-z0-9_\-]*)\s*=\s*(?:["'{])""")
_GO_DEP = re.compile(r"^\s*(?:require\s+)?([a-z0-9.\-]+\.[a-z]{2,}/[\w.\-/]+)\s+v\d")
_NOT_DEPS = frozenset(
    {"name", "version", "description", "main", "license", "author", "type", "module", "private", "scripts",
     "requires-python", "readme", "homepage", "repository", "edition", "build-backend", "python", "test", "start",
     "build", "lint", "dev", "format", "packages", "include", "exclude", "keywords", "authors", "go"}
)  # fmt: skip


def _dependency_names(lines: Iterable[str], path: str) -> set[str]:
    names: set[str] = set()
    for line in lines:
        if line.lstrip().startswith(("#", "//", "-")) and not line.lstrip().startswith("-e"):
            continue
        if path.endswith(".json"):
            m = _JSON_DEP.match(line)
            if m and _looks_like_version(m.group(2)):
                names.add(m.group(1).lower())
        elif path.endswith(".txt"):
            m = _REQ_NAME.match(line)
            if m:
                names.add(m.group(1).lower())
        elif path.endswith(".mod"):
            m = _GO_DEP.match(line)
            if m:
                names.add(m.group(1))
        else:
            m = _TOML_DEP.match(line) or _TOML_TABLE_DEP.match(line) or _REQ_NAME.match(line.strip().strip("\"',"))
            if m:
                names.add(m.group(1).lower())
    return names - _NOT_DEPS


def _looks_like_version(spec: str) -> bool:
    return bool(re.match(r"^(?:[\^~<>=*]|\d|latest|next|workspace:|npm:|git|github:|https?:|file:|link:)", spec))


def _new_dependency(added: list[str], removed: list[str], change: CodeChange, _rules: CodeRules) -> str | None:
    new = sorted(_dependency_names(added, change.path) - _dependency_names(removed, change.path))
    return f"new: {', '.join(new[:8])}" if new else None


_B64_LITERAL = re.compile(r"""["'`]([A-Za-z0-9+/]{160,}={0,2})["'`]""")
_HEX_LITERAL = re.compile(r"""["'`]((?:[0-9a-fA-F]{2}){100,})["'`]""")
_ESCAPES = re.compile(r"(?:\\x[0-9a-fA-F]{2}){16,}|(?:\\u[0-9a-fA-F]{4}){12,}")
_CHR_CHAIN = re.compile(r"(?:\bchr\(\s*\d+\s*\)\s*\+\s*){3,}|(?:String\.fromCharCode\([^)]{20,}\))")
# A name cut into pieces so no search finds it: "a"."s"."s"."e"."r"."t", "".join(["cu", "rl", ...]),
# __import__("so"[::-1]), getattr(m, "sys" + "tem"), str_rot13(...).
_SPLIT_NAME = re.compile(
    r"""(?:["'][^"'\n]{1,4}["']\s*[.+]\s*){3,}["'][^"'\n]{1,4}["']"""
    r"""|join\(\s*\[\s*(?:["'][^"'\n]{1,8}["']\s*,\s*){3,}"""
    r"""|__import__\(\s*["'][^"']+["']\s*\[::-1\]|getattr\([^,]+,\s*["'][^"']*["']\s*\+"""
    r"""|\bstr_rot13\(|\brot13\b"""
)


def _obfuscated(added: list[str], _removed: list[str], _change: CodeChange, _rules: CodeRules) -> str | None:
    for line in added:
        if "data:" in line and ";base64," in line:
            continue  # an inline image or font
        m = _B64_LITERAL.search(line)
        if m and re.search(r"[a-z]", m.group(1)) and re.search(r"[A-Z]", m.group(1)) and re.search(r"\d", m.group(1)):
            return f"base64 literal of {len(m.group(1))} characters"
        m = _HEX_LITERAL.search(line)
        if m:
            return f"hex literal of {len(m.group(1))} characters"
        if _ESCAPES.search(line) or _CHR_CHAIN.search(line) or _SPLIT_NAME.search(line):
            return line.strip()[:200]
    return None


_KINDS = {
    "decode_exec": _decode_exec,
    "secret_egress": _secret_egress,
    "literal_socket": _literal_socket,
    "hardcoded_secret": _hardcoded_secret,
    "auth_bypass": _auth_bypass,
    "install_hook": _install_hook,
    "new_dependency": _new_dependency,
    "new_host": _new_host,
    "obfuscated": _obfuscated,
}
