"""Secret scanning and redaction for tool-call content (stdlib + orjson only: the agent side and the
collector both use it).

Each secret found is replaced by ``[REDACTED:{kind}:fp={fingerprint}]``. The fingerprint is a keyed
HMAC-SHA256 (first 16 hex digits) so the same secret seen twice, or declared through
``foothold.instrumentation.credential``, correlates without the value ever leaving the process.

The token rules follow the shapes published by gitleaks (https://github.com/gitleaks/gitleaks,
``config/gitleaks.toml``), written afresh and kept slightly more permissive on lengths, because a
missed secret costs more here than an over-redacted argument.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FINGERPRINT_HEX_CHARS = 16
MARKER_PREFIX = "[REDACTED:"


@dataclass(frozen=True, slots=True)
class SecretHit:
    """One secret found in a string: its kind, keyed fingerprint and position in the input."""

    kind: str
    fingerprint: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    group: str = "secret"  # the named group holding the secret itself; the rest of the match is kept
    accept: Callable[[str, re.Match[str]], bool] | None = None
    # Substrings one of which every match contains: without any, the (slow) pattern is not run. Matched
    # against text.casefold() when ``folded`` (for (?i) patterns; casefold maps ſ and K like re does, and
    # no folded needle holds an "i", which re's IGNORECASE also matches to a dotless ı).
    needles: tuple[str, ...] = ()
    folded: bool = False


def fingerprint(value: str | bytes, key: str | bytes) -> str:
    """Keyed fingerprint of a secret: first 16 hex digits of HMAC-SHA256(key, value)."""
    raw_key = key.encode() if isinstance(key, str) else key
    raw_value = value.encode() if isinstance(value, str) else value
    return hmac.new(raw_key, raw_value, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX_CHARS]


def marker(kind: str, value: str, key: str | bytes) -> str:
    return f"{MARKER_PREFIX}{kind}:fp={fingerprint(value, key)}]"


def shannon_entropy(value: str) -> float:
    """Bits per character; random tokens score above ~3.5, words and numbers well below."""
    if not value:
        return 0.0
    length = len(value)
    return -sum(n / length * math.log2(n / length) for n in Counter(value).values())


# Names whose value is a secret whatever it looks like, and names that need a random-looking value
# before we believe it (``max_tokens=1000`` and ``token_type: bearer`` are not secrets).
_PASSWORD_NAMES = r"pass(?:word|wd|phrase)?|pwd"
_SECRET_NAMES = (
    r"secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth[_-]?key|client[_-]?secret"
    r"|credentials?|session[_-]?key|signing[_-]?key|encryption[_-]?key"
)
# Every match of the two name lists above contains one of these (casefolded): the secret_value rule's screen.
_SECRET_NAME_NEEDLES = ("pass", "pwd", "secret", "token", "key", "credent")
_PASSWORD_NAME_RE = re.compile(rf"(?i)(?:{_PASSWORD_NAMES})")
_SECRET_NAME_RE = re.compile(rf"(?i)(?:{_PASSWORD_NAMES}|{_SECRET_NAMES})")
_PLACEHOLDER_RE = re.compile(r"(?i)^(?:\$\{?[\w.]+\}?|<[^>]*>|\*+|x+|null|none|true|false|changeme|redacted)$")
_ENTROPY_MIN = 3.0
_SECRET_VALUE_MIN_LEN = 8


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME_RE.search(name) is not None


def looks_secret_for(name: str, value: str) -> bool:
    """Whether ``value`` stored under ``name`` should be treated as a secret."""
    if value.startswith(MARKER_PREFIX) or _PLACEHOLDER_RE.match(value):
        return False
    if _PASSWORD_NAME_RE.search(name):
        return len(value) >= 4
    return len(value) >= _SECRET_VALUE_MIN_LEN and shannon_entropy(value) >= _ENTROPY_MIN


def _named_value(_text: str, match: re.Match[str]) -> bool:
    return looks_secret_for(match.group("name"), match.group("secret"))


_WORD_CHAR = re.compile(r"\w")


def _at_word_start(text: str, match: re.Match[str]) -> bool:
    return match.start() == 0 or _WORD_CHAR.match(text, match.start() - 1) is None


def _token(kind: str, pattern: str) -> _Rule:
    """A token rule starting at a word boundary. The boundary is checked after the match because a
    leading ``\\b`` stops ``re`` from skipping ahead to the token's literal prefix (~50x slower)."""
    return _Rule(kind, re.compile(pattern), accept=_at_word_start)


# Order matters: on overlapping matches the earlier rule wins (``sk-ant-`` before OpenAI's ``sk-``).
_RULES: tuple[_Rule, ...] = (
    _Rule(
        "private_key",
        re.compile(
            r"(?P<secret>-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----"
            r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----|\Z))"
        ),
    ),
    _token("aws_access_key_id", r"(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b"),
    _Rule(
        "aws_secret_access_key",
        re.compile(
            r"(?i)aws.{0,20}?(?:secret|access).{0,20}?['\"]?\s*[:=]\s*['\"]?(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
        needles=("aws",),
        folded=True,
    ),
    _token("github_token", r"(?P<secret>gh[pousr]_[A-Za-z0-9]{36,255})\b"),
    _token("github_token", r"(?P<secret>github_pat_[A-Za-z0-9_]{50,255})\b"),
    _token("gitlab_token", r"(?P<secret>gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_.\-]{20,})"),
    _Rule(
        "slack_webhook",
        re.compile(r"(?P<secret>https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,})"),
    ),
    _token("slack_token", r"(?P<secret>(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,})"),
    _token("anthropic_key", r"(?P<secret>sk-ant-[A-Za-z0-9_\-]{32,})"),
    _token("openai_key", r"(?P<secret>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,})"),
    _token("stripe_key", r"(?P<secret>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,99})\b"),
    _token("stripe_webhook_secret", r"(?P<secret>whsec_[A-Za-z0-9]{24,})\b"),
    _token("gcp_api_key", r"(?P<secret>AIza[A-Za-z0-9_\-]{35})(?![A-Za-z0-9_\-])"),
    _token("google_oauth_token", r"(?P<secret>ya29\.[A-Za-z0-9_\-]{30,})"),
    _token("huggingface_token", r"(?P<secret>(?:hf_|api_org_)[A-Za-z0-9]{34,})\b"),
    _token("groq_key", r"(?P<secret>gsk_[A-Za-z0-9]{48,})\b"),
    _token("xai_key", r"(?P<secret>xai-[A-Za-z0-9]{70,})\b"),
    _token("azure_key", r"(?:AccountKey|SharedAccessKey)=(?P<secret>[A-Za-z0-9+/]{40,}={0,2})"),
    _Rule(
        "azure_ad_client_secret",
        re.compile(
            r"(?<![A-Za-z0-9_~.\-])(?P<secret>[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})(?![A-Za-z0-9_~.\-])"
        ),
        needles=("Q~",),
    ),
    _token("npm_token", r"(?P<secret>npm_[A-Za-z0-9]{36,})\b"),
    _token("pypi_token", r"(?P<secret>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})"),
    _token("sendgrid_key", r"(?P<secret>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})(?![A-Za-z0-9_\-])"),
    _token("digitalocean_token", r"(?P<secret>do[opr]_v1_[a-f0-9]{64})\b"),
    _token("shopify_token", r"(?P<secret>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b"),
    _token("databricks_token", r"(?P<secret>dapi[a-f0-9]{32}(?:-[0-9])?)\b"),
    _token("vault_token", r"(?P<secret>hv[sb]\.[A-Za-z0-9_\-]{90,})"),
    _token("doppler_token", r"(?P<secret>dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,})\b"),
    _token("grafana_token", r"(?P<secret>glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})"),
    _token("age_secret_key", r"(?P<secret>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b"),
    _token("jwt", r"(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"),
    _Rule(
        "authorization",
        re.compile(
            r"(?i)\b(?:authorization|bearer|basic)\b\s*[:=]?\s*(?:bearer|basic|token|digest)?\s+(?P<secret>[A-Za-z0-9._~+/=\-]{8,})"
        ),
        accept=lambda _text, m: (
            not m.group("secret").startswith(MARKER_PREFIX) and shannon_entropy(m.group("secret")) >= _ENTROPY_MIN
        ),
        needles=("auth", "bearer", "bas"),
        folded=True,
    ),
    _Rule(
        "url_credentials",
        re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]+:(?P<secret>[^\s@/'\"]+)@"),
        needles=("://",),
    ),
    _Rule(
        "secret_value",
        re.compile(
            rf"""(?<![A-Za-z0-9_.\-])(?P<name>[A-Za-z0-9_.\-]{{0,40}}?(?:{_PASSWORD_NAMES}|{_SECRET_NAMES})[A-Za-z0-9_.\-]{{0,40}})["']?\s*[:=]\s*"""
            r"""(?:"(?P<dq>[^"\\]*(?:\\.[^"\\]*)*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"',;&}\]]+))""",
            re.IGNORECASE,
        ),
        group="value",
        needles=_SECRET_NAME_NEEDLES,
        folded=True,
    ),
)


def _secret_span(rule: _Rule, match: re.Match[str]) -> tuple[int, int, str] | None:
    """Where the secret is in the match, or None if the rule's extra check rejects it."""
    if rule.group == "value":  # name = value: the value is whichever quoting alternative matched
        for group in ("dq", "sq", "bare"):
            if match.group(group) is not None:
                value = match.group(group)
                if looks_secret_for(match.group("name"), value):
                    return match.start(group), match.end(group), value
                return None
        return None
    if rule.accept is not None and not rule.accept(match.string, match):
        return None
    return match.start(rule.group), match.end(rule.group), match.group(rule.group)


_MARKER_RE = re.compile(r"\[REDACTED:[a-z0-9_]+:fp=[0-9a-f]{16}\]")


def is_marker(value: str) -> bool:
    return _MARKER_RE.fullmatch(value) is not None


def find_secrets(text: str, key: str | bytes) -> list[SecretHit]:
    """Non-overlapping secrets in ``text`` in order of position; on overlap the earlier rule wins.

    Existing markers are never taken for secrets, so redacting twice (agent, then collector) is a no-op.
    """
    markers = [(m.start(), m.end()) for m in _MARKER_RE.finditer(text)] if MARKER_PREFIX in text else []
    candidates: list[tuple[int, int, int, str, str]] = []
    folded = None
    for priority, rule in enumerate(_RULES):
        if rule.needles:
            if rule.folded and folded is None:
                folded = text.casefold()
            haystack = folded if rule.folded else text
            if not any(needle in haystack for needle in rule.needles):
                continue
        for match in rule.pattern.finditer(text):
            span = _secret_span(rule, match)
            if (
                span is not None
                and span[1] > span[0]
                and not any(span[0] < end and span[1] > start for start, end in markers)
            ):
                candidates.append((priority, span[0], span[1], rule.kind, span[2]))
    kept: list[tuple[int, int, int, str, str]] = []
    for cand in sorted(candidates):
        if all(cand[2] <= k[1] or cand[1] >= k[2] for k in kept):
            kept.append(cand)
    return [
        SecretHit(kind, fingerprint(value, key), start, end)
        for _, start, end, kind, value in sorted(kept, key=lambda c: c[1])
    ]


def redact_text(text: str, key: str | bytes) -> tuple[str, list[SecretHit]]:
    """``text`` with every secret replaced by its marker, and the hits (positions in the input)."""
    hits = find_secrets(text, key)
    if not hits:
        return text, hits
    parts: list[str] = []
    cursor = 0
    for hit in hits:
        parts.append(text[cursor : hit.start])
        parts.append(f"{MARKER_PREFIX}{hit.kind}:fp={hit.fingerprint}]")
        cursor = hit.end
    parts.append(text[cursor:])
    return "".join(parts), hits


def redact_value(obj: Any, key: str | bytes) -> Any:
    """A JSON-able copy of ``obj`` with secrets redacted: strings are scanned, values under secret-named
    keys are replaced whole, and anything not JSON-native is turned into its ``str`` and scanned."""
    if isinstance(obj, str):
        return redact_text(obj, key)[0]
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, dict):
        return {str(k): _redact_item(str(k), v, key) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [redact_value(item, key) for item in obj]
    if isinstance(obj, bytes | bytearray):
        return redact_text(bytes(obj).decode("utf-8", "replace"), key)[0]
    return redact_text(str(obj), key)[0]


def _redact_item(name: str, value: Any, key: str | bytes) -> Any:
    if not isinstance(value, str):
        return redact_value(value, key)
    text, hits = redact_text(value, key)  # a recognised token keeps its kind (and fingerprint) by name
    if not hits and is_secret_name(name) and looks_secret_for(name, value) and not is_marker(value):
        return marker("secret_value", value, key)
    return text
