"""Credentials written into code or config as literals."""

from __future__ import annotations

import re

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals.rules import CodeRules
from foothold.redact import MARKER_PREFIX, find_secrets, shannon_entropy

_REVIEW_KEY = b"foothold-code-review"  # fingerprints here only say "a secret"; correlation uses the real key


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


def hardcoded_secret(added: list[str], _removed: list[str], change: CodeChange, _rules: CodeRules) -> str | None:
    text = "\n".join(added)
    config_file = bool(_CONFIG_FILES.search(change.path))
    for line in added:
        if MARKER_PREFIX in line:
            return line.strip()  # redacted upstream: a secret was written here
        m = _CONFIG_SECRET.search(line) if config_file else None
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
