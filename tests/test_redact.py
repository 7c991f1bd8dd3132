"""Secret redaction: every supported kind is found, replaced by a keyed marker, and leaves no trace."""

from __future__ import annotations

import random
import string

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foothold import redact
from foothold.redact import fingerprint, redact_content, redact_text, redact_value
from tests.planted import LOOK_ALIKES, Planter

KEY = b"test-deployment-key"
_rng = random.Random(20261122)
_ALNUM = string.ascii_letters + string.digits
_B64, _URLSAFE, _HEX = _ALNUM + "/+", _ALNUM + "_-", "0123456789abcdef"


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


_PLANTER = Planter()


def planted_secrets() -> dict[str, tuple[str, str]]:
    return _PLANTER.standalone()


def every_planted() -> dict[str, tuple[str, str, str]]:
    """Every supported kind: name -> (kind, secret value, text holding it)."""
    return _PLANTER.every()


def test_every_rule_has_a_planted_secret_and_there_are_sixty_kinds():
    kinds = {kind for kind, _, _ in every_planted().values()}
    assert kinds == {rule.kind for rule in redact.rules()}
    assert len(kinds) >= 60


@pytest.mark.parametrize("name", sorted(every_planted()))
def test_each_kind_is_redacted_with_its_fingerprint(name: str):
    kind, secret, text = every_planted()[name]
    out, hits = redact_text(f"config: {text} (end)", KEY)
    assert secret not in out
    assert [h.kind for h in hits] == [kind]
    assert f"[REDACTED:{kind}:fp={fingerprint(secret, KEY)}]" in out
    assert out.endswith(" (end)")


def test_gcp_service_account_json_loses_its_key():
    _, private_key = planted_secrets()["gcp_service_account"]
    account = {
        "type": "service_account",
        "project_id": "demo",
        "private_key_id": _rand(40, "0123456789abcdef"),
        "private_key": private_key + "\n",  # as Google's key files have it
        "client_email": "agent@demo.iam.gserviceaccount.com",
    }
    out = redact_value(account, KEY)
    assert out["private_key"] == f"[REDACTED:private_key:fp={fingerprint(private_key, KEY)}]\n"
    assert account["private_key_id"] not in str(out)
    assert out["client_email"] == account["client_email"]
    assert "BEGIN PRIVATE KEY" not in redact_text(str(account), KEY)[0]  # also as escaped JSON-ish text


def test_headers_and_url_credentials_keep_their_shape():
    token, password = _rand(40), _rand(14)
    out, _ = redact_text(f"curl -H 'Authorization: Bearer {token}' https://bob:{password}@db.example.com/x", KEY)
    assert token not in out and password not in out
    assert "Authorization: Bearer [REDACTED:authorization:" in out
    assert "https://bob:[REDACTED:url_credentials:" in out and "@db.example.com/x" in out
    basic = "dXNlcjpzM2NyM3QtcGFzc3dvcmQ="
    assert basic not in redact_text(f"Authorization: Basic {basic}", KEY)[0]


def test_secret_named_keys_need_secret_looking_values():
    value = _rand(32)
    text = f'{{"password": "hunter2", "api_key": "{value}", "max_tokens": 1000, "token_type": "bearer"}}'
    out, hits = redact_text(text, KEY)
    assert "hunter2" not in out and value not in out
    assert '"max_tokens": 1000' in out and '"token_type": "bearer"' in out
    assert len(hits) == 2
    structured = redact_value({"DB_PASSWORD": "pw-1234", "token_count": "12", "nested": [{"secret": value}]}, KEY)
    assert structured["token_count"] == "12"
    assert "pw-1234" not in str(structured) and value not in str(structured)


def test_known_token_under_secret_name_keeps_its_kind_and_fingerprint():
    _, token = planted_secrets()["github_classic"]
    out = redact_value({"token": token}, KEY)
    assert out == {"token": f"[REDACTED:github_token:fp={fingerprint(token, KEY)}]"}


def test_placeholders_and_markers_are_left_alone():
    text = "password=${DB_PASSWORD} token=<your-token> secret=****"
    assert redact_text(text, KEY) == (text, [])
    once, _ = redact_text(f"token: {_rand(30)}", KEY)
    assert redact_text(once, KEY) == (once, [])


def test_adjacent_private_keys_are_each_redacted():
    keys = [v for k, v in planted_secrets().values() if k == "private_key"]
    out, hits = redact_text(" ".join(keys), KEY)
    assert [h.fingerprint for h in hits] == [fingerprint(k, KEY) for k in keys]
    assert "PRIVATE KEY" not in out


def test_fingerprints_are_keyed_and_stable():
    assert fingerprint("abc", KEY) == fingerprint(b"abc", KEY)
    assert fingerprint("abc", KEY) != fingerprint("abc", b"other-key")
    assert len(fingerprint("abc", KEY)) == 16


def test_ordinary_text_is_untouched():
    text = "ls -la /home/agent && git commit -m 'fix tokenizer' && echo sk-short && key=value"
    assert redact_text(text, KEY) == (text, [])


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_not_redacted(text: str):
    assert redact_text(text, KEY) == (text, [])


def test_redacting_twice_changes_nothing():
    """The agent redacts, then the collector scans again: markers must never be taken for secrets."""
    key = b"deployment-key"
    for _, secret, planted in every_planted().values():
        for text in (planted, f"token={secret}", f'{{"token": "{secret}", "auth": "Authorization: Bearer {secret}"}}'):
            once = redact_text(text, key)[0]
            assert redact_text(once, key)[0] == once
            structured = redact_value({"token": once, "nested": [once]}, key)
            assert redact_value(structured, key) == structured


def test_huge_hostile_values_are_redacted_whole():
    """A 256 KiB ``eyJ…`` run (the JWT rule's worst case under backtracking) and a 1 MiB value built to make
    many rules start and fail: the result is asserted, the time is the benchmark's (bench_redact)."""
    for jwt_like in ("eyJ" * (256 * 1024 // 3), "eyJ" + _rand(256 * 1024, _URLSAFE)):
        assert redact_text(jwt_like, KEY) == (jwt_like, [])
    token = "ghp_" + _rand(36)
    adversarial = ("aws_secret=" + "eyJ" + "a" * 7 + ".eyJ" + "-----BEGIN RSA PRIVATE KEY " + "password: ") * 4000
    out, hits = redact_text(adversarial + token, KEY)
    assert token not in out and hits[-1].kind == "github_token"
    assert out.endswith(f"[REDACTED:github_token:fp={fingerprint(token, KEY)}]")


def test_positions_are_characters_whatever_the_script():
    token = "ghp_" + _rand(36)
    text = f"Schlüssel → {token} ✓ fin"
    out, [hit] = redact_text(text, KEY)
    assert text[hit.start : hit.end] == token
    assert out == text.replace(token, f"[REDACTED:github_token:fp={fingerprint(token, KEY)}]")


def test_structured_content_stays_valid_json_with_secrets_redacted_inside():
    """gen_ai.input.messages as the GenAI conventions define it: a JSON array of messages with parts."""
    token, password = "ghp_" + _rand(36), "pw-" + _rand(12)
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "You deploy things."}]},
        {"role": "user", "parts": [{"type": "text", "content": f"use {token} to push"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "bash", "arguments": {"password": password}}],
        },
    ]
    text = orjson.dumps(messages).decode()
    out = redact_content(text, KEY)
    parsed = orjson.loads(out)  # still JSON
    assert token not in out and password not in out
    assert parsed[1]["parts"][0]["content"] == f"use [REDACTED:github_token:fp={fingerprint(token, KEY)}] to push"
    assert parsed[2]["parts"][0]["arguments"]["password"].startswith("[REDACTED:secret_value:")
    clean = orjson.dumps(messages[:1]).decode()
    assert redact_content(clean, KEY) is clean  # nothing to redact: the very same string, not re-serialised


def test_a_rule_that_is_not_re2_syntax_is_refused_by_name():
    bad = """[[rule]]\nkind = "lookbehind"\nregex = \'\'\'(?<!x)(?P<secret>abc)\'\'\'\nkeywords = ["abc"]\n"""
    with pytest.raises(ValueError, match=r"#1 \(lookbehind\): not RE2 syntax"):
        redact.load_rules(bad, compile_all=True)
    assert len(redact.load_rules(compile_all=True)) == len(redact.rules())  # every shipped rule compiles
    unknown = """[[rule]]\nkind = "k"\nregex = \'(?P<secret>abc)\'\nkeywords = ["abc"]\nchecks = ["nope"]\n"""
    with pytest.raises(ValueError, match="unknown checks"):
        redact.load_rules(unknown)
    with pytest.raises(ValueError, match="needs keywords"):
        redact.load_rules("""[[rule]]\nkind = "k"\nregex = '(?P<secret>abc)'\n""")


RULES = redact.rules()


@pytest.mark.parametrize("index", range(len(RULES)), ids=[f"{i}-{rule.kind}" for i, rule in enumerate(RULES)])
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_rules_keywords_never_skip_text_the_rule_would_match(index, data):
    """The keyword screen is a necessary condition: whatever the rule's regex matches (strings generated from
    the regex itself, case variants included), the one-pass keyword Set reports one of that rule's keywords."""
    rule = RULES[index]
    text = data.draw(st.from_regex(rule.regex.replace(r"\z", r"\Z")))
    raw = text.encode("utf-8", "surrogatepass")
    if redact.program(index).regex.search(raw) is None:
        return  # Python's re and RE2 differ on an edge (e.g. Unicode classes): nothing to screen
    keywords = redact._keywords()
    found = keywords.matcher.Match(raw) or []
    assert any(index in keywords.rules_of[k] for k in found), (rule.kind, text)


def test_the_collector_door_redacts_log_records_too():
    """Native agent telemetry is OTLP logs (Claude Code's tool_parameters, Codex's arguments): the same walk
    applies to an ExportLogsServiceRequest's bodies, attributes and resource."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from foothold.collector.processors.redact import RequestRedactor

    token, password = "ghp_" + _rand(36), "pw-" + _rand(12)
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name", value={"string_value": "claude-code"})
    record = resource_logs.scope_logs.add().log_records.add()
    record.body.string_value = f"git push https://x:{token}@github.com/o/r"
    record.attributes.add(key="tool_parameters", value={"string_value": f'{{"full_command": "mysql -p{password} db"}}'})
    assert RequestRedactor(KEY).logs(request)
    encoded = request.SerializeToString()
    assert token.encode() not in encoded and password.encode() not in encoded
    assert orjson.loads(record.attributes[0].value.string_value)["full_command"].startswith("mysql -p[REDACTED:")


def test_a_long_text_found_clean_is_not_scanned_again_and_a_secret_is_always_scanned(monkeypatch) -> None:
    """Conversations resend their history on every model call: a clean long text is remembered by digest, so
    the history is scanned once; a text holding a secret is never remembered, so it is redacted every time."""
    from foothold import redact

    monkeypatch.setattr(redact, "_clean_digests", {})  # other tests may have proven the same text clean already
    scans: list[int] = []
    real_scan = redact._scan
    monkeypatch.setattr(redact, "_scan", lambda data: scans.append(len(data)) or real_scan(data))
    history = "the handler validates the request body before writing. " * 40
    assert redact_text(history, KEY)[0] == history
    assert redact_text(history, KEY)[0] == history
    assert len(scans) == 1
    leaked = history + " export GITHUB_TOKEN=ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    first, second = redact_text(leaked, KEY)[0], redact_text(leaked, KEY)[0]
    assert "ghp_" not in first and first == second
    assert len(scans) == 3
