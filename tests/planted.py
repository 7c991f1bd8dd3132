"""Planted secrets: realistic-looking, fake values of every kind foothold.redact knows, and look-alikes that
must pass untouched. Built at run time from a seeded generator so the repository holds no secret-shaped
literal (and a scanner run over it finds nothing)."""

from __future__ import annotations

import base64
import random
import string

_ALNUM = string.ascii_letters + string.digits
_B64, _URLSAFE, _HEX = _ALNUM + "/+", _ALNUM + "_-", "0123456789abcdef"
_UPPER_DIGITS = string.ascii_uppercase + string.digits


class Planter:
    """A seeded source of fake secrets: the same seed plants the same values."""

    def __init__(self, seed: int = 20261202) -> None:
        self._rng = random.Random(seed)

    def rand(self, n: int, alphabet: str = _ALNUM) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def mixed(self, n: int) -> str:
        """Random alphanumerics with at least one upper, lower and digit (what real tokens look like)."""
        return self.rand(n - 3) + self.rand(1, string.ascii_uppercase) + self.rand(1, "abcdefgh") + "7"

    def password(self) -> str:
        return self.rand(6, string.ascii_letters) + self.rand(4, string.digits) + self._rng.choice("!#%^*")

    def standalone(self) -> dict[str, tuple[str, str]]:
        """Secrets recognisable on their own: name -> (kind, value)."""
        r = self.rand
        pem_body = "\n".join(r(64, _B64) for _ in range(6))
        return {
            "pem": (
                "private_key",
                "-----BEGIN OPENSSH PRIVATE KEY-----\n" + pem_body + "\n-----END OPENSSH PRIVATE KEY-----",
            ),
            "gcp_service_account": (
                "private_key",
                "-----BEGIN PRIVATE KEY-----\n" + pem_body + "\n-----END PRIVATE KEY-----",
            ),
            "pem_rsa": (
                "private_key",
                "-----BEGIN RSA PRIVATE KEY-----\n" + pem_body + "\n-----END RSA PRIVATE KEY-----",
            ),
            "putty": (
                "putty_private_key",
                "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n"
                + r(64, _B64)
                + "\nPrivate-Lines: 1\n"
                + r(44, _B64)
                + "\nPrivate-MAC: "
                + r(64, _HEX),
            ),
            "age": ("age_secret_key", "AGE-SECRET-KEY-1" + r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
            "aws_access_key_id": ("aws_access_key_id", "AKIA" + r(16, string.ascii_uppercase + "234567")),
            "aws_session_key_id": ("aws_access_key_id", "ASIA" + r(16, string.ascii_uppercase + "234567")),
            "gcp_api_key": ("gcp_api_key", "AIza" + r(35, _URLSAFE)),
            "gcp_oauth_client_secret": ("gcp_oauth_client_secret", "GOCSPX-" + r(28, _URLSAFE)),
            "google_oauth": ("google_oauth_token", "ya29.a0" + r(120, _URLSAFE)),
            "azure_ad_client_secret": ("azure_ad_client_secret", r(3) + "8Q~" + r(34, _URLSAFE + "~.")),
            "alibaba": ("alibaba_access_key", "LTAI" + r(20)),
            "digitalocean": ("digitalocean_token", "dop_v1_" + r(64, _HEX)),
            "databricks": ("databricks_token", "dapi" + r(32, _HEX)),
            "dynatrace": ("dynatrace_token", "dt0c01." + r(24, _UPPER_DIGITS) + "." + r(64, _UPPER_DIGITS)),
            "flyio": ("flyio_token", "fo1_" + r(43, _URLSAFE)),
            "heroku": ("heroku_key", "HRKU-AA" + r(58, _URLSAFE)),
            "pulumi": ("pulumi_token", "pul-" + r(40, _HEX)),
            "terraform": ("terraform_token", r(14) + ".atlasv1." + r(67, _URLSAFE)),
            "supabase": ("supabase_token", "sbp_" + r(40, _HEX)),
            "planetscale": ("planetscale_token", "pscale_tkn_" + r(43, _URLSAFE)),
            "github_classic": ("github_token", "ghp_" + r(36)),
            "github_oauth": ("github_token", "gho_" + r(36)),
            "github_app": ("github_token", "ghs_" + r(36)),
            "github_fine_grained": ("github_token", "github_pat_" + r(22) + "_" + r(59)),
            "gitlab": ("gitlab_token", "glpat-" + r(20, _URLSAFE)),
            "gitlab_runner": ("gitlab_token", "glrt-" + r(20)),
            "npm": ("npm_token", "npm_" + r(36)),
            "pypi": ("pypi_token", "pypi-AgEIcHlwaS5vcmc" + r(70, _URLSAFE)),
            "vault": ("vault_token", "hvs.CAESI" + r(90, _URLSAFE)),
            "vault_legacy": ("vault_token", "s." + self.mixed(24)),
            "doppler": ("doppler_token", "dp.pt." + r(43)),
            "grafana_service_account": ("grafana_token", "glsa_" + r(32) + "_" + r(8, _HEX)),
            "grafana_cloud": ("grafana_token", "glc_eyJvIjoi" + r(60, _B64) + "=="),
            "atlassian": ("atlassian_token", "ATATT3xFfGF0" + r(180, _URLSAFE) + "=" + r(8, "ABCDEF0123456789")),
            "linear": ("linear_key", "lin_api_" + r(40)),
            "notion": ("notion_token", "ntn_" + r(46)),
            "postman": ("postman_key", "PMAK-" + r(24, _HEX) + "-" + r(34, _HEX)),
            "sentry": ("sentry_token", "sntrys_eyJpYXQiOjE3" + r(60, _B64)),
            "newrelic": ("newrelic_key", "NRAK-" + r(27, _UPPER_DIGITS)),
            "anthropic": ("anthropic_key", "sk-ant-api03-" + r(93, _URLSAFE) + "AA"),
            "openrouter": ("openrouter_key", "sk-or-v1-" + r(64, _HEX)),
            "openai": ("openai_key", "sk-" + r(20) + "T3BlbkFJ" + r(20)),
            "openai_project": ("openai_key", "sk-proj-" + r(74, _URLSAFE)),
            "huggingface": ("huggingface_token", "hf_" + r(34, string.ascii_letters)),
            "groq": ("groq_key", "gsk_" + r(52)),
            "xai": ("xai_key", "xai-" + r(80)),
            "replicate": ("replicate_token", "r8_" + r(37)),
            "perplexity": ("perplexity_key", "pplx-" + r(48)),
            "langsmith": ("langsmith_key", "lsv2_pt_" + r(32, _HEX) + "_" + r(10, _HEX)),
            "pinecone": ("pinecone_key", "pcsk_" + r(6) + "_" + r(64)),
            "slack_bot": ("slack_token", "xoxb-" + r(12, string.digits) + "-" + r(13, string.digits) + "-" + r(24)),
            "slack_webhook": (
                "slack_webhook",
                "https://hooks.slack.com/services/T" + r(10) + "/B" + r(10) + "/" + r(24),
            ),
            "discord_webhook": (
                "discord_webhook",
                "https://discord.com/api/webhooks/" + r(18, string.digits) + "/" + r(68, _URLSAFE),
            ),
            "discord_bot": ("discord_bot_token", "M" + r(25) + "." + r(6, _URLSAFE) + "." + r(38, _URLSAFE)),
            "telegram_bot": ("telegram_bot_token", r(10, string.digits) + ":AA" + r(33, _URLSAFE)),
            "twilio_api_key": ("twilio_api_key", "SK" + r(32, _HEX)),
            "sendgrid": ("sendgrid_key", "SG." + r(22) + "." + r(43)),
            "mailgun": ("mailgun_key", "key-" + r(32, _HEX)),
            "mailchimp": ("mailchimp_key", r(32, _HEX) + "-us21"),
            "stripe": ("stripe_key", "sk_live_" + r(24)),
            "stripe_restricted": ("stripe_key", "rk_live_" + r(24)),
            "stripe_webhook": ("stripe_webhook_secret", "whsec_" + r(32)),
            "square": ("square_token", "sq0atp-" + r(22, _URLSAFE)),
            "braintree": (
                "braintree_token",
                "access_token$production$" + r(16, "abcdefghjk0123456789") + "$" + r(32, _HEX),
            ),
            "shopify": ("shopify_token", "shpat_" + r(32, _HEX)),
            "easypost": ("easypost_key", "EZAK" + r(54)),
            "shippo": ("shippo_token", "shippo_live_" + r(40, _HEX)),
            "flutterwave": ("flutterwave_key", "FLWSECK_TEST-" + r(32, "abcdefgh0123456789") + "-X"),
            "mapbox": ("mapbox_token", "sk.eyJ1IjoiYWdlbnQiLCJhIjoi" + r(40, _URLSAFE) + "." + r(22, _URLSAFE)),
            "facebook": ("facebook_token", "EAAB" + r(120)),
            "twitter_bearer": ("twitter_bearer_token", "A" * 22 + r(90)),
            "jwt": (
                "jwt",
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZ2VudCIsImV4cCI6MTk5OTk5OTk5OX0." + r(43, _URLSAFE),
            ),
        }

    def in_context(self) -> dict[str, tuple[str, str, str]]:
        """Secrets recognised by what surrounds them: name -> (kind, value, text holding it). Command lines
        are the forms agents really run."""
        r, pw = self.rand, self.password
        values = {k: pw() for k in ("curl", "mysql", "sshpass", "docker", "flag", "redis", "smb", "ldap", "openssl")}
        values |= {k: pw() for k in ("netuser", "netrc", "url", "named", "redis_cli", "wget", "mongo", "sqlcmd")}
        aws, token, basic = r(40, _B64), r(40), base64.b64encode(f"bot:{pw()}".encode()).decode()
        account_key, sas_key = r(86, _B64) + "==", r(43) + "="
        docker_auth = base64.b64encode(f"ci-bot:{pw()}".encode()).decode()
        named = r(32)
        v = values
        return {
            "aws_secret_access_key": ("aws_secret_access_key", aws, f"export AWS_SECRET_ACCESS_KEY={aws}"),
            "bearer_header": ("authorization", token, f"curl -H 'Authorization: Bearer {token}' https://api.internal/"),
            "basic_header": ("authorization", basic, f"Authorization: Basic {basic}"),
            "url_credentials": ("url_credentials", v["url"], f"psql postgres://agent:{v['url']}@db.internal:5432/app"),
            "redis_url": ("url_credentials", v["redis"], f"redis-cli -u redis://:{v['redis']}@cache.internal:6379/0"),
            "secret_named": ("secret_value", named, f"client_secret={named}"),
            "password_named": ("secret_value", v["named"], f'DB_PASSWORD="{v["named"]}"'),
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
            "curl_user": ("cli_user_password", v["curl"], f"curl -fsS -u deploy:{v['curl']} https://ci.internal/api"),
            "smbclient": ("cli_user_password", v["smb"], f"smbclient //fs/share -U admin%{v['smb']} -c ls"),
            "mysql": ("mysql_password", v["mysql"], f"mysql -h db -u root -p{v['mysql']} shop < dump.sql"),
            "sshpass": ("cli_password", v["sshpass"], f"sshpass -p '{v['sshpass']}' ssh ops@10.0.0.5 uptime"),
            "docker_login": ("cli_password", v["docker"], f"docker login -u ci -p {v['docker']} registry.internal"),
            "password_flag": ("cli_password", v["flag"], f"./deploy.sh --env prod --password {v['flag']} --yes"),
            "wget_password": ("cli_password", v["wget"], f"wget --user=ops --http-password={v['wget']} https://x/f"),
            "redis_cli": ("cli_password", v["redis_cli"], f"redis-cli -h cache -a {v['redis_cli']} FLUSHALL"),
            "ldapsearch": ("cli_password", v["ldap"], f'ldapsearch -x -D "cn=admin" -w {v["ldap"]} -b dc=corp'),
            "mongosh": ("cli_password", v["mongo"], f"mongosh mongodb://db/admin -u root -p {v['mongo']}"),
            "sqlcmd": ("cli_password", v["sqlcmd"], f"sqlcmd -S tcp:db,1433 -U sa -P '{v['sqlcmd']}' -Q 'select 1'"),
            "openssl": ("cli_password", v["openssl"], f"openssl pkcs12 -export -in c.pem -passout pass:{v['openssl']}"),
            "net_user": ("cli_password", v["netuser"], f"net user backdoor {v['netuser']} /add"),
            "netrc": ("netrc_password", v["netrc"], f"machine api.internal login deploy password {v['netrc']}"),
            "docker_config": (
                "docker_auth",
                docker_auth,
                '{"auths": {"registry.internal": {"auth": "' + docker_auth + '"}}}',
            ),
        }

    def every(self) -> dict[str, tuple[str, str, str]]:
        """Every planted secret: name -> (kind, value, text holding it)."""
        return {name: (kind, value, value) for name, (kind, value) in self.standalone().items()} | self.in_context()


LOOK_ALIKES = (
    "git checkout 3f786850e387550fdab836ed7e6dc881de23001b",
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "docker pull app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "<img src='data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
    "kgAAAABJRU5"
    "ErkJggg=='>",
    "Google API keys start with AIza and OAuth access tokens with ya29, e.g. ya29.<token>",
    "from huggingface_hub import hf_hub_download; hf_transfer=1 npm_config_cache=/tmp gsk_ prefix",
    "AccountKey=<your-key>;SharedAccessKey=${SB_KEY}",
    "SG.example.com dapi.example.com dop_v1_ glsa_ hvs.short AGE-SECRET-KEY-1 pypi-token",
    "def compute_api_org_stats(api_org_id): return fetch_api_org_members_and_repositories(api_org_id)",
    "docker run --rm -u 1000:1000 -v $PWD:/src app:latest make test",
    "mysql -u root -p shop < dump.sql",
    "echo $TOKEN | docker login -u ci --password-stdin registry.internal",
    "curl -u $USER:$PASS https://ci.internal/api",
    "export DB_PASSWORD=${DB_PASSWORD:-}",
    "max_tokens=4096 token_type=bearer tokenizer=cl100k",
    "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUR7KE= in package-lock.json",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "this.getElementsByTagName(s.previousElementSibling)",
)
