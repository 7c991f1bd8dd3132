"""Schema version 3: insert deduplication window on otel_traces and the tables its views fill (idempotent spool
replay).

Frozen: stores ran exactly these statements. Never edit a released migration; add the next one.
"""

from foothold.collector.schema.migrations.steps import AlterTable, Migration

MIGRATION = Migration(
    version=3,
    description="insert deduplication window on otel_traces and the tables its views fill (idempotent spool replay)",
    steps=(
        AlterTable(table="otel_traces", clause="MODIFY SETTING non_replicated_deduplication_window = 1000"),
        AlterTable(table="otel_traces_trace_id_ts", clause="MODIFY SETTING non_replicated_deduplication_window = 1000"),
        AlterTable(table="tool_calls", clause="MODIFY SETTING non_replicated_deduplication_window = 1000"),
        AlterTable(table="artifacts", clause="MODIFY SETTING non_replicated_deduplication_window = 1000"),
    ),
)
