"""Backdoor signals in code an agent wrote, judged by what the code does (rules/code.yaml).

Persistence rules judge *where* a write lands; these judge *what* a write to ordinary source does: decode then
execute, a shell handed to a socket, secrets sent out, an auth check taken away, code run at install time.
Each signal names an effect and its regexes describe it in several languages, so it holds for code nobody
wrote a test for. Every regex sees at most MAX_LINE characters of a line: bounded time on hostile input.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from foothold.detections.code_changes import CodeChange
from foothold.redact import MARKER_PREFIX, find_secrets, shannon_entropy

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
    unless: re.Pattern[str] | None
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
                unless=expand(raw["unless"]) if "unless" in raw else None,
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
        if signal.kind == "install_hook":
            findings.extend(_scripts_run_at_install(signal, changes, rules))
    return findings


def _scripts_run_at_install(signal: Signal, changes: Sequence[CodeChange], rules: CodeRules) -> list[CodeFinding]:
    """A lifecycle script added in a manifest that runs a file the same change set writes, when that file
    fetches or runs code: the install hook is the pair, not either half."""
    findings = []
    for manifest in changes:
        for script in lifecycle_scripts(manifest):
            for change in changes:
                text = "\n".join(change.added)
                if change.path.endswith(script) and (_FETCHES.search(text) and _RUNS.search(text)):
                    evidence = f"install script runs {change.path}, which fetches and runs code"
                    findings.append(_finding(signal, manifest, evidence, rules))
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
            evidence = _added_match(signal, added, change, rules)
        if not evidence and signal.kind is not None:
            evidence = _KINDS[signal.kind](added, removed, change, rules)
        if evidence:
            findings.append(_finding(signal, change, evidence, rules))
    return findings


_OWNER = re.compile(r"\s*(?:export\s+)?(?:public\s+|private\s+)?(?:class|def|function|func|module)\b")


def _added_match(signal: Signal, added: list[str], change: CodeChange, rules: CodeRules) -> str | None:
    """The first added line the signal's regex matches, unless the lines around it (or the file's path) match
    its ``unless`` pattern, e.g. an auth opt-out on a login or health endpoint."""
    assert signal.added is not None
    context = change.after.splitlines() if change.after is not None else added
    for line in added:
        if not signal.added.search(line):
            continue
        if signal.unless is not None:
            at = context.index(line) if line in context else 0
            owner = next((c for c in reversed(context[:at]) if _OWNER.match(c)), "")  # the class or def it is in
            around = "\n".join([owner, *context[at : at + 3]])  # ... and what it annotates
            if signal.unless.search(around) or signal.unless.search(change.path):
                continue
        return line.strip()
    return None


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

# An assignment in most languages: optional modifiers and a type, a name (maybe indexed), then = or :=.
_ASSIGN = re.compile(
    r"^\s*(?:(?:final|const|let|var|my|local|val|auto|static|private|public|readonly)\s+)*"
    r"(?:[A-Za-z_][\w.<>\[\]?]*\s+)?\$?([A-Za-z_]\w*)(?:\[[^\]]*\])?(?:\s*,\s*\w+)*\s*(?::=|=)(?!=)\s*(.+)$"
)
# Writes that carry data into a file (its path joins the data: running that file runs the data).
_WRITES = re.compile(
    r"WriteFile|write_bytes|write_text|writeFileSync|writeFile|createWriteStream|fwrite|file_put_contents"
    r"|File\.write|Files\.write|open\([^)]*[\"'][wa]b?[\"']"
)
_SINK_WINDOW = 3  # a call's arguments may run over a few lines


def _decode_exec(added: list[str], _removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    """Data that was encoded, or fetched from the network, reaches something that runs it: in one statement,
    through names assigned from it (renamings included), or through a file it was written to."""
    sinks, decoders = rules.lists["exec_sinks"], rules.lists["decoders"]
    fetches = re.compile(rules.lists["net_sends"].pattern + "|" + rules.lists["socket_reads"].pattern)
    tainted: set[str] = set()
    for i, line in enumerate(added):
        window = "\n".join(added[i : i + _SINK_WINDOW])
        if sinks.search(line) and decoders.search(window):
            return line.strip()
        uses_tainted = any(re.search(rf"\b{re.escape(n)}\b", line) for n in tainted)
        if uses_tainted and sinks.search(line):
            return line.strip()
        m = _ASSIGN.match(line)
        if m and (decoders.search(m.group(2)) or fetches.search(m.group(2)) or uses_tainted):
            tainted.add(m.group(1))
        if uses_tainted and _WRITES.search(line):
            tainted.update(re.findall(r"\b[A-Za-z_]\w*\b", line))  # the file now holds the data
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


# Environment variables named as secrets; a client sends its own one key, a harvester sends several.
_SECRET_ENV = re.compile(
    r"(?:process\.env|os\.environ|getenv|Getenv|ENV|env::var|System\.getenv|\$\{?)\W{0,4}"
    r"(\w*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|CREDENTIAL)\w*)"
)


_ENCODES = re.compile(r"base64_encode|btoa\(|b64encode|toString\(\s*['\"]base64|Base64\.\w*encode|bin2hex", re.I)
_AUTH_HEADER = re.compile(r"Authorization|Basic\s|Bearer\s|auth\s*=\s*\(", re.I)


def _secret_egress(added: list[str], removed: list[str], change: CodeChange, rules: CodeRules) -> str | None:
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
    context = change.after if change.after is not None else text  # a key path may sit in the signature
    gathered = lists["bulk_environment"].search(text) or lists["credential_files"].search(context)
    # Key material counts inside the send itself (its statement may run over a few lines: headers, body).
    windows = "\n".join("\n".join(added[i : i + 5]) for i, line in enumerate(added) if line in sends)
    gathered = gathered or lists["key_material"].search(windows)
    if gathered:
        return f"gathers {gathered.group(0)!r} and sends: {sends[0].strip()}"
    named = set(_SECRET_ENV.findall(windows))
    if len(named) >= 2:
        return f"sends {', '.join(sorted(named)[:4])} in one request: {sends[0].strip()}"
    if named and (_IPV4.search(windows) or (_ENCODES.search(windows) and not _AUTH_HEADER.search(windows))):
        return f"sends {next(iter(named))} to a bare address or encoded in a request: {sends[0].strip()}"
    lookups = [line for line in added if lists["dns_lookups"].search(line)]
    if lookups and lists["secret_sources"].search(text):
        return f"puts environment data into a DNS lookup: {lookups[0].strip()}"
    return None


_IP_TUPLE = re.compile(r"\{\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\}")
_DGRAM_PROBE = re.compile(r"SOCK_DGRAM[\s\S]*getsockname|getsockname[\s\S]*SOCK_DGRAM")


def _literal_socket(added: list[str], removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    connects = [line for line in added if rules.lists["socket_connect"].search(line)]
    if not connects or _DGRAM_PROBE.search("\n".join(added)):
        return None  # a UDP "connect" to learn the local address sends nothing
    literal = [h for h in _new_hosts(added, removed, rules) if _IPV4.fullmatch(h)]
    literal += [".".join(m) for line in connects for m in _IP_TUPLE.findall(line)]
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


_PLACEHOLDER = re.compile(
    r"test|dev|example|sample|dummy|fake|change.?me|placeholder|your|xxx|localhost|postgres|password|secret|not.?used"
    r"|\$\{|\{\{|<[^>]+>|\*\*\*",
    re.I,
)
_LOCAL_CONFIG = re.compile(
    r"(?:^|/)(?:[^/]*[._-])?(?:dev|development|test|testing|local|ci|example|sample)[._-][^/]*$", re.I
)


def _is_placeholder(value: str, change_path: str) -> bool:
    """A value that documents where a secret goes (``change-me``, ``${DB_PASSWORD}``), or a throwaway one in a
    development or test config (``postgres``/``postgres`` on localhost): not a credential anyone can abuse."""
    return bool(_PLACEHOLDER.search(value)) or (bool(_LOCAL_CONFIG.search(change_path)) and len(set(value)) < 12)


def _looks_generated(value: str) -> bool:
    """A password someone generated mixes character classes; a reference (``notifier-slack``) does not."""
    classes = sum(bool(re.search(c, value)) for c in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    return classes >= 3 and shannon_entropy(value) >= 3.0


# Unquoted secrets in config files (properties, env, ini, YAML): ``password=Xq7!vR2#...``.
_CONFIG_SECRET = re.compile(
    r"(?i)(?:password|passwd|secret|token|api_?key|access_?key)[\w.\-]*\s*[:=]\s*([^\s\"']{8,})\s*$"
)
_CONFIG_FILES = re.compile(r"\.(?:properties|env|ini|cfg|conf|ya?ml|toml)$|(?:^|/)\.env[^/]*$", re.I)


_PUBLIC_CLIENT_CONFIG = re.compile(r"initializeApp\(|firebaseConfig|authDomain|maps\.googleapis\.com/maps/api/js")


def _hardcoded_secret(added: list[str], _removed: list[str], change: CodeChange, _rules: CodeRules) -> str | None:
    text = "\n".join(added)
    for line in added:
        if MARKER_PREFIX in line:
            return line.strip()  # redacted upstream: a secret was written here
        m = _CONFIG_SECRET.search(line) if _CONFIG_FILES.search(change.path) else None
        if m and not _is_placeholder(m.group(1), change.path) and _looks_generated(m.group(1)):
            return f"{line[: m.start(1)].strip()}[value]"
        for hit in find_secrets(line, _REVIEW_KEY):
            if (hit.kind == "gcp_api_key" or "apiKey" in line) and _PUBLIC_CLIENT_CONFIG.search(text):
                continue  # a web app's Firebase/Maps key identifies the project; it is public by design
            if _is_placeholder(line[hit.start : hit.end], change_path=change.path):
                continue
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


def _auth_bypass(added: list[str], _removed: list[str], change: CodeChange, rules: CodeRules) -> str | None:
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
        header = _FUNC_HEADER.search(line) or _METHOD_HEADER.match(line)
        if header and auth_name.search(header.group(1)):
            body = _first_statement(lines, i + 1)
            if body is not None and _ALWAYS.match(body) and (body in added_set or line in added_set):
                return f"{line.strip()} -> {body.strip()}"
        if line not in added_set:
            continue
        grants_next = any(grants.search(nxt) for nxt in lines[i : i + 4])
        if grants_next and _COMPARE_LITERAL.search(line) and rules.lists["request_inputs"].search(line):
            return line.strip()  # a secret knock
        switch = re.match(r"\s*(?:if|elif|else\s+if|unless)\b", line) and (
            _FOREIGN_SWITCH.search(line) or (_COMPARE_LITERAL.search(line) and not _ROLE_ATTRIBUTE.search(line))
        )
        if switch and grants_next and (in_auth[i] or auth_file):
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


def _in_auth_function(lines: list[str], auth_name: re.Pattern[str]) -> list[bool]:
    """For each line, whether the nearest function header above it has an auth-like name."""
    inside, out = False, []
    for line in lines:
        header = _FUNC_HEADER.search(line) or _METHOD_HEADER.match(line)
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


# npm and composer lifecycle scripts: run by every install of the package.
_LIFECYCLE = re.compile(
    r"""["'](preinstall|install|postinstall|prepare|prepublish|preuninstall|postuninstall|prepack|postpack"""
    r"""|(?:pre|post)-(?:install|update|autoload)-(?:cmd|dump))["']\s*:\s*\[?\s*["'](.*)["']"""
)
_LIFECYCLE_KEY = re.compile(
    r"""["']((?:pre|post)?install|prepare|(?:pre|post)-(?:install|update|autoload)-(?:cmd|dump))["']\s*:\s*(\[)\s*$"""
)
_FETCHES = re.compile(
    r"\b(?:curl|wget|Invoke-WebRequest|iwr|Invoke-RestMethod|urlopen|urllib|requests\.|reqwest|ureq|http\.Get"
    r"|HttpClient|WebClient|file\(\s*DOWNLOAD|fetch\()|https?://",
    re.IGNORECASE,
)
_RUNS = re.compile(
    r"node\s+-e|python[\d.]*\s+-c|\b(?:ba)?sh\s+-c|[\"']-c[\"']|\|\s*(?:ba)?sh\b|\beval\b|powershell|os\.system|subprocess"
    r"|Command::new|Command\(|exec\(|execSync|execFile|spawn\(|child_process|execute_process|Runtime\.getRuntime"
    r"|ProcessBuilder|system\(|`[^`]+`|%x\{",
    re.IGNORECASE,
)
_SETUP_HOOK = re.compile(r"\bcmdclass\b|class\s+\w+\(\s*(?:install|develop|egg_info|build_py|build_ext|sdist)\s*\)")


def _install_hook(added: list[str], _removed: list[str], change: CodeChange, _rules: CodeRules) -> str | None:
    """Code that runs on every install or build of the package: npm/composer lifecycle scripts, setup.py
    install commands, build.rs, Gradle/Maven/CMake build logic, native-extension configs. ``husky install`` in
    ``prepare`` or ``node-gyp rebuild`` is routine; a hook that fetches or runs inline code is not."""
    for i, line in enumerate(added):
        m = _LIFECYCLE.search(line) or _LIFECYCLE_KEY.search(line)
        if m:
            script = "\n".join([m.group(m.lastindex or 1)] + added[i + 1 : i + 6])  # arrays run over lines
            if _FETCHES.search(script) or _RUNS.search(script):
                return f"{m.group(1)} script: {script.strip()[:200]}"
    if change.path.endswith(("package.json", "composer.json")):
        return None  # only their lifecycle scripts run at install time
    if change.path.endswith("Makefile") and not _in_install_target(added, change):
        return None  # `make install` runs at install time; a dev target that bootstraps a tool does not
    text = "\n".join(added)
    if _SETUP_HOOK.search(text) and (_RUNS.search(text) or _FETCHES.search(text)):
        return next(line.strip() for line in added if _SETUP_HOOK.search(line))
    fetch, run = _FETCHES.search(text), _RUNS.search(text)
    if fetch and run:
        return f"build-time code fetches ({fetch.group(0)}) and runs ({run.group(0)})"
    return None


def _in_install_target(added: list[str], change: CodeChange) -> bool:
    """Whether an added Makefile line sits in the ``install`` target (the one packagers and users run)."""
    lines = change.after.splitlines() if change.after is not None else added
    target = ""
    for line in lines:
        m = re.match(r"^([\w.\-]+)\s*:(?!=)", line)
        if m:
            target = m.group(1)
        if line in added and target == "install" and line.startswith("\t"):
            return True
    return False


def lifecycle_scripts(change: CodeChange) -> list[str]:
    """Local files a manifest's added install-time scripts run (``node ./scripts/pre.js``)."""
    files = []
    for line in change.added:
        m = _LIFECYCLE.search(line) or _LIFECYCLE_KEY.search(line)
        if m:
            files += re.findall(r"(?:\./)?([\w.\-/]+\.(?:c?js|mjs|ts|sh|py|php|rb|ps1))\b", line)
    return files


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
    r"""|\[\s*(?:["'][^"'\n]{1,3}["']\s*,\s*){3,}["'][^"'\n]{1,3}["']\s*\]\s*\.(?:reverse|join)"""
    r"""|["'][^"'\n]{8,}["']\s*\.split\(\s*["']{2}\s*\)\s*\.reverse\(\)"""
)


_INT_RUN = re.compile(r"(?:\b(?:0x[0-9a-fA-F]{1,2}|\d{1,3})\b\s*[, ]\s*(?:\(char\)\s*)?){16,}")
# A decoder applied straight to a literal: a constant nobody needed to encode, unless to hide it.
_DECODED_LITERAL = re.compile(
    r"""(?:FromBase64String|b64decode|atob|decode64|base64_decode|DecodeString|fromhex|unhexlify|hex2bin|getDecoder\(\)\.decode)"""
    r"""\(\s*b?["'][A-Za-z0-9+/=]{8,}["'](?:\s*\+\s*["'][A-Za-z0-9+/=]+["'])*"""
)
_CHAR_CASTS = re.compile(r"(?:\(char\)\s*\d+\s*,\s*){4,}")
_LITERAL_ASSIGN = re.compile(r"""^\s*(?:\w+\s+)*\$?([A-Za-z_]\w*)\s*[:=]=?\s*["'`][^"'`]{16,}["'`]""")


def _decodes_to_text(call: str) -> bool:
    """The literal(s) a decoder is given decode to readable text (a URL, a command), not to binary data such as
    an embedded image: hiding text is what encoding a constant is for."""
    encoded = "".join(re.findall(r"""["']([A-Za-z0-9+/=]+)["']""", call))
    for decode in (lambda s: base64.b64decode(s + "=" * (-len(s) % 4)), bytes.fromhex):
        try:
            raw = decode(encoded)
        except ValueError:
            continue
        if raw and sum(32 <= b <= 126 or b in (9, 10, 13) for b in raw) >= 0.9 * len(raw):
            return True
    return False


def _printable_run(line: str, xored: bool) -> bool:
    """A run of byte values that spells printable text, or that the change XORs: text hidden as numbers."""
    m = _INT_RUN.search(line)
    if not m:
        return False
    numbers = [int(n, 0) for n in re.findall(r"0x[0-9a-fA-F]+|\d+", m.group(0))]
    return xored or sum(32 <= n <= 126 for n in numbers) >= 0.8 * len(numbers)


def _obfuscated(added: list[str], _removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    """Text hidden from a reader: long encoded literals, escapes, characters as numbers, names split into
    pieces, or a literal that is only readable once decoded and is then used as a destination or command."""
    literals = {m.group(1) for line in added if (m := _LITERAL_ASSIGN.match(line))}
    decoders, uses = rules.lists["decoders"], rules.lists["net_sends"]
    xored = bool(re.search(r"\^\s*\w+", "\n".join(added)))
    for line in added:
        if decoders.search(line) and (uses.search(line) or rules.lists["exec_sinks"].search(line)):
            hidden = [name for name in literals if re.search(rf"\b{re.escape(name)}\b", line)]
            if hidden or re.search(r"""["'`][^"'`]{16,}["'`]""", line):
                return f"decoded literal used as a destination or command: {line.strip()[:200]}"
        joined = line + " ".join(s.strip() for s in added[added.index(line) + 1 : added.index(line) + 2])
        m = _DECODED_LITERAL.search(joined)
        if m and _decodes_to_text(m.group(0)):
            return f"encoded literal decoded in code: {joined.strip()[:200]}"
        if _printable_run(line, xored) or _CHAR_CASTS.search(line):
            return f"characters as numbers: {line.strip()[:120]}"
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
