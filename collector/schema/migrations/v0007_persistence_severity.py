"""Schema version 7: tool_calls: PersistenceSeverity (the classifier's severity of the call's finding, low when the
written content is benign), so durable-write alerts can say so.

Frozen: stores ran exactly these statements. Never edit a released migration; add the next one.
"""

from foothold.collector.schema.migrations.steps import AlterTable, Migration, ModifyQuery

MIGRATION = Migration(
    version=7,
    description=(
        "tool_calls: PersistenceSeverity (the classifier's severity of the call's finding, low when the "
        "written content is benign), so durable-write alerts can say so"
    ),
    steps=(
        AlterTable(
            table="tool_calls",
            clause="ADD COLUMN IF NOT EXISTS PersistenceSeverity LowCardinality(String) CODEC(ZSTD(1)) AFTER Outcome",
            distributed=True,
        ),
        ModifyQuery(
            view="tool_calls_mv",
            source="otel_traces",
            select=r"""
    SELECT
        Timestamp,
        multiIf(SpanAttributes['gen_ai.conversation.id'] != '', SpanAttributes['gen_ai.conversation.id'],
            SpanAttributes['mcp.session.id'] != '', SpanAttributes['mcp.session.id'],
            SpanAttributes['session.id'] != '', SpanAttributes['session.id'], TraceId) AS SessionId,
        SpanAttributes['gen_ai.agent.id'] AS AgentId,
        multiIf(SpanAttributes['gen_ai.agent.name'] != '', SpanAttributes['gen_ai.agent.name'],
            SpanAttributes['gen_ai.agent.id'] != '', SpanAttributes['gen_ai.agent.id'], '') AS AgentName,
        SpanAttributes['foothold.task.id'] AS TaskId,
        SpanAttributes['gen_ai.conversation.id'] AS ConversationId,
        multiIf(SpanAttributes['gen_ai.tool.name'] != '', SpanAttributes['gen_ai.tool.name'],
            SpanAttributes['tool.name'] != '', SpanAttributes['tool.name'], SpanName) AS ToolName,
        SpanAttributes['gen_ai.tool.call.id'] AS ToolCallId,
        SpanAttributes['gen_ai.tool.type'] AS ToolType,
        multiIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 'Error', StatusCode IN ('Ok',
            'STATUS_CODE_OK'), 'Ok', 'Unset') AS Status,
        SpanAttributes['error.type'] AS ErrorType,
        Duration AS DurationNs,
        multiIf(SpanAttributes['gen_ai.tool.call.arguments'] != '',
            SpanAttributes['gen_ai.tool.call.arguments'], SpanAttributes['input.value'] != '',
            SpanAttributes['input.value'], '') AS Arguments,
        SpanAttributes['foothold.cwd'] AS Cwd,
        multiIf(SpanAttributes['foothold.credential.fingerprint'] != '',
            SpanAttributes['foothold.credential.fingerprint'],
            extractGroups(multiIf(SpanAttributes['gen_ai.tool.call.arguments'] != '',
            SpanAttributes['gen_ai.tool.call.arguments'], SpanAttributes['input.value'] != '',
            SpanAttributes['input.value'], ''), '\\[REDACTED:([a-z0-9_]+):fp=([0-9a-f]{16})\\]')[2]) AS
            CredentialFingerprint,
        multiIf(SpanAttributes['foothold.credential.kind'] != '',
            SpanAttributes['foothold.credential.kind'],
            extractGroups(multiIf(SpanAttributes['gen_ai.tool.call.arguments'] != '',
            SpanAttributes['gen_ai.tool.call.arguments'], SpanAttributes['input.value'] != '',
            SpanAttributes['input.value'], ''), '\\[REDACTED:([a-z0-9_]+):fp=([0-9a-f]{16})\\]')[1]) AS
            CredentialKind,
        SpanAttributes['foothold.credential.task.id'] AS CredentialTaskId,
        SpanAttributes['foothold.credential.issued_to'] AS CredentialIssuedTo,
        parseDateTime64BestEffortOrNull(SpanAttributes['foothold.credential.expires_at'], 3) AS
            CredentialExpiresAt,
        SpanAttributes['foothold.persistence.kind'] AS PersistenceKind,
        SpanAttributes['foothold.persistence.target'] AS PersistenceTarget,
        SpanAttributes['foothold.persistence.technique'] AS Technique,
        SpanAttributes['foothold.persistence.evidence'] AS Evidence,
        arrayFilter(c -> c != '', splitByChar(',', SpanAttributes['foothold.tool.categories'])) AS
            ToolCategories,
        arrayExists((n, a) -> n = 'foothold.human_checkpoint' AND a['foothold.checkpoint.decision'] !=
            'denied', Events.Name, Events.Attributes) AS HumanCheckpoint,
        SpanAttributes['foothold.sender'] AS Sender,
        ServiceName, TraceId, SpanId, ParentSpanId,
        multiIf(SpanAttributes['foothold.tool.decision'] != '', SpanAttributes['foothold.tool.decision'],
            arrayExists((n, a) -> n = 'foothold.human_checkpoint' AND a['foothold.checkpoint.decision'] =
            'denied', Events.Name, Events.Attributes), 'reject', '') AS Decision,
        multiIf(SpanAttributes['foothold.tool.decision.source'] != '',
            SpanAttributes['foothold.tool.decision.source'], SpanAttributes['foothold.tool.decision'] = '',
            arrayFirst(a -> a['foothold.checkpoint.decision'] = 'denied', arrayFilter((a, n) -> n =
            'foothold.human_checkpoint', Events.Attributes, Events.Name))['foothold.checkpoint.approver'],
            '') AS DecisionSource,
        SpanAttributes['foothold.tool.call.source'] AS Source,
        SpanAttributes['foothold.credential.shared'] IN ('true', '1') AS CredentialShared,
        multiIf(multiIf(SpanAttributes['foothold.tool.decision'] != '',
            SpanAttributes['foothold.tool.decision'], arrayExists((n, a) -> n = 'foothold.human_checkpoint'
            AND a['foothold.checkpoint.decision'] = 'denied', Events.Name, Events.Attributes), 'reject', '')
            = 'reject', 'denied', multiIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 'Error', StatusCode
            IN ('Ok', 'STATUS_CODE_OK'), 'Ok', 'Unset') = 'Error' OR SpanAttributes['process.exit.code'] NOT
            IN ('', '0'), 'failed', 'ok') AS Outcome,
        SpanAttributes['foothold.persistence.severity'] AS PersistenceSeverity
    FROM {source}
    WHERE ((SpanAttributes['gen_ai.operation.name'] = 'execute_tool' OR
        SpanAttributes['openinference.span.kind'] = 'TOOL' OR (SpanAttributes['mcp.method.name'] =
        'tools/call' AND multiIf(SpanKind IN ('Server', 'SPAN_KIND_SERVER'), 'Server', SpanKind IN
        ('Client', 'SPAN_KIND_CLIENT'), 'Client', SpanKind IN ('Producer', 'SPAN_KIND_PRODUCER'),
        'Producer', SpanKind IN ('Consumer', 'SPAN_KIND_CONSUMER'), 'Consumer', 'Internal') = 'Client')) AND
        NOT (SpanAttributes['mcp.method.name'] = 'tools/call' AND multiIf(SpanKind IN ('Server',
        'SPAN_KIND_SERVER'), 'Server', SpanKind IN ('Client', 'SPAN_KIND_CLIENT'), 'Client', SpanKind IN
        ('Producer', 'SPAN_KIND_PRODUCER'), 'Producer', SpanKind IN ('Consumer', 'SPAN_KIND_CONSUMER'),
        'Consumer', 'Internal') = 'Server' AND ParentSpanId != '') AND
        SpanAttributes['foothold.tool.call.duplicate_of'] = '')""",
        ),
        ModifyQuery(
            view="tool_calls_from_logs_mv",
            source="otel_logs",
            select=r"""
    SELECT
        Timestamp,
        multiIf(LogAttributes['gen_ai.conversation.id'] != '', LogAttributes['gen_ai.conversation.id'],
            LogAttributes['mcp.session.id'] != '', LogAttributes['mcp.session.id'],
            LogAttributes['session.id'] != '', LogAttributes['session.id'], TraceId) AS SessionId,
        LogAttributes['gen_ai.agent.id'] AS AgentId,
        multiIf(LogAttributes['gen_ai.agent.name'] != '', LogAttributes['gen_ai.agent.name'],
            LogAttributes['gen_ai.agent.id'] != '', LogAttributes['gen_ai.agent.id'], '') AS AgentName,
        LogAttributes['foothold.task.id'] AS TaskId,
        LogAttributes['gen_ai.conversation.id'] AS ConversationId,
        LogAttributes['gen_ai.tool.name'] AS ToolName,
        LogAttributes['gen_ai.tool.call.id'] AS ToolCallId,
        LogAttributes['gen_ai.tool.type'] AS ToolType,
        multiIf(LogAttributes['error.type'] != '', 'Error', LogAttributes['foothold.tool.decision'] =
            'reject', 'Unset', 'Ok') AS Status,
        LogAttributes['error.type'] AS ErrorType,
        toUInt64OrZero(LogAttributes['foothold.duration_ns']) AS DurationNs,
        LogAttributes['gen_ai.tool.call.arguments'] AS Arguments,
        LogAttributes['foothold.cwd'] AS Cwd,
        multiIf(LogAttributes['foothold.credential.fingerprint'] != '',
            LogAttributes['foothold.credential.fingerprint'],
            extractGroups(LogAttributes['gen_ai.tool.call.arguments'],
            '\\[REDACTED:([a-z0-9_]+):fp=([0-9a-f]{16})\\]')[2]) AS CredentialFingerprint,
        multiIf(LogAttributes['foothold.credential.kind'] != '', LogAttributes['foothold.credential.kind'],
            extractGroups(LogAttributes['gen_ai.tool.call.arguments'],
            '\\[REDACTED:([a-z0-9_]+):fp=([0-9a-f]{16})\\]')[1]) AS CredentialKind,
        LogAttributes['foothold.credential.task.id'] AS CredentialTaskId,
        LogAttributes['foothold.credential.issued_to'] AS CredentialIssuedTo,
        parseDateTime64BestEffortOrNull(LogAttributes['foothold.credential.expires_at'], 3) AS
            CredentialExpiresAt,
        LogAttributes['foothold.persistence.kind'] AS PersistenceKind,
        LogAttributes['foothold.persistence.target'] AS PersistenceTarget,
        LogAttributes['foothold.persistence.technique'] AS Technique,
        LogAttributes['foothold.persistence.evidence'] AS Evidence,
        arrayFilter(c -> c != '', splitByChar(',', LogAttributes['foothold.tool.categories'])) AS
            ToolCategories,
        false AS HumanCheckpoint,
        LogAttributes['foothold.sender'] AS Sender,
        ServiceName, TraceId, if(LogAttributes['gen_ai.tool.call.id'] != '', concat('call:',
            LogAttributes['gen_ai.tool.call.id']), hex(cityHash64(LogAttributes, Timestamp, Body))) AS
            SpanId, '' AS ParentSpanId,
        LogAttributes['foothold.tool.decision'] AS Decision,
        LogAttributes['foothold.tool.decision.source'] AS DecisionSource,
        LogAttributes['foothold.tool.call.source'] AS Source,
        LogAttributes['foothold.credential.shared'] IN ('true', '1') AS CredentialShared,
        multiIf(LogAttributes['foothold.tool.decision'] = 'reject', 'denied',
            multiIf(LogAttributes['error.type'] != '', 'Error', LogAttributes['foothold.tool.decision'] =
            'reject', 'Unset', 'Ok') = 'Error' OR LogAttributes['process.exit.code'] NOT IN ('', '0'),
            'failed', 'ok') AS Outcome,
        LogAttributes['foothold.persistence.severity'] AS PersistenceSeverity
    FROM {source}
    WHERE (LogAttributes['gen_ai.operation.name'] = 'execute_tool' AND
        LogAttributes['foothold.tool.call.duplicate_of'] = '')""",
        ),
    ),
    fingerprint="3ff5f4635b074079",
)
