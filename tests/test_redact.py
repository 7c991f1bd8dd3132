"""Secret redaction: every supported kind is found, replaced by a keyed marker, and leaves no trace."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foothold import redact
from foothold.redact import _RULES, fingerprint, redact_text, redact_value

KEY = b"test-deployment-key"
_rng = random.Random(20261122)
_ALNUM = string.ascii_letters + string.digits
_B64, _URLSAFE, _HEX = _ALNUM + "/+", _ALNUM + "_-", "0123456789abcdef"


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def planted_secrets() -> dict[str, tuple[str, str]]:
    """Real-looking secrets of each kind recognisable on its own: name -> (kind, secret value). Built at
    run time so the repository holds no secret-shaped literals."""
    pem_body = "\n".join(_rand(64, _B64) for _ in range(6))
    gcp_key = "-----BEGIN PRIVATE KEY-----\n" + pem_body + "\n-----END PRIVATE KEY-----"
    return {
        "aws_access_key_id": ("aws_access_key_id", "AKIA" + _rand(16, string.ascii_uppercase + "234567")),
        "github_classic": ("github_token", "ghp_" + _rand(36)),
        "github_oauth": ("github_token", "gho_" + _rand(36)),
        "github_app": ("github_token", "ghs_" + _rand(36)),
        "github_fine_grained": ("github_token", "github_pat_" + _rand(22) + "_" + _rand(59)),
        "gitlab": ("gitlab_token", "glpat-" + _rand(20)),
        "gitlab_runner": ("gitlab_token", "glrt-" + _rand(20)),
        "slack_bot": (
            "slack_token",
            "xoxb-" + _rand(12, string.digits) + "-" + _rand(13, string.digits) + "-" + _rand(24),
        ),
        "slack_user": (
            "slack_token",
            "xoxp-" + _rand(12, string.digits) + "-" + _rand(12, string.digits) + "-" + _rand(32),
        ),
        "slack_app": (
            "slack_token",
            "xapp-1-A" + _rand(10, string.ascii_uppercase) + "-" + _rand(13, string.digits) + "-" + _rand(64, _HEX),
        ),
        "slack_webhook": (
            "slack_webhook",
            "https://hooks.slack.com/services/T" + _rand(10) + "/B" + _rand(10) + "/" + _rand(24),
        ),
        "openai": ("openai_key", "sk-" + _rand(20) + "T3BlbkFJ" + _rand(20)),
        "openai_project": ("openai_key", "sk-proj-" + _rand(74)),
        "anthropic": ("anthropic_key", "sk-ant-api03-" + _rand(93) + "AA"),
        "stripe": ("stripe_key", "sk_live_" + _rand(24)),
        "stripe_webhook": ("stripe_webhook_secret", "whsec_" + _rand(32)),
        "google_api_key": ("gcp_api_key", "AIza" + _rand(35, _URLSAFE)),
        "google_oauth": ("google_oauth_token", "ya29.a0" + _rand(120, _URLSAFE)),
        "huggingface": ("huggingface_token", "hf_" + _rand(34, string.ascii_letters)),
        "huggingface_org": ("huggingface_token", "api_org_" + _rand(34, string.ascii_letters)),
        "groq": ("groq_key", "gsk_" + _rand(52)),
        "xai": ("xai_key", "xai-" + _rand(80)),
        "azure_ad_client_secret": ("azure_ad_client_secret", _rand(3) + "8Q~" + _rand(34, _URLSAFE + "~.")),
        "npm": ("npm_token", "npm_" + _rand(36)),
        "pypi": ("pypi_token", "pypi-AgEIcHlwaS5vcmc" + _rand(70, _URLSAFE)),
        "sendgrid": ("sendgrid_key", "SG." + _rand(22) + "." + _rand(43)),
        "digitalocean": ("digitalocean_token", "dop_v1_" + _rand(64, _HEX)),
        "shopify": ("shopify_token", "shpat_" + _rand(32, _HEX)),
        "databricks": ("databricks_token", "dapi" + _rand(32, _HEX)),
        "vault": ("vault_token", "hvs.CAESI" + _rand(90, _URLSAFE)),
        "doppler": ("doppler_token", "dp.pt." + _rand(43)),
        "grafana_service_account": ("grafana_token", "glsa_" + _rand(32) + "_" + _rand(8, _HEX)),
        "grafana_cloud": ("grafana_token", "glc_eyJvIjoi" + _rand(60, _B64) + "=="),
        "age": ("age_secret_key", "AGE-SECRET-KEY-1" + _rand(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
        "jwt": ("jwt", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZ2VudCIsImV4cCI6MTk5OTk5OTk5OX0." + _rand(43)),
        "pem": (
            "private_key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\n" + pem_body + "\n-----END OPENSSH PRIVATE KEY-----",
        ),
        "gcp_service_account": ("private_key", gcp_key),
    }


def planted_in_context() -> dict[str, tuple[str, str, str]]:
    """Secrets recognised only by what surrounds them: name -> (kind, secret value, text holding it)."""
    aws, token, basic, named = _rand(40, _B64), _rand(40), _rand(28, _B64), _rand(32)
    password, account_key, sas_key = "hunter2-" + _rand(6), _rand(86, _B64) + "==", _rand(43) + "="
    return {
        "aws_secret_access_key": ("aws_secret_access_key", aws, f"export AWS_SECRET_ACCESS_KEY={aws}"),
        "bearer_header": ("authorization", token, f"Authorization: Bearer {token}"),
        "basic_header": ("authorization", basic, f"Authorization: Basic {basic}"),
        "url_credentials": ("url_credentials", password, f"postgres://agent:{password}@db.internal:5432/app"),
        "secret_named": ("secret_value", named, f"client_secret={named}"),
        "password_named": ("secret_value", password, f'DB_PASSWORD="{password}"'),
        "azure_storage": (
            "azure_key",
            account_key,
            f"DefaultEndpointsProtocol=https;AccountName=agentdata;AccountKey={account_key};EndpointSuffix=core.windows.net",
        ),
        "azure_service_bus": (
            "azure_key",
            sas_key,
            f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={sas_key}",
        ),
    }


def every_planted() -> dict[str, tuple[str, str, str]]:
    """Every supported kind: name -> (kind, secret value, text holding it)."""
    return {name: (kind, secret, secret) for name, (kind, secret) in planted_secrets().items()} | planted_in_context()


def test_every_rule_has_a_planted_secret():
    assert {kind for kind, _, _ in every_planted().values()} == {rule.kind for rule in _RULES}


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


@pytest.mark.parametrize(
    "text",
    [
        "git checkout 3f786850e387550fdab836ed7e6dc881de23001b",
        "request 123e4567-e89b-12d3-a456-426614174000 done",
        "docker pull app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "<img src='data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='>",
        "Google API keys start with AIza and OAuth access tokens with ya29, e.g. ya29.<token>",
        "from huggingface_hub import hf_hub_download; hf_transfer=1 npm_config_cache=/tmp gsk_ prefix",
        "AccountKey=<your-key>;SharedAccessKey=${SB_KEY}",
        "SG.example.com dapi.example.com dop_v1_ glsa_ hvs.short AGE-SECRET-KEY-1 pypi-token",
        "def compute_api_org_stats(api_org_id): return fetch_api_org_members_and_repositories(api_org_id)",
    ],
)
def test_look_alikes_are_not_redacted(text: str):
    assert redact_text(text, KEY) == (text, [])


def test_large_input_scans_in_linear_time():
    import time

    blob = _rand(1_000_000, string.ascii_letters)
    started = time.perf_counter()
    redact_text(blob, KEY)
    assert time.perf_counter() - started < 5  # generous: catches quadratic backtracking, not speed


def test_redacting_twice_changes_nothing():
    """The agent redacts, then the collector scans again: markers must never be taken for secrets."""
    key = b"deployment-key"
    for _, secret, planted in every_planted().values():
        for text in (planted, f"token={secret}", f'{{"token": "{secret}", "auth": "Authorization: Bearer {secret}"}}'):
            once = redact_text(text, key)[0]
            assert redact_text(once, key)[0] == once
            structured = redact_value({"token": once, "nested": [once]}, key)
            assert redact_value(structured, key) == structured


SCREENED = [rule for rule in redact._RULES if rule.needles]


@pytest.mark.parametrize("rule", SCREENED, ids=[rule.kind for rule in SCREENED])
@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_a_rules_screen_never_skips_text_the_rule_would_match(rule, data):
    """The needles are a necessary condition: every string the pattern matches contains one of them."""
    text = data.draw(st.from_regex(rule.pattern))
    haystack = text.casefold() if rule.folded else text
    assert any(needle in haystack for needle in rule.needles), (rule.kind, text)


@pytest.mark.parametrize("text", ["PAſſWORD=hunter2-xyz", "db_paſſ: 'q9v!Lr#2Zt'", "API_\u212aEY=Zx81Qw7pLm3nB0vR"])
def test_ignorecase_lookalike_letters_still_meet_the_screen(text):
    """re's IGNORECASE matches ſ as s and the Kelvin sign as k; the screen must let such text through."""
    assert [hit.kind for hit in redact.find_secrets(text, KEY)] == ["secret_value"]
