"""Collector configuration: a YAML file, overridden by ``FOOTHOLD_*`` environment variables.

Nested keys use ``__`` in the environment, e.g. ``FOOTHOLD_STORE__DSN=http://ch:8123``. Everything is
validated up front so a broken config fails at start with the key and the fix, not later at runtime.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from foothold.collector.schema.retention import Retention

if TYPE_CHECKING:
    from foothold.detections.rules import RuleOverride

MiB = 1024 * 1024


class ConfigError(Exception):
    """A configuration problem, phrased so the user knows what to change."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_endpoint(value: str) -> Endpoint:
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT with a port 0-65535 (0 picks a free port), got {value!r}")
    return Endpoint(host.strip("[]"), int(port))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Listener(_Section):
    enabled: bool = True
    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _valid_endpoint(cls, value: str) -> str:
        parse_endpoint(value)
        return value

    @property
    def address(self) -> Endpoint:
        return parse_endpoint(self.endpoint)


class GrpcReceiverConfig(_Listener):
    endpoint: str = "127.0.0.1:4317"
    max_message_bytes: int = Field(16 * MiB, gt=0)


class HttpReceiverConfig(_Listener):
    endpoint: str = "127.0.0.1:4318"
    max_body_bytes: int = Field(16 * MiB, gt=0, description="compressed and decompressed body limit")


class ReceiversConfig(_Section):
    grpc: GrpcReceiverConfig = GrpcReceiverConfig()
    http: HttpReceiverConfig = HttpReceiverConfig()


class ConnectionsConfig(_Section):
    """Bounds on every listener (OTLP/gRPC, OTLP/HTTP, query API), so connections cannot exhaust the process
    before authentication: applied in collector/serving.py."""

    max_per_listener: int = Field(
        512, gt=0, description="open connections per listener; beyond it the oldest idle one is closed (else 503)"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="a connection must send a request's complete headers within this time"
    )
    idle_timeout_seconds: float = Field(5.0, gt=0, description="keep-alive: close a connection idle this long")
    max_header_bytes: int = Field(16 * 1024, ge=1024, description="request line and headers (HTTP), metadata (gRPC)")
    grpc_max_concurrent_streams: int = Field(64, gt=0, description="concurrent calls on one gRPC connection")
    grpc_max_connection_idle_seconds: float = Field(
        300.0, gt=0, description="close a gRPC connection without calls this long (GOAWAY)"
    )


class BatchConfig(_Section):
    # 32k: fewer, larger inserts halve the views' per-insert overhead (docs/performance.md: batch size);
    # at moderate load batches leave on timeout_seconds long before they fill, so latency does not change.
    max_spans: int = Field(32_768, gt=0, description="export once this many spans are waiting")
    timeout_seconds: float = Field(1.0, gt=0, description="export at least this often")
    # A batch takes ~10x its encoded size in memory while it is flattened, processed and inserted: with 2-8 KB
    # of model messages a span, 32k spans held ~1 GiB. This bound keeps a batch of small spans whole (~22 MiB).
    max_batch_bytes: int = Field(24 * MiB, gt=0, description="export once this many encoded bytes are waiting")
    max_queued_spans: int = Field(200_000, gt=0, description="beyond this, receivers answer 429")
    # Queued requests wait as their protobuf bytes, decoded only when a batch is formed (a decoded span costs
    # ~6 KiB of objects, its bytes ~0.7 KiB). With the spool, requests beyond this wait on disk only and are
    # read back a batch at a time; without it, receivers answer 429 beyond it.
    max_queued_memory_bytes: int = Field(
        64 * MiB, gt=0, description="encoded requests held in memory for the exporter; the rest wait in the spool"
    )
    retry_max_seconds: float = Field(10.0, gt=0, description="cap of the store retry back-off")


class SpoolConfig(_Section):
    """The on-disk write-ahead spool under ``data_dir/spool``: accepted requests survive a crash."""

    enabled: bool = True
    max_bytes: int = Field(1024 * MiB, gt=0, description="spool size on disk; beyond it, receivers answer 429")
    segment_bytes: int = Field(64 * MiB, gt=0, description="segment file size; whole exported segments are deleted")
    fsync: bool = Field(
        True, description="fsync before acknowledging (false: survives a process crash, not power loss)"
    )

    @model_validator(mode="after")
    def _segment_fits(self) -> SpoolConfig:
        if self.segment_bytes > self.max_bytes:
            raise ValueError("spool.segment_bytes must not exceed spool.max_bytes")
        return self


class LimitsConfig(_Section):
    """Per-request input limits, applied before anything is spooled or stored."""

    max_spans_per_request: int = Field(100_000, gt=0, description="larger requests are refused whole (400)")
    max_attributes_per_span: int = Field(1024, gt=0, description="more are dropped, with foothold.truncated.attributes")
    max_attribute_value_bytes: int = Field(256 * 1024, gt=0, description="longer values are cut, with a visible marker")
    max_nesting_depth: int = Field(8, gt=0, le=64, description="deeper array/kvlist values become a marker")
    max_span_age_days: float = Field(
        30.0, gt=0, description="older span start times are moved to the receive time (original kept)"
    )
    max_span_future_seconds: float = Field(
        86_400.0, ge=0, description="start times further ahead are moved to the receive time (original kept)"
    )


class InsertConfig(_Section):
    """How batches are inserted (docs/reliability.md, "Insert semantics"); applied on every insert."""

    max_days_per_insert: int = Field(
        50,
        gt=0,
        le=1000,
        description="a batch whose spans fall on more days is inserted in groups of this many days "
        "(ClickHouse refuses an insert touching over max_partitions_per_insert_block=100 partitions)",
    )
    quorum: int | None = Field(
        None, ge=2, description="replicated tables: insert_quorum, the replicas that must confirm each insert"
    )
    quorum_timeout_ms: int = Field(60_000, gt=0, description="insert_quorum_timeout when quorum is set")


class StoreConfig(_Section):
    dsn: str | None = Field(None, description="chdb:///abs/path (default: under data_dir) or http(s)://host:8123")
    database: str = Field("foothold", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    cluster: str | None = Field(None, description="ClickHouse cluster name for ON CLUSTER / Distributed DDL")
    insert: InsertConfig = InsertConfig()
    startup_wait_seconds: float = Field(
        30.0, ge=0, description="start waits this long for the store (and its DDL), then runs degraded and retries"
    )
    replicated: bool = Field(
        True,
        description="cluster tables are Replicated* with ON CLUSTER DDL (needs Keeper); false: a sharded cluster "
        "without replication, the DDL applied on each node",
    )

    @field_validator("dsn")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError("store DSN must start with chdb://, http:// or https://")
        if value is not None and value.startswith("chdb://") and not value.startswith(("chdb:///", "chdb://memory")):
            # checked here, not at connect: the collector retries an unreachable store, never a wrong setting
            raise ValueError("a chDB DSN needs an absolute path: chdb:///abs/path")
        return value


class RetentionConfig(_Section):
    """Days to keep per kind of row (0 keeps forever), applied as table TTLs on every start.

    Off by default: a TTL counts from the span's own timestamp, which the sender sets, so a span stamped
    1970 (a missing start time, or a sender hiding its tracks) would expire on arrival. compose/ sets the
    recommended values; see docs/deployment.md.
    """

    spans_days: int = Field(0, ge=0, description="otel_traces and its trace-id lookup (recommended 90)")
    tool_calls_days: int = Field(0, ge=0, description="tool_calls, read by timelines and credential rules (365)")
    artifacts_days: int = Field(0, ge=0, description="artifacts, what a session left behind (365)")
    alerts_days: int = Field(0, ge=0, description="alerts and alert_deliveries, kept longer than spans (730)")
    metrics_days: int = Field(0, ge=0, description="collector_metrics self-telemetry (30)")
    chain_days: int = Field(0, ge=0, description="export_chain tamper evidence, kept longer than spans (730)")
    max_store_bytes: int = Field(
        0,
        ge=0,
        description="embedded (chDB) store only: past this size the oldest raw partitions (spans first) are "
        "dropped; 0 means no bound",
    )
    check_interval_seconds: float = Field(300.0, gt=0, description="how often the max_store_bytes bound is checked")

    def policy(self) -> Retention:
        from foothold.collector.schema.retention import CLASSES

        return Retention({c: getattr(self, f"{c}_days") for c in CLASSES}, self.max_store_bytes)


class QueryApiConfig(_Listener):
    endpoint: str = "127.0.0.1:4319"
    max_rows: int = Field(100_000, gt=0, description="rows a query returns at most (the engine stops one beyond)")
    max_seconds: float = Field(30.0, gt=0, description="engine-side time limit of a query (max_execution_time)")
    max_result_bytes: int = Field(256 * MiB, gt=0, description="engine-side result size limit (max_result_bytes)")
    max_memory_bytes: int = Field(
        2048 * MiB, gt=0, description="engine-side memory limit of a query (max_memory_usage)"
    )
    workers: int = Field(2, gt=0, le=64, description="queries running at once, on threads of their own (not ingest's)")
    max_waiting: int = Field(8, ge=0, description="queries waiting for a worker; beyond, the API answers 503")
    store_dsn: str | None = Field(
        None,
        description="server only: DSN of a read-only ClickHouse user for queries (default: the store's DSN)",
    )
    allowed_hosts: list[str] = Field(
        [],
        description="Host header names accepted besides loopback names and the bound address ('*': any); "
        "refusing others defeats DNS rebinding",
    )
    allowed_origins: list[str] = Field(
        [], description="browser Origins accepted (default none: the CLI sends no Origin)"
    )


class SinkConfig(_Section):
    type: Literal["stdout", "webhook"]
    url: str | None = Field(None, description="webhook URL")
    payload: Literal["json", "alertmanager"] = "json"

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> SinkConfig:
        if self.type == "webhook" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("a webhook sink needs url: http(s)://...")
        return self


class RuleSettings(_Section):
    enabled: bool = True
    severity: str | None = None
    params: dict[str, float] = {}
    allow: dict[str, list[str]] = {}


class AlertsConfig(_Section):
    enabled: bool = True
    interval_seconds: float = Field(30.0, gt=0, description="how often the collector evaluates the rules")
    lookback_seconds: float = Field(86_400.0, gt=0, description="time window each evaluation covers")
    sinks: list[SinkConfig] = [SinkConfig(type="stdout")]
    timeline_url: str | None = Field(None, description="link prefix + session id, e.g. Grafana's timeline dashboard")
    rules: dict[str, RuleSettings] = {}

    @model_validator(mode="after")
    def _rules_exist(self) -> AlertsConfig:
        from foothold.detections.rules import RuleError, load_alert_rules

        try:
            load_alert_rules(self.rule_overrides())
        except RuleError as exc:
            raise ValueError(str(exc)) from None
        return self

    def rule_overrides(self) -> dict[str, RuleOverride]:
        from foothold.detections.rules import RuleOverride

        return {
            rule_id: RuleOverride(
                r.enabled, r.severity, {k: int(v) if v.is_integer() else v for k, v in r.params.items()}, r.allow
            )
            for rule_id, r in self.rules.items()
        }


class TokenConfig(_Section):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@:/-]{0,127}$", description="sender name stored as foothold.sender"
    )
    sha256: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$", description="hex SHA-256 of the token (`foothold-audit token hash`)"
    )


class AuthConfig(_Section):
    tokens: list[TokenConfig] = Field([], description="bearer tokens, stored hashed: one per agent fleet or team")
    allow_unauthenticated: bool = Field(
        False, description="accept requests without a token (and non-loopback listeners without tokens)"
    )
    client_token: SecretStr | None = Field(None, description="token the CLI sends to the query API (or FOOTHOLD_TOKEN)")

    @field_validator("tokens")
    @classmethod
    def _unique(cls, tokens: list[TokenConfig]) -> list[TokenConfig]:
        for what, values in (("name", [t.name for t in tokens]), ("sha256", [t.sha256.lower() for t in tokens])):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"token {what} listed more than once: {', '.join(duplicates)}")
        return tokens

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)


class TlsConfig(_Section):
    """One server identity for all listeners (OTLP/gRPC, OTLP/HTTP, query API); the client_* and ca_file keys
    are the CLI's side of the query API connection."""

    cert_file: Path | None = Field(None, description="PEM server certificate (chain); enables TLS on every listener")
    key_file: Path | None = Field(None, description="PEM private key of cert_file")
    client_ca_file: Path | None = Field(
        None, description="PEM CA bundle: when set, clients must present a certificate it signed"
    )
    ca_file: Path | None = Field(
        None, description="CLI: CA bundle to verify the collector's certificate (default: system store)"
    )
    client_cert_file: Path | None = Field(None, description="CLI: client certificate for the query API under mTLS")
    client_key_file: Path | None = Field(None, description="CLI: key of client_cert_file")

    @model_validator(mode="after")
    def _pairs_and_files(self) -> TlsConfig:
        for a, b in (("cert_file", "key_file"), ("client_cert_file", "client_key_file")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ValueError(f"tls.{a} and tls.{b} go together: set both or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("tls.client_ca_file (client certificates) needs tls.cert_file and tls.key_file")
        for name in ("cert_file", "key_file", "client_ca_file", "ca_file", "client_cert_file", "client_key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).expanduser().is_file():
                raise ValueError(f"tls.{name}: {path} is not a readable file")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class ChainConfig(_Section):
    enabled: bool = Field(True, description="record a hash-chain link per exported batch in export_chain")
    name: str = Field(
        default_factory=lambda: __import__("socket").gethostname() or "default",
        pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
        description="this collector's chain (one per collector writing the database)",
    )
    key_file: Path | None = Field(
        None,
        description="HMAC key of the chain links, never in the store (default data_dir/chain.key, created 0600)",
    )
    mirror: bool = Field(True, description="append every link to the mirror file, the out-of-store anchor")
    mirror_file: Path | None = Field(
        None, description="the mirror (default data_dir/chain-mirror.jsonl); ship it off-host or to append-only storage"
    )
    other_writers: bool = Field(
        False,
        description=(
            "other writers (e.g. otelcol-contrib) share otel_traces: verify then only flags unchained rows "
            "claiming foothold.sender"
        ),
    )


def _default_chain() -> list[str]:
    from foothold.collector.processors import DEFAULT_CHAIN

    return list(DEFAULT_CHAIN)


class PipelineConfig(_Section):
    processors: list[str] = Field(
        default_factory=_default_chain,
        description="batch processors, in order (each one's settings under processors.<name>)",
    )
    workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="worker processes that redact requests at the door (0: in the collector's own process; "
        "unset: one fewer than the CPUs, at most 2)",
    )

    @field_validator("processors")
    @classmethod
    def _registered(cls, names: list[str]) -> list[str]:
        from foothold.collector.processors import REGISTRY

        unknown = [name for name in names if name not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown processor(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
        if len(set(names)) != len(names):
            raise ValueError("a processor is listed more than once")
        return names


class MetricsConfig(_Section):
    enabled: bool = Field(True, description="write self-telemetry to the collector_metrics table")
    interval_seconds: float = Field(15.0, gt=0, description="how often the collector writes collector_metrics")


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error never echoes the input (the fingerprint key among it)
    model_config = SettingsConfigDict(
        env_prefix="FOOTHOLD_", env_nested_delimiter="__", extra="forbid", hide_input_in_errors=True
    )

    data_dir: Path = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "foothold"
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    fingerprint_key: SecretStr | None = Field(
        None,
        description="deployment HMAC key shared with the agents (FOOTHOLD_FINGERPRINT_KEY), so fingerprints correlate",
    )
    fingerprint_key_file: Path | None = Field(
        None,
        description=(
            "file holding fingerprint_key, read at start (FOOTHOLD_FINGERPRINT_KEY_FILE); not with fingerprint_key"
        ),
    )
    receivers: ReceiversConfig = ReceiversConfig()
    connections: ConnectionsConfig = ConnectionsConfig()
    batch: BatchConfig = BatchConfig()
    spool: SpoolConfig = SpoolConfig()
    limits: LimitsConfig = LimitsConfig()
    store: StoreConfig = StoreConfig()
    query_api: QueryApiConfig = QueryApiConfig()
    alerts: AlertsConfig = AlertsConfig()
    auth: AuthConfig = AuthConfig()
    tls: TlsConfig = TlsConfig()
    chain: ChainConfig = ChainConfig()
    metrics: MetricsConfig = MetricsConfig()
    retention: RetentionConfig = RetentionConfig()
    pipeline: PipelineConfig = PipelineConfig()
    processors: dict[str, dict[str, Any]] = Field(
        {}, description="each processor's own settings, by name (see pipeline.processors)"
    )

    @field_validator("processors")
    @classmethod
    def _processor_settings(cls, settings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Each processor's settings against its own model, so a typo names processors.<name>.<key>."""
        from foothold.collector.processors import REGISTRY

        for name, values in settings.items():
            if name not in REGISTRY:
                raise ValueError(f"unknown processor {name!r}; known: {', '.join(REGISTRY)}")
            model = REGISTRY[name].config_type()
            if model is None:
                raise ValueError(f"processor {name} takes no settings")
            try:
                model.model_validate(values)
            except ValidationError as exc:
                problems = "; ".join(
                    f"processors.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(problems) from None
        return settings

    @field_validator("auth")
    @classmethod
    def _no_open_network_listener(cls, auth: AuthConfig, info: ValidationInfo) -> AuthConfig:
        """A listener reachable from the network must not take data or queries from anyone."""
        if auth.enabled or auth.allow_unauthenticated:
            return auth
        receivers, query_api = info.data.get("receivers"), info.data.get("query_api")
        listeners = []
        if receivers is not None:
            listeners += [("receivers.grpc", receivers.grpc), ("receivers.http", receivers.http)]
        if query_api is not None:
            listeners.append(("query_api", query_api))
        exposed = [
            f"{key}.endpoint {listener.endpoint}"
            for key, listener in listeners
            if listener.enabled and not listener.address.is_loopback
        ]
        if exposed:
            raise ValueError(
                f"{'; '.join(exposed)} is not a loopback address and auth has no tokens, so anyone who can reach "
                "it could write spans or read the store. Add auth.tokens (`foothold-audit token new --name NAME` "
                "prints a token and its config line), or bind 127.0.0.1, or accept unauthenticated clients "
                "explicitly with auth.allow_unauthenticated: true (FOOTHOLD_AUTH__ALLOW_UNAUTHENTICATED=true)"
            )
        return auth

    @model_validator(mode="after")
    def _key_from_file(self) -> Settings:
        if self.fingerprint_key_file is None:
            return self
        from foothold.instrumentation.keys import read_key_file

        if self.fingerprint_key is not None:
            raise ValueError(
                "fingerprint_key (FOOTHOLD_FINGERPRINT_KEY) and fingerprint_key_file "
                "(FOOTHOLD_FINGERPRINT_KEY_FILE) are both set: keep one"
            )
        try:
            self.fingerprint_key = SecretStr(read_key_file(str(self.fingerprint_key_file)).decode())
        except UnicodeDecodeError:
            raise ValueError(f"fingerprint_key_file {self.fingerprint_key_file} does not hold UTF-8 text") from None
        except ValueError as exc:  # its message names FOOTHOLD_FINGERPRINT_KEY_FILE and the file, never the key
            raise ValueError(f"fingerprint_key_file: {exc}") from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file; the file's values arrive as init arguments.
        return env_settings, init_settings

    @property
    def chain_key_path(self) -> Path:
        return Path(self.chain.key_file or self.data_dir / "chain.key").expanduser()

    @property
    def chain_mirror_path(self) -> Path | None:
        if not self.chain.mirror:
            return None
        return Path(self.chain.mirror_file or self.data_dir / "chain-mirror.jsonl").expanduser()

    @property
    def store_dsn(self) -> str:
        return self.store.dsn or f"chdb://{(self.data_dir / 'store').resolve()}"


def _format_errors(error: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for item in error.errors():
        if not item["loc"]:  # a check across keys: its message names them
            lines.append(f"  {item['msg']}")
            continue
        key = ".".join(str(p) for p in item["loc"])
        env = "FOOTHOLD_" + "__".join(str(p).upper() for p in item["loc"])
        lines.append(f"  {key}: {item['msg']} (set it in the YAML file or with {env})")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (optional), apply env overrides and keyword overrides, validate."""
    values: dict[str, Any] = {}
    origin = "defaults and environment"
    if path is not None:
        origin = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} not found: pass an existing file with --config") from exc
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(loaded).__name__}")
        values = loaded or {}
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from exc
