"""Schema version 2: export_chain (tamper-evident hash chain over exported batches) and collector_metrics (self-
telemetry).

Frozen: stores ran exactly these statements. Never edit a released migration; add the next one.
"""

from foothold.collector.schema.migrations.steps import CreateTable, Migration

MIGRATION = Migration(
    version=2,
    description=(
        "export_chain (tamper-evident hash chain over exported batches) and collector_metrics (self-telemetry)"
    ),
    steps=(
        CreateTable(
            name="export_chain",
            columns="""
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
        ),
        CreateTable(
            name="collector_metrics",
            columns="""
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    Name LowCardinality(String),
    Value Float64 CODEC(ZSTD(1)),
    Labels Map(LowCardinality(String), String) CODEC(ZSTD(1))""",
            order_by="(Name, Timestamp)",
            partition_by="toYYYYMM(Timestamp)",
            shard_key="cityHash64(Name)",
        ),
    ),
)
