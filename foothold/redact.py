"""Secret scanning and redaction, shared by the agent side and the collector.

Each secret found is replaced by ``[REDACTED:{kind}:fp={fingerprint}]``. The fingerprint is a keyed
HMAC-SHA256 (first 16 hex digits) so the same secret seen twice, or declared through
``foothold.instrumentation.credential``, correlates without the value ever leaving the process.

The rules are data (``foothold/detections/rules/secrets.toml``, RE2 syntax). Matching is linear in the input
whatever it holds: one pass of an RE2 Set over every rule's keywords (literals: its DFA stays small) says
which rules can match at all, and only those run, each also in linear time (RE2 falls back from its DFA to
an NFA rather than fail). Python's ``re`` backtracks: a 256 KiB ``eyJ…`` value took it 50 s. The scan works
on the UTF-8 bytes (what RE2 reads); hits report character positions.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import re2

FINGERPRINT_HEX_CHARS = 16
MARKER_PREFIX = "[REDACTED:"
_MARKER_PREFIX_BYTES = MARKER_PREFIX.encode()
# RE2's DFA memory budget per compiled program. The Set holds every rule; with too small a budget its DFA
# could give up on hostile input, and a Set that gives up reports no match.
_RE2_MAX_MEM = 64 << 20
_SECRET_GROUPS = ("secret", "dq", "sq", "bare")  # the first of these that matched holds the secret
# Read by path, not importlib.resources: that import alone costs the Claude Code hook ~10 ms per event.
RULES_FILE = Path(__file__).parent / "detections" / "rules" / "secrets.toml"


@dataclass(frozen=True, slots=True)
class SecretHit:
    """One secret found in a string: its kind, keyed fingerprint and position in the input."""

    kind: str
    fingerprint: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of secrets.toml."""

    number: int  # its position in the file, from 1 (error messages name it)
    kind: str
    regex: str
    checks: tuple[str, ...]
    keywords: tuple[str, ...]  # literals (case-insensitive), one of which every match contains
    screen: str | None = None  # a regex every match contains, for rules whose keywords are everywhere


@dataclass(frozen=True, slots=True)
class Program:
    """A rule's regex compiled by RE2, with the numbers of the groups the scan reads."""

    regex: Any  # re2 pattern over bytes
    secret_groups: tuple[int, ...]  # the groups that may hold the secret (_SECRET_GROUPS), first matched wins
    groups: int  # how many capturing groups the regex has
    name_group: int | None  # the group named `name`, if any
    screen: Any | None  # the rule's screen compiled (no captures), or None


def fingerprint(value: str | bytes, key: str | bytes) -> str:
    """Keyed fingerprint of a secret: first 16 hex digits of HMAC-SHA256(key, value)."""
    raw_key = key.encode() if isinstance(key, str) else key
    raw_value = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return hmac.new(raw_key, raw_value, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX_CHARS]


def marker(kind: str, value: str, key: str | bytes) -> str:
    return f"{MARKER_PREFIX}{kind}:fp={fingerprint(value, key)}]"


def shannon_entropy(value: str | bytes) -> float:
    """Bits per character; random tokens score above ~3.5, words and numbers well below."""
    if not value:
        return 0.0
    length = len(value)
    return -sum(n / length * math.log2(n / length) for n in Counter(value).values())


# Names whose value is a secret whatever it looks like, and names that need a random-looking value
# before we believe it (``max_tokens=1000`` and ``token_type: bearer`` are not secrets). These run on short
# names only (attribute and JSON keys, a flag's name), never on content.
_PASSWORD_NAMES = r"pass(?:word|wd|phrase)?|pwd"
_SECRET_NAMES = (
    r"secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth[_-]?key|client[_-]?secret"
    r"|credentials?|session[_-]?key|signing[_-]?key|encryption[_-]?key|^_?auth$|[_.-]auth$"
)
_NAME_SCAN_LIMIT = 256  # a "name" longer than this is content, not a key: it is scanned as text instead
_PASSWORD_NAME_RE = re.compile(rf"(?i)(?:{_PASSWORD_NAMES})")
_SECRET_NAME_RE = re.compile(rf"(?i)(?:{_PASSWORD_NAMES}|{_SECRET_NAMES})")
# Names whose value says where a secret is, not what it is (--password-stdin, token_file, PASSWORD_ENV).
_INDIRECT_NAME_RE = re.compile(r"(?i)[_.-](?:stdin|file|path|env|fd|cmd|command)$")
# $VAR, ${VAR:-default}, $(cmd), <your-key>, {{ template }}, ***, and the words people write instead of a value
_PLACEHOLDER_RE = re.compile(
    r"(?i)^(?:\$\{[^}]*\}?|\$[\w.]+|\$\(.*\)?|<[^>]*>|\{\{.*\}\}|\*+|x+|null|none|true|false|changeme|redacted)$"
)
_ENTROPY_MIN = 3.0
_SECRET_VALUE_MIN_LEN = 8
_PASSWORD_MIN_LEN = 4


def is_secret_name(name: str) -> bool:
    return len(name) <= _NAME_SCAN_LIMIT and _SECRET_NAME_RE.search(name) is not None


def _is_placeholder(value: str) -> bool:
    return len(value) <= _NAME_SCAN_LIMIT and _PLACEHOLDER_RE.match(value) is not None


def looks_secret_for(name: str, value: str) -> bool:
    """Whether ``value`` stored under ``name`` should be treated as a secret."""
    if value.startswith(MARKER_PREFIX) or _is_placeholder(value):
        return False
    if len(name) <= _NAME_SCAN_LIMIT and _INDIRECT_NAME_RE.search(name):
        return False
    if len(name) <= _NAME_SCAN_LIMIT and _PASSWORD_NAME_RE.search(name):
        return len(value) >= _PASSWORD_MIN_LEN
    return len(value) >= _SECRET_VALUE_MIN_LEN and shannon_entropy(value) >= _ENTROPY_MIN


# --- checks named in secrets.toml (each gets the whole input, the match and the secret's bytes) -------------

_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_TOKEN = _WORD | frozenset(b".~+/-$")  # `$` too: $DB_PASSWORD is a variable's use, not its value


def _word_start(data: bytes, start: int, _secret: bytes, _name: bytes | None) -> bool:
    return start == 0 or data[start - 1] not in _WORD


def _token_start(data: bytes, start: int, _secret: bytes, _name: bytes | None) -> bool:
    return start == 0 or data[start - 1] not in _TOKEN


def _entropy(_data: bytes, _start: int, secret: bytes, _name: bytes | None) -> bool:
    return not secret.startswith(_MARKER_PREFIX_BYTES) and shannon_entropy(secret) >= _ENTROPY_MIN


def _named(_data: bytes, _start: int, secret: bytes, name: bytes | None) -> bool:
    name_text = name.decode("utf-8", "replace") if name else "password"  # a tool's password flag has no name
    return looks_secret_for(name_text, secret.decode("utf-8", "replace"))


def _mixed(_data: bytes, _start: int, secret: bytes, _name: bytes | None) -> bool:
    return secret.upper() != secret and secret.lower() != secret and any(c in b"0123456789" for c in secret)


def _not_numeric(_data: bytes, _start: int, secret: bytes, _name: bytes | None) -> bool:
    return not (secret.isdigit() and len(secret) <= 6)


def _not_word(_data: bytes, _start: int, secret: bytes, _name: bytes | None) -> bool:
    word = secret.rstrip(b"=")
    return not (word.isalpha() and (word.islower() or word.isupper()))


CHECKS: dict[str, Callable[[bytes, int, bytes, bytes | None], bool]] = {
    "not_word": _not_word,
    "word_start": _word_start,
    "token_start": _token_start,
    "entropy": _entropy,
    "named": _named,
    "mixed": _mixed,
    "not_numeric": _not_numeric,
}


def _options() -> Any:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False  # a bad rule raises, naming the rule; nothing goes to stderr
    return options


def _match_only_options() -> Any:
    options = _options()
    options.never_capture = True  # only whether it matches is asked
    return options


def load_rules(text: str | None = None, *, compile_all: bool = False) -> tuple[Rule, ...]:
    """The rules of secrets.toml (or of ``text``); a bad field fails here, naming the rule. Regexes are compiled
    when a scan first needs them (a hook process pays for the few its input calls for), or all of them now
    with ``compile_all`` (the tests: a bad regex fails there, naming the rule)."""
    if text is None:
        text = RULES_FILE.read_text(encoding="utf-8")
    rules = []
    for number, raw in enumerate(tomllib.loads(text)["rule"], 1):
        name = f"secrets rule #{number} ({raw.get('kind')})"
        unknown = set(raw.get("checks", ())) - CHECKS.keys()
        if unknown:
            raise ValueError(f"{name}: unknown checks {sorted(unknown)}")
        keywords = tuple(raw.get("keywords", ()))
        if not keywords or not all(isinstance(k, str) and k for k in keywords):
            raise ValueError(f"{name}: needs keywords (non-empty literals)")
        screen = raw.get("screen")
        if screen is not None and not (isinstance(screen, str) and screen):
            raise ValueError(f"{name}: screen must be a non-empty regex")
        rule = Rule(number, raw["kind"], raw["regex"], tuple(raw.get("checks", ())), keywords, screen)
        if compile_all:
            compile_rule(rule)
        rules.append(rule)
    return tuple(rules)


def compile_rule(rule: Rule) -> Program:
    name = f"secrets rule #{rule.number} ({rule.kind})"
    try:
        regex = re2.compile(rule.regex.encode(), _options())
    except re2.error as exc:
        raise ValueError(f"{name}: not RE2 syntax: {exc}") from exc
    groups = {group.decode(): index for group, index in regex.groupindex.items()}
    secret_groups = tuple(groups[group] for group in _SECRET_GROUPS if group in groups)
    if not secret_groups:
        raise ValueError(f"{name}: no group named one of {_SECRET_GROUPS}")
    screen = None
    if rule.screen is not None:
        try:
            screen = re2.compile(rule.screen.encode(), _match_only_options())
        except re2.error as exc:
            raise ValueError(f"{name}: screen not RE2 syntax: {exc}") from exc
    return Program(regex, secret_groups, regex.groups, groups.get("name"), screen)


@dataclass(frozen=True, slots=True)
class _KeywordSet:
    matcher: Any  # RE2 Set, one case-insensitive literal per distinct keyword
    rules_of: tuple[tuple[int, ...], ...]  # keyword index -> indices of the rules that list it


def _keyword_set(rules: tuple[Rule, ...]) -> _KeywordSet:
    by_keyword: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        for keyword in rule.keywords:
            by_keyword.setdefault(keyword.casefold(), []).append(index)
    matcher = re2.Set.SearchSet(_options())
    for keyword in by_keyword:
        matcher.Add(b"(?i)" + re2.escape(keyword.encode()))
    matcher.Compile()
    return _KeywordSet(matcher, tuple(tuple(indices) for indices in by_keyword.values()))


@functools.cache
def rules() -> tuple[Rule, ...]:
    """The rules in force, read on first use: a process that never scans never parses the file."""
    return load_rules()


@functools.cache
def program(index: int) -> Program:
    """Rule ``index`` compiled, on the first scan that needs it."""
    return compile_rule(rules()[index])


@functools.cache
def _keywords() -> _KeywordSet:
    return _keyword_set(rules())


# --- one screen over many texts (the strings of a JSON value) -------------------------------------------------
# Texts joined by a newline are screened at once: if no rule's regex matches the joined text anywhere, no text
# has a secret, and each is spared its own keyword pass and regex calls (in a GenAI message list, a dozen small
# strings: per-call overhead, not scanning, was most of the cost). Sound because every text is a verbatim part
# of the joined one, and the only assertions RE2 has whose truth depends on bytes outside the match are the
# text edges (^ $ \A \z) and word boundaries (\b \B). A word boundary sees the same thing at a text's edge as
# beside the newline (neither is a word byte). The edges do not survive the join, so each rule is screened in
# a form where they become line edges: under (?m) ^ and $ also hold beside every newline, \A becomes ^ and \z
# becomes $. That form matches wherever the rule does in any one text, and maybe more: a wider screen only
# sends more values down the exact path, never fewer.
_JOIN = b"\n"
# A rule whose source could turn multi-line matching off again, or quotes text (\Q...\E, where \z is literal),
# gets no joined form: wherever its keywords occur, the joined screen gives up and the texts are scanned one
# by one.
_NO_JOINED_FORM = re.compile(r"\(\?[a-zA-Z]*-[a-zA-Z]*m|\\Q")


def joined_form(regex: str) -> str | None:
    """``regex`` (RE2 syntax) with text edges made line edges: it matches a newline-joined text wherever
    ``regex`` matches one of the texts joined. RE2 refuses \\z and \\A in a character class, so every one met
    outside a ``\\x`` escape pair is an anchor."""
    if _NO_JOINED_FORM.search(regex):
        return None
    out, i = ["(?m)"], 0
    while i < len(regex):
        pair = regex[i : i + 2]
        if pair[:1] == "\\":
            out.append({"\\z": "$", "\\A": "^"}.get(pair, pair))
            i += 2
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


@functools.cache
def _joined_programs(index: int) -> tuple[Any, ...] | None:
    """Rule ``index``'s joined forms compiled: its screen's if it has one (cheaper, tried first), then its
    regex's; None if one of them has no joined form."""
    rule = rules()[index]
    sources = [joined_form(source) for source in (rule.screen, rule.regex) if source is not None]
    if None in sources:
        return None
    return tuple(re2.compile(source.encode(), _match_only_options()) for source in sources if source is not None)


def _may_match_any(data: bytes) -> bool:
    """Whether some rule may find a secret in one of the texts joined (by ``_JOIN``) into ``data``: False only
    when no rule whose keywords occur matches the joined text (in its joined form) anywhere."""
    found_keywords = _keywords().matcher.Match(data)
    if not found_keywords:
        return False
    rules_of = _keywords().rules_of
    for index in sorted({index for keyword in found_keywords for index in rules_of[keyword]}):
        joined = _joined_programs(index)
        if joined is None or all(form.search(data) is not None for form in joined):
            return True
    return False


_MARKER_RE = re2.compile(rb"\[REDACTED:[a-z0-9_]+:fp=[0-9a-f]{16}\]")
_MARKER_FULL_RE = re.compile(r"\[REDACTED:[a-z0-9_]+:fp=[0-9a-f]{16}\]")


def is_marker(value: str) -> bool:
    return len(value) < 64 and _MARKER_FULL_RE.fullmatch(value) is not None


def _group_spans(match: Any, groups: int) -> list[tuple[int, int]]:
    """Byte spans of every group, (-1, -1) when one did not take part. The wrapper keeps them in ``_spans``;
    reading them there costs one attribute, the public ``span(i)`` a few Python calls per group."""
    spans = getattr(match, "_spans", None)
    return list(spans) if spans is not None else [match.span(i) for i in range(groups + 1)]


def _secret_span(rule: Rule, compiled: Program, data: bytes, match: Any) -> tuple[int, int, bytes] | None:
    """Where the secret is in the match (byte offsets), or None if one of the rule's checks rejects it."""
    spans = _group_spans(match, compiled.groups)
    for group in compiled.secret_groups:
        start, end = spans[group]
        if start >= 0:
            break
    else:
        return None
    if start == end:
        return None
    secret = data[start:end]
    name = None
    if compiled.name_group is not None and spans[compiled.name_group][0] >= 0:
        name = data[spans[compiled.name_group][0] : spans[compiled.name_group][1]]
    if not all(CHECKS[check](data, spans[0][0], secret, name) for check in rule.checks):
        return None
    return start, end, secret


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) overlaps one of ``spans`` (sorted, non-overlapping): only the neighbours can."""
    i = bisect.bisect_left(spans, (start, start))
    return (i > 0 and spans[i - 1][1] > start) or (i < len(spans) and spans[i][0] < end)


# Long texts come back: every model call resends the conversation so far in ``gen_ai.input.messages``, and
# agents re-read the same files. A text found clean is remembered by its SHA-256 digest (hashing costs a fraction
# of the scan: SHA-256 runs on the CPU's SHA instructions, ~2x BLAKE2b's speed on this machine's 4 KiB texts;
# the digests, not the texts, are kept, so the memory is bounded by the entry count):
# the rules are fixed for the process, so a clean verdict never goes stale. Texts with secrets are not kept.
_CLEAN_MIN_BYTES = 512
_CLEAN_ENTRIES = 16384
_clean_digests: dict[bytes, None] = {}


def _find(data: bytes) -> list[tuple[int, int, str, bytes]]:
    if len(data) < _CLEAN_MIN_BYTES:
        return _scan(data)
    digest = _digest(data)
    if digest in _clean_digests:
        return []
    found = _scan(data)
    if not found:
        _remember_clean(digest)
    return found


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _remember_clean(digest: bytes) -> None:
    if len(_clean_digests) >= _CLEAN_ENTRIES:
        _clean_digests.clear()  # a generation at a time: cheaper than an LRU, and still bounded
    _clean_digests[digest] = None


def _scan(data: bytes) -> list[tuple[int, int, str, bytes]]:
    """Non-overlapping (start, end, kind, secret) in ``data``, by position; on overlap the earlier rule wins.
    Linear in the input plus n log n in the matches: a value with 10^5 matches is no worse than one with 10."""
    keywords = _keywords()
    found_keywords = keywords.matcher.Match(data)
    if not found_keywords:
        return []
    matched = {index for keyword in found_keywords for index in keywords.rules_of[keyword]}
    in_force = rules()
    markers = [m.span() for m in _MARKER_RE.finditer(data)] if _MARKER_PREFIX_BYTES in data else []
    kept: list[tuple[int, int]] = []  # sorted by start
    found: dict[int, tuple[int, int, str, bytes]] = {}
    for priority in sorted(matched):
        rule, compiled = in_force[priority], program(priority)
        if compiled.screen is not None and compiled.screen.search(data) is None:
            continue
        for match in compiled.regex.finditer(data):
            span = _secret_span(rule, compiled, data, match)
            if span is None or _overlaps(markers, span[0], span[1]) or _overlaps(kept, span[0], span[1]):
                continue
            bisect.insort(kept, (span[0], span[1]))
            found[span[0]] = (span[0], span[1], rule.kind, span[2])
    return [found[start] for start, _ in kept]


def _char_offsets(data: bytes, offsets: list[int]) -> dict[int, int]:
    """Character offsets of sorted byte offsets into UTF-8 ``data``, in one pass over the text."""
    result: dict[int, int] = {}
    last_byte = last_char = 0
    for offset in sorted(set(offsets)):
        last_char += len(data[last_byte:offset].decode("utf-8", "surrogatepass"))
        last_byte = offset
        result[offset] = last_char
    return result


def find_secrets(text: str, key: str | bytes) -> list[SecretHit]:
    """Non-overlapping secrets in ``text`` in order of position; on overlap the earlier rule wins.

    Existing markers are never taken for secrets, so redacting twice (agent, then collector) is a no-op.
    """
    return redact_text(text, key)[1]


def redact_text(text: str, key: str | bytes) -> tuple[str, list[SecretHit]]:
    """``text`` with every secret replaced by its marker, and the hits (character positions in the input)."""
    data = text.encode("utf-8", "surrogatepass")
    found = _find(data)
    if not found:
        return text, []
    if len(data) == len(text):  # ASCII: byte and character offsets agree
        chars = {offset: offset for start, end, _, _ in found for offset in (start, end)}
    else:
        chars = _char_offsets(data, [offset for start, end, _, _ in found for offset in (start, end)])
    parts: list[bytes] = []
    hits: list[SecretHit] = []
    cursor = 0
    for start, end, kind, secret in found:
        fp = fingerprint(secret, key)
        parts.append(data[cursor:start])
        parts.append(f"{MARKER_PREFIX}{kind}:fp={fp}]".encode())
        hits.append(SecretHit(kind, fp, chars[start], chars[end]))
        cursor = end
    parts.append(data[cursor:])
    return b"".join(parts).decode("utf-8", "surrogatepass"), hits


def redact_value(obj: Any, key: str | bytes) -> Any:
    """A JSON-able copy of ``obj`` with secrets redacted: strings are scanned, values under secret-named
    keys are replaced whole, and anything not JSON-native is turned into its ``str`` and scanned."""
    if isinstance(obj, str):
        return redact_text(obj, key)[0]
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, dict):
        return {_redact_key(str(k), key): _redact_item(str(k), v, key) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [redact_value(item, key) for item in obj]
    if isinstance(obj, bytes | bytearray):
        return redact_text(bytes(obj).decode("utf-8", "replace"), key)[0]
    return redact_text(str(obj), key)[0]


def _redact_key(name: str, key: str | bytes) -> str:
    """Keys are content too (a map keyed by tokens); short ordinary names skip the scan."""
    return redact_text(name, key)[0] if len(name) > 16 else name


def _redact_item(name: str, value: Any, key: str | bytes) -> Any:
    if not isinstance(value, str):
        return redact_value(value, key)
    return redact_named(name, value, key)


def redact_named(name: str, value: str, key: str | bytes) -> str:
    """An attribute ``name = value``: tokens in the value are redacted by shape, and the whole value when the
    name says it is a secret (``db.password``, ``x-api-key``) and the value looks like one."""
    text, hits = redact_text(value, key)  # a recognised token keeps its kind (and fingerprint) by name
    if not hits and is_secret_name(name) and looks_secret_for(name, value) and not is_marker(value):
        return marker("secret_value", value, key)
    return text


def redact_content(value: str, key: str | bytes) -> str:
    """Text that may be JSON (GenAI messages, tool arguments): JSON stays valid JSON with its string values
    and secret-named fields redacted inside; anything else is scanned as text. Unchanged input comes back
    as the same string."""
    if value[:1] in ("{", "["):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict | list):
            if not _json_needs_redaction(parsed):
                return value  # the common case, found without building a redacted copy to compare
            redacted = redact_value(parsed, key)
            return value if redacted == parsed else orjson.dumps(redacted).decode()
    return redact_text(value, key)[0]


def _json_needs_redaction(obj: Any) -> bool:
    """Whether :func:`redact_value` would change parsed JSON ``obj``: a string (or a key it scans) holds a
    secret by shape, or a secret-named field holds a secret-looking string. The same tests it makes, without
    the copy; a hit sends the value down the full path, so the result is exactly :func:`redact_value`'s.

    The strings are screened together first (``_may_match_any``); only when that screen finds a rule that
    may match are they scanned one by one (:func:`_json_needs_redaction_by_walk`, which is exact)."""
    texts: list[str] = []
    if _named_field_needs_redaction(obj, texts):
        return True
    pending: list[bytes] = []
    digests: list[bytes] = []
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        if len(data) >= _CLEAN_MIN_BYTES:  # the clean-text memo of _find, kept: a history is scanned once
            digest = _digest(data)
            if digest in _clean_digests:
                continue
            digests.append(digest)
        pending.append(data)
    if pending and _may_match_any(_JOIN.join(pending)):
        return _json_needs_redaction_by_walk(obj)
    for digest in digests:  # each of these texts is proven clean: no rule matches it
        _remember_clean(digest)
    return False


def _named_field_needs_redaction(obj: Any, texts: list[str]) -> bool:
    """Whether a secret-named field of ``obj`` holds a secret-looking string; appends to ``texts`` every string
    :func:`_json_needs_redaction_by_walk` would scan (string values, and keys longer than 16 characters)."""
    if isinstance(obj, str):
        texts.append(obj)
    elif isinstance(obj, dict):
        for name, item in obj.items():
            if len(name) > 16:
                texts.append(name)
            if isinstance(item, str):
                texts.append(item)
                if _is_secret_name_cached(name) and looks_secret_for(name, item) and not is_marker(item):
                    return True
            elif _named_field_needs_redaction(item, texts):
                return True
    elif isinstance(obj, list):
        for item in obj:
            if _named_field_needs_redaction(item, texts):
                return True
    return False


def _json_needs_redaction_by_walk(obj: Any) -> bool:
    """:func:`_json_needs_redaction`, each string scanned on its own (every rule whose keywords it holds)."""
    if isinstance(obj, str):
        return bool(_find(obj.encode("utf-8", "surrogatepass")))
    if isinstance(obj, dict):
        for name, item in obj.items():
            if len(name) > 16 and _find(name.encode("utf-8", "surrogatepass")):  # as _redact_key scans it
                return True
            if isinstance(item, str):
                if _find(item.encode("utf-8", "surrogatepass")):
                    return True
                if _is_secret_name_cached(name) and looks_secret_for(name, item) and not is_marker(item):
                    return True
            elif _json_needs_redaction_by_walk(item):
                return True
        return False
    if isinstance(obj, list):
        return any(_json_needs_redaction_by_walk(item) for item in obj)
    return False  # numbers, booleans, null: never changed


# Field names repeat across every message and call: their verdict is worth keeping (bounded, names are short).
_is_secret_name_cached = functools.lru_cache(maxsize=4096)(is_secret_name)
