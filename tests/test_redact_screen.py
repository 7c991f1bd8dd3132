"""The screens in front of the secret rules skip work, never a secret.

Two screens: a JSON value's strings are screened together, joined by newlines, each rule in its *joined form*
(text edges made line edges), and scanned one by one only when that finds something; and a rule whose
keywords occur almost everywhere (``discord_bot_token``: ``.``) has a ``screen`` regex, a part of its own.
Here the redaction with both is compared with the path without them (every string scanned on its own, by
every rule its keywords call for, which is the exact path the screens fall back to) over every rule's
planted secrets, near misses of each, look-alikes, prose, other scripts, and JSON message lists with the
secrets nested at every depth, as long keys, split across two strings, and under secret-named fields.
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foothold import redact
from tests.planted import LOOK_ALIKES, Planter

KEY = b"screen-test-key"
RULES = redact.rules()
_PROSE = (
    "the tests pass. run pytest -q and ask the user; the task is done. see docs/index.md, e.g. v1.2.3 and "
    "key points: token budget, password reset flow, the login page. Mr. Smith's notes.txt -- see above "
    "https://example.com/a/b?x=1 -u flag, net result; SK and sk are case variants. O'Reilly. N.B. M.Sc."
)


def _near_misses(secret: str) -> Iterator[str]:
    """Values one edit away from a secret: shorter, longer, a character out of its alphabet, case-flipped."""
    yield secret[:-1]
    yield secret[1:]
    yield secret + secret[-1]
    middle = len(secret) // 2
    yield secret[:middle] + "!" + secret[middle + 1 :]
    yield secret[:middle] + " " + secret[middle:]
    yield secret.swapcase()
    yield "x" + secret  # glued to a word: the word_start checks reject it


def _texts() -> list[str]:
    """Every planted secret in its text and on its own, in several surroundings, their near misses, the
    look-alikes, prose, and text in other scripts."""
    planted = Planter(seed=20261202).every()
    texts: list[str] = []
    for _kind, secret, text in planted.values():
        for value in {text, secret}:
            texts += [value, f"see {value} (end)", f"{value}\n", f"\n{value}", f'"{value}"', f"({value}).", f"a{value}"]
        texts += list(_near_misses(secret))
        texts += [text.replace(secret, miss) for miss in _near_misses(secret)]
    texts += list(LOOK_ALIKES)
    rng = random.Random(18)
    words = _PROSE.split()
    for _ in range(60):
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 80))))
    texts += ["Schlüssel → fertig ✓", "日本語のテキスト。", "emoji 🙂 and \u212a\u017f (Kelvin K, long s)", ""]
    marked = redact.redact_text(next(iter(planted.values()))[2], KEY)[0]
    texts += [marked, f"already {marked} redacted"]
    return texts


TEXTS = _texts()


def _nest(value: Any, depth: int) -> Any:
    """``value`` at ``depth`` levels inside a GenAI message list (parts inside messages inside lists)."""
    for level in range(depth):
        value = [value] if level % 2 else {"role": "user", "parts": [{"type": "text", "content": value}]}
    return value


def _json_values() -> list[Any]:
    """JSON objects built around the texts: nested at depths 0-6, as long keys, split across two strings, under
    secret-named and ordinary fields, beside clean siblings."""
    rng = random.Random(2026)
    values: list[Any] = []
    for i, text in enumerate(TEXTS):
        depth = i % 7
        values.append(_nest(text, depth))
        values.append([{"role": "system", "parts": [{"type": "text", "content": _PROSE}]}, _nest(text, depth)])
        values.append({f"long key holding {text}": 1, "short": text[:16]})
        cut = rng.randint(0, len(text))
        values.append(_nest([text[:cut], text[cut:]], depth))  # a secret split across strings: no secret
        values.append({"arguments": {"password": text, "api_key": text[:12], "token_type": text}})
        values.append({"content": text, "n": 3, "ok": True, "none": None, "f": 1.5})
    return values


def _redact_all(values: list[str]) -> list[tuple[str, list[redact.SecretHit]]]:
    out = []
    for value in values:
        redact._clean_digests.clear()  # each value's own scan: the memo is tested on its own elsewhere
        out.append(redact.redact_text(value, KEY))
    return out


def _redact_all_content(values: list[str]) -> list[str]:
    out = []
    for value in values:
        redact._clean_digests.clear()
        out.append(redact.redact_content(value, KEY))
    return out


def _encodings(values: list[Any]) -> list[str]:
    """Each value as orjson writes it and as Python's json writes it (\\uXXXX escapes, escaped slashes)."""
    return [orjson.dumps(v).decode() for v in values] + [json.dumps(v).replace("/", "\\/") for v in values]


def test_json_and_texts_match_the_path_without_screens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Old path against new over the whole corpus: the same output, character for character."""
    contents = _encodings(_json_values())
    with_screens = (_redact_all(TEXTS), _redact_all_content(contents))
    compiled = redact.program
    monkeypatch.setattr(redact, "program", lambda index: dataclasses.replace(compiled(index), screen=None))
    monkeypatch.setattr(redact, "_json_needs_redaction", redact._json_needs_redaction_by_walk)
    without = (_redact_all(TEXTS), _redact_all_content(contents))
    assert with_screens[0] == without[0]
    assert with_screens[1] == without[1]
    changed = sum(a != b for a, b in zip(contents, with_screens[1], strict=True))
    assert changed > len(contents) // 4  # the corpus holds secrets: the comparison is not of no-ops only


def test_json_verdicts_match_the_walk_string_by_string() -> None:
    for value in _json_values():
        redact._clean_digests.clear()
        screened = redact._json_needs_redaction(value)
        redact._clean_digests.clear()
        assert screened == redact._json_needs_redaction_by_walk(value), value


def test_a_clean_json_value_is_remembered_string_by_string() -> None:
    """The joined screen keeps the clean-text memo: a long string proven clean is not scanned again, in any
    later value; a long string with a secret never is remembered."""
    redact._clean_digests.clear()
    history = "the handler validates the request body before writing. " * 40
    assert redact.redact_content(orjson.dumps([history]).decode(), KEY) == orjson.dumps([history]).decode()
    assert redact._digest(history.encode()) in redact._clean_digests
    leaked = history + " export GITHUB_TOKEN=ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    assert "ghp_" not in redact.redact_content(orjson.dumps([history, leaked]).decode(), KEY)
    assert redact._digest(leaked.encode()) not in redact._clean_digests


@pytest.mark.parametrize(
    ("regex", "joined"),
    [
        (r"a\z", r"(?m)a$"),
        (r"\Aa|b", r"(?m)^a|b"),
        (r"(?:^|\s)x", r"(?m)(?:^|\s)x"),
        (r"a\\z", r"(?m)a\\z"),  # an escaped backslash, then the letter z
        (r"[\s\S]*?(?:END|\z)", r"(?m)[\s\S]*?(?:END|$)"),
        (r"(?-m:a$)", None),  # multi-line turned off again: no joined form
        (r"\Q\z\E", None),  # quoted text: \z is literal there
    ],
)
def test_joined_form_makes_text_edges_line_edges(regex: str, joined: str | None) -> None:
    assert redact.joined_form(regex) == joined


_WORDS = st.text(alphabet=string.ascii_letters + string.digits + " .:-_/\n\"'=é", max_size=40)


@pytest.mark.parametrize("index", range(len(RULES)), ids=[f"{i}-{rule.kind}" for i, rule in enumerate(RULES)])
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_joined_screen_never_skips_a_string_a_rule_would_match(index: int, data: st.DataObject) -> None:
    """Whatever a rule matches in one string (strings generated from its regex), the joined screen of that
    string among others reports a possible match, and the rule's screen, if it has one, matches the string."""
    rule = RULES[index]
    text = data.draw(st.from_regex(rule.regex.replace(r"\z", r"\Z")))
    raw = text.encode("utf-8", "surrogatepass")
    if redact.program(index).regex.search(raw) is None:
        return  # Python's re and RE2 differ on an edge (e.g. Unicode classes): nothing to screen
    if redact.program(index).screen is not None:
        assert redact.program(index).screen.search(raw) is not None, (rule.kind, text)
    before, after = data.draw(_WORDS), data.draw(_WORDS)
    joined = redact._JOIN.join(part.encode() for part in (before, text, after))
    assert redact._may_match_any(joined), (rule.kind, text)
    assert redact._may_match_any(raw), (rule.kind, text)
