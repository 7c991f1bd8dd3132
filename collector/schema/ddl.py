"""The schema, defined once and rendered for a single node or a cluster.

``otel_traces`` and ``otel_traces_trace_id_ts`` match the OpenTelemetry Collector contrib ClickHouse
exporter column for column (types, ORDER BY, partitioning), so otelcol-contrib can write into the same
tables. Foothold's audit tables are filled from ``otel_traces`` by materialized views, whoever wrote the
span.

Cluster rendering: each table ``T`` becomes ``T_local`` (Replicated engine, ``ON CLUSTER``) plus ``T``, a
Distributed table over it sharded by session, and each view reads and writes the ``_local`` tables so
every shard projects its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from foothold import semconv
from foothold.collector.schema import sql
from foothold.collector.schema.sql import attr

TRACES = "otel_traces"
LOGS = "otel_logs"
TRACE_ID_TS = "otel_traces_trace_id_ts"
TOOL_CALLS = "tool_calls"
ARTIFACTS = "artifacts"
ALERTS = "alerts"
ALERT_DELIVERIES = "alert_deliveries"
EXPORT_CHAIN = "export_chain"
COLLECTOR_METRICS = "collector_metrics"

# Idempotent exports (collector/spool.py): a batch re-inserted after a crash carries the same
# insert_deduplication_token and is dropped. Plain MergeTree tables only deduplicate with a window;
# the views' targets need it too (with deduplicate_blocks_in_dependent_materialized_views=1 on the
# insert), or tool_calls/artifacts would get the replayed rows twice. Replicated tables deduplicate by
# default (replicated_deduplication_window); the setting is harmless there. A table setting, not a
# column: otel_traces stays column-for-column the OpenTelemetry Collector exporter's table.
DEDUPLICATION_WINDOW = 1000  # inserts remembered per table; a replay re-inserts at most the last one
_DEDUPLICATED = f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"


@dataclass(frozen=True)
class Table:
    name: str
    body: str  # column and index definitions
    order_by: str
    partition_by: str
    shard_key: str
    engine: str = "MergeTree"
    engine_args: str = ""  # e.g. the version column of a ReplacingMergeTree
    settings: str = "index_granularity = 8192, ttl_only_drop_parts = 1"
    # Retention (collector/schema/retention.py): which `retention.*_days` setting expires this table's rows,
    # by which time column. Empty: kept forever.
    retention: str = ""
    ttl_column: str = ""
    primary_key: str = ""  # a prefix of order_by, when the table's primary key is shorter (otel_logs)


@dataclass(frozen=True)
class View:
    """A materialized view from ``source`` into ``target``; ``select`` names ``{source}``."""

    name: str
    source: str
    target: str
    select: str


@dataclass(frozen=True)
class Topology:
    """Where the schema lives: a database on one node, or on a named cluster.

    ``replicated=False`` is a sharded cluster without Keeper: plain MergeTree engines and no ``ON CLUSTER``
    (the DDL is applied on each node). Nothing else changes, so the Distributed tables and every query take
    the same path as on a replicated cluster (the two-shard chDB test runs this way).
    """

    database: str = "foothold"
    cluster: str | None = None
    replicated: bool = True

    def local(self, name: str) -> str:
        return f"{name}_local" if self.cluster else name

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster and self.replicated else ""


TRACES_TABLE = Table(
    name=TRACES,
    body="""
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1""",
    order_by="(ServiceName, SpanName, toDateTime(Timestamp))",
    partition_by="toDate(Timestamp)",
    shard_key=f"cityHash64({sql.SESSION_ID})",
    settings=f"index_granularity = 8192, ttl_only_drop_parts = 1, {_DEDUPLICATED}",
    retention="spans",
    ttl_column="Timestamp",
)

# The contrib exporter's logs table (exporter/clickhouseexporter/internal/sqltemplates/logs_table.sql),
# column for column. Agents' native telemetry (Claude Code, Codex CLI, Gemini CLI) arrives as these logs.
LOGS_TABLE = Table(
    name=LOGS,
    body="""
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8""",
    order_by="(ServiceName, TimestampTime, Timestamp)",
    primary_key="(ServiceName, TimestampTime)",
    partition_by="toDate(TimestampTime)",
    shard_key=f"cityHash64({sql.session_id(sql.LOG_ATTRIBUTES)})",
    settings=f"index_granularity = 8192, ttl_only_drop_parts = 1, {_DEDUPLICATED}",
    retention="spans",  # raw telemetry, kept as long as the spans
    ttl_column="TimestampTime",
)

TRACE_ID_TS_TABLE = Table(
    name=TRACE_ID_TS,
    body="""
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1""",
    order_by="(TraceId, Start)",
    partition_by="toDate(Start)",
    shard_key="cityHash64(TraceId)",
    settings=f"index_granularity = 8192, ttl_only_drop_parts = 1, {_DEDUPLICATED}",
    retention="spans",
    ttl_column="End",
)

# Audit tables: sorted by session then time, so a timeline reads one contiguous range. Replacing
# engines fold the copies a retried insert could leave, keyed on the span.
TOOL_CALLS_TABLE = Table(
    name=TOOL_CALLS,
    body="""
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    ConversationId String CODEC(ZSTD(1)),
    AgentId LowCardinality(String) CODEC(ZSTD(1)),
    AgentName LowCardinality(String) CODEC(ZSTD(1)),
    TaskId String CODEC(ZSTD(1)),
    ToolName LowCardinality(String) CODEC(ZSTD(1)),
    ToolCallId String CODEC(ZSTD(1)),
    ToolType LowCardinality(String) CODEC(ZSTD(1)),
    Status LowCardinality(String) CODEC(ZSTD(1)),
    ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    DurationNs UInt64 CODEC(ZSTD(1)),
    Arguments String CODEC(ZSTD(3)),
    Cwd String CODEC(ZSTD(1)),
    CredentialFingerprint String CODEC(ZSTD(1)),
    CredentialKind LowCardinality(String) CODEC(ZSTD(1)),
    CredentialTaskId String CODEC(ZSTD(1)),
    CredentialIssuedTo String CODEC(ZSTD(1)),
    CredentialExpiresAt Nullable(DateTime64(3)) CODEC(ZSTD(1)),
    PersistenceKind LowCardinality(String) CODEC(ZSTD(1)),
    PersistenceTarget String CODEC(ZSTD(1)),
    Technique LowCardinality(String) CODEC(ZSTD(1)),
    Evidence String CODEC(ZSTD(1)),
    ToolCategories Array(LowCardinality(String)) CODEC(ZSTD(1)),
    HumanCheckpoint Bool,
    Sender LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    Decision LowCardinality(String) CODEC(ZSTD(1)),
    DecisionSource LowCardinality(String) CODEC(ZSTD(1)),
    Source LowCardinality(String) CODEC(ZSTD(1)),
    CredentialShared Bool,
    Outcome LowCardinality(String) CODEC(ZSTD(1)),
    PersistenceSeverity LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_agent AgentName TYPE set(256) GRANULARITY 4,
    INDEX idx_tool ToolName TYPE set(256) GRANULARITY 4,
    INDEX idx_fingerprint CredentialFingerprint TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1""",
    order_by="(SessionId, Timestamp, SpanId)",
    partition_by="toYYYYMM(Timestamp)",
    shard_key="cityHash64(SessionId)",
    engine="ReplacingMergeTree",
    settings=f"index_granularity = 8192, {_DEDUPLICATED}",
    retention="tool_calls",
    ttl_column="Timestamp",
)

ARTIFACTS_TABLE = Table(
    name=ARTIFACTS,
    body="""
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    AgentId LowCardinality(String) CODEC(ZSTD(1)),
    AgentName LowCardinality(String) CODEC(ZSTD(1)),
    TaskId String CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Action LowCardinality(String) CODEC(ZSTD(1)),
    Path String CODEC(ZSTD(1)),
    Sha256 String CODEC(ZSTD(1)),
    Sha256Before String CODEC(ZSTD(1)),
    Size UInt64 CODEC(ZSTD(1)),
    Durable Bool,
    Source LowCardinality(String) CODEC(ZSTD(1)),
    PersistenceKind LowCardinality(String) CODEC(ZSTD(1)),
    PersistenceTarget String CODEC(ZSTD(1)),
    Technique LowCardinality(String) CODEC(ZSTD(1)),
    Evidence String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ToolSpanId String CODEC(ZSTD(1)),
    INDEX idx_path Path TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_technique Technique TYPE set(128) GRANULARITY 4""",
    order_by="(SessionId, Timestamp, SpanId)",
    partition_by="toYYYYMM(Timestamp)",
    shard_key="cityHash64(SessionId)",
    engine="ReplacingMergeTree",
    settings=f"index_granularity = 8192, {_DEDUPLICATED}",
    retention="artifacts",
    ttl_column="Timestamp",
)

# One row per finding, written once by the alert evaluator (the key makes a re-run a no-op).
ALERTS_TABLE = Table(
    name=ALERTS,
    body="""
    RaisedAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    RuleId LowCardinality(String) CODEC(ZSTD(1)),
    Severity LowCardinality(String) CODEC(ZSTD(1)),
    Title String CODEC(ZSTD(1)),
    FindingKey String CODEC(ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    AgentName LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    SeenAt DateTime64(9) CODEC(Delta, ZSTD(1)),
    Technique LowCardinality(String) CODEC(ZSTD(1)),
    Evidence String CODEC(ZSTD(1)),
    Outcome LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_session SessionId TYPE bloom_filter(0.01) GRANULARITY 1""",
    order_by="(RuleId, FindingKey)",
    partition_by="toYYYYMM(RaisedAt)",
    shard_key="cityHash64(SessionId)",
    engine="ReplacingMergeTree",
    settings="index_granularity = 8192",
    retention="alerts",
    ttl_column="RaisedAt",
)

# Which alert went to which sink: delivery is retried until recorded here, and never repeated after.
ALERT_DELIVERIES_TABLE = Table(
    name=ALERT_DELIVERIES,
    body="""
    DeliveredAt DateTime64(3) DEFAULT now64(3),
    Sink LowCardinality(String),
    RuleId LowCardinality(String),
    FindingKey String""",
    order_by="(Sink, RuleId, FindingKey)",
    partition_by="tuple()",
    shard_key="cityHash64(FindingKey)",
    engine="ReplacingMergeTree",
    settings="index_granularity = 8192",
    retention="alerts",
    ttl_column="DeliveredAt",
)

# Tamper evidence: one link per exported batch of otel_traces rows (collector/chain.py, `foothold-audit verify`).
# A plain MergeTree: nothing here is ever replaced or merged away, a duplicate link is itself evidence.
EXPORT_CHAIN_TABLE = Table(
    name=EXPORT_CHAIN,
    body="""
    Chain LowCardinality(String),
    Sequence UInt64,
    ExportedAt DateTime64(3),
    Rows UInt32,
    MinTimestamp DateTime64(9),
    MaxTimestamp DateTime64(9),
    TraceIds Array(String) CODEC(ZSTD(1)),
    SpanIds Array(String) CODEC(ZSTD(1)),
    RowDigests Array(String) CODEC(ZSTD(1)),
    BatchDigest String,
    PrevDigest String,
    ChainDigest String""",
    order_by="(Chain, Sequence)",
    partition_by="tuple()",
    shard_key="cityHash64(Chain)",
    settings="index_granularity = 8192",
    retention="chain",
    ttl_column="ExportedAt",
)

# Self-telemetry, written by the collector every metrics.interval_seconds (Grafana panels read it as is).
COLLECTOR_METRICS_TABLE = Table(
    name=COLLECTOR_METRICS,
    body="""
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    Name LowCardinality(String),
    Value Float64 CODEC(ZSTD(1)),
    Labels Map(LowCardinality(String), String) CODEC(ZSTD(1))""",
    order_by="(Name, Timestamp)",
    partition_by="toYYYYMM(Timestamp)",
    shard_key="cityHash64(Name)",
    settings="index_granularity = 8192",
    retention="metrics",
    ttl_column="Timestamp",
)

TRACE_ID_TS_VIEW = View(
    name=f"{TRACE_ID_TS}_mv",
    source=TRACES,
    target=TRACE_ID_TS,
    select="""
    SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
    FROM {source}
    WHERE TraceId != ''
    GROUP BY TraceId""",
)

_CONTEXT_COLUMNS = f"""
        {sql.SESSION_ID} AS SessionId,
        {attr(semconv.GEN_AI_AGENT_ID)} AS AgentId,
        {sql.AGENT_NAME} AS AgentName,
        {attr(semconv.TASK_ID)} AS TaskId"""


def _tool_calls_select(column: str) -> str:
    """The tool_calls projection of spans (``SpanAttributes``) or normalised native events (``LogAttributes``)."""
    logs = column == sql.LOG_ATTRIBUTES

    def a(key: str) -> str:
        return attr(key, column)

    context = f"""
        {sql.session_id(column)} AS SessionId,
        {a(semconv.GEN_AI_AGENT_ID)} AS AgentId,
        {sql.agent_name(column)} AS AgentName,
        {a(semconv.TASK_ID)} AS TaskId"""
    if logs:  # the normaliser wrote the GenAI names; a log has no status, duration or parent columns
        name, arguments = a(semconv.GEN_AI_TOOL_NAME), a(semconv.GEN_AI_TOOL_CALL_ARGUMENTS)
        status = (
            f"multiIf({a(semconv.ERROR_TYPE)} != '', 'Error', {a(semconv.TOOL_DECISION)} = 'reject', 'Unset', 'Ok')"
        )
        duration, checkpoint = f"toUInt64OrZero({a(semconv.DURATION_NS)})", "false"
        # A record is no span: its row key is the call (else the record's content), so two calls logged at
        # one instant stay two rows of the replacing table.
        call_id = a(semconv.GEN_AI_TOOL_CALL_ID)
        span_id = f"if({call_id} != '', concat('call:', {call_id}), hex(cityHash64(LogAttributes, Timestamp, Body)))"
        ids = f"{span_id} AS SpanId, '' AS ParentSpanId"
        where = sql.IS_LOGGED_TOOL_CALL
    else:
        name, arguments, status = sql.TOOL_NAME, sql.TOOL_ARGUMENTS, sql.STATUS
        duration, checkpoint, ids, where = (
            "Duration",
            sql.HAS_HUMAN_CHECKPOINT,
            "SpanId, ParentSpanId",
            sql.IS_TOOL_CALL,
        )
    # Declared on the call, else seen in its arguments (a redaction marker): both are uses of the credential.
    fingerprint = sql.first_non_empty(a(semconv.CREDENTIAL_FINGERPRINT), sql.seen_credential(arguments, 2))
    kind = sql.first_non_empty(a(semconv.CREDENTIAL_KIND), sql.seen_credential(arguments, 1))
    return f"""
    SELECT
        Timestamp,{context},
        {a(semconv.GEN_AI_CONVERSATION_ID)} AS ConversationId,
        {name} AS ToolName,
        {a(semconv.GEN_AI_TOOL_CALL_ID)} AS ToolCallId,
        {a(semconv.GEN_AI_TOOL_TYPE)} AS ToolType,
        {status} AS Status,
        {a(semconv.ERROR_TYPE)} AS ErrorType,
        {duration} AS DurationNs,
        {arguments} AS Arguments,
        {a(semconv.CWD)} AS Cwd,
        {fingerprint} AS CredentialFingerprint,
        {kind} AS CredentialKind,
        {a(semconv.CREDENTIAL_TASK_ID)} AS CredentialTaskId,
        {a(semconv.CREDENTIAL_ISSUED_TO)} AS CredentialIssuedTo,
        parseDateTime64BestEffortOrNull({a(semconv.CREDENTIAL_EXPIRES_AT)}, 3) AS CredentialExpiresAt,
        {a(semconv.PERSISTENCE_KIND)} AS PersistenceKind,
        {a(semconv.PERSISTENCE_TARGET)} AS PersistenceTarget,
        {a(semconv.PERSISTENCE_TECHNIQUE)} AS Technique,
        {a(semconv.PERSISTENCE_EVIDENCE)} AS Evidence,
        arrayFilter(c -> c != '', splitByChar(',', {a(semconv.TOOL_CATEGORIES)})) AS ToolCategories,
        {checkpoint} AS HumanCheckpoint,
        {a(semconv.SENDER)} AS Sender,
        ServiceName, TraceId, {ids},
        {sql.decision(column)} AS Decision,
        {sql.decision_source(column)} AS DecisionSource,
        {a(semconv.TOOL_CALL_SOURCE)} AS Source,
        {a(semconv.CREDENTIAL_SHARED)} IN ('true', '1') AS CredentialShared,
        {sql.outcome(column, status)} AS Outcome,
        {a(semconv.PERSISTENCE_SEVERITY)} AS PersistenceSeverity
    FROM {{source}}
    WHERE {where}"""


TOOL_CALLS_VIEW = View(
    name=f"{TOOL_CALLS}_mv", source=TRACES, target=TOOL_CALLS, select=_tool_calls_select(sql.SPAN_ATTRIBUTES)
)

# Native tool events (otel_logs) the collector normalised into the GenAI tool-call attributes
# (processors/native.py) land in the same table through the same projection. What a tool call is stays
# decided in one place: the normaliser names it with the GenAI attributes, and the views read those.
TOOL_CALLS_FROM_LOGS_VIEW = View(
    name=f"{TOOL_CALLS}_from_logs_mv", source=LOGS, target=TOOL_CALLS, select=_tool_calls_select(sql.LOG_ATTRIBUTES)
)

ARTIFACTS_VIEW = View(
    name=f"{ARTIFACTS}_mv",
    source=TRACES,
    target=ARTIFACTS,
    select=f"""
    SELECT
        Timestamp,{_CONTEXT_COLUMNS},
        {attr(semconv.ARTIFACT_KIND)} AS Kind,
        {attr(semconv.ARTIFACT_ACTION)} AS Action,
        {attr(semconv.ARTIFACT_PATH)} AS Path,
        {attr(semconv.ARTIFACT_SHA256)} AS Sha256,
        {attr(semconv.ARTIFACT_SHA256_BEFORE)} AS Sha256Before,
        toUInt64OrZero({attr(semconv.ARTIFACT_SIZE)}) AS Size,
        {attr(semconv.ARTIFACT_DURABLE)} IN ('true', '1') AS Durable,
        {attr(semconv.ARTIFACT_SOURCE)} AS Source,
        {attr(semconv.PERSISTENCE_KIND)} AS PersistenceKind,
        {attr(semconv.PERSISTENCE_TARGET)} AS PersistenceTarget,
        {attr(semconv.PERSISTENCE_TECHNIQUE)} AS Technique,
        {attr(semconv.PERSISTENCE_EVIDENCE)} AS Evidence,
        ServiceName, TraceId, SpanId, ParentSpanId AS ToolSpanId
    FROM {{source}}
    WHERE {sql.IS_ARTIFACT}""",
)


# The current schema, in creation order (a view after its source and target). A new store is created from
# this; an existing one is brought here by the frozen migrations (collector/schema/migrations/), and
# tests/test_migrations.py checks both end equal. Change it, then add a migration: that test says how.
SCHEMA: tuple[Table | View, ...] = (
    TRACES_TABLE,
    TRACE_ID_TS_TABLE,
    TRACE_ID_TS_VIEW,
    TOOL_CALLS_TABLE,
    TOOL_CALLS_VIEW,
    ARTIFACTS_TABLE,
    ARTIFACTS_VIEW,
    ALERTS_TABLE,
    ALERT_DELIVERIES_TABLE,
    EXPORT_CHAIN_TABLE,
    COLLECTOR_METRICS_TABLE,
    LOGS_TABLE,
    TOOL_CALLS_FROM_LOGS_VIEW,
)


def render_schema(topo: Topology) -> list[str]:
    """Every CREATE statement of the current schema, for a new store on this topology."""
    out: list[str] = []
    for obj in SCHEMA:
        out += render_table(obj, topo) if isinstance(obj, Table) else render_view(obj, topo)
    return out


def render_table(table: Table, topo: Topology) -> list[str]:
    """CREATE statements for one table: itself, or its local table and a Distributed table over it.

    Migrations render their tables with a frozen copy of this (migrations/steps.py: a released version must
    never change); tests/test_migrations.py fails if the two ever create different tables."""
    db = topo.database
    local = topo.local(table.name)
    if topo.cluster and topo.replicated:
        zk_path = f"'/clickhouse/tables/{{shard}}/{db}/{local}'"
        args = ", ".join(a for a in (zk_path, "'{replica}'", table.engine_args) if a)
        engine = f"Replicated{table.engine}({args})"
    else:
        engine = f"{table.engine}({table.engine_args})"
    statements = [
        f"CREATE TABLE IF NOT EXISTS {db}.{local}{topo.on_cluster} ({table.body}\n)\n"
        f"ENGINE = {engine}\nPARTITION BY {table.partition_by}\n"
        + (f"PRIMARY KEY {table.primary_key}\n" if table.primary_key else "")
        + f"ORDER BY {table.order_by}\n"
        f"SETTINGS {table.settings}"
    ]
    if topo.cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{table.name}{topo.on_cluster} AS {db}.{local}\n"
            f"ENGINE = Distributed('{topo.cluster}', '{db}', '{local}', {table.shard_key})"
        )
    return statements


def render_view(view: View, topo: Topology) -> list[str]:
    db = topo.database
    select = view.select.format(source=f"{db}.{topo.local(view.source)}")
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view.name}{topo.on_cluster}\n"
        f"TO {db}.{topo.local(view.target)} AS{select}"
    ]
