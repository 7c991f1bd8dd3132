"""Schema version 4: AgentName falls back to gen_ai.agent.id when an agent sets no name (tool_calls and artifacts
views).

Frozen: stores ran exactly these statements. Never edit a released migration; add the next one.
"""

from foothold.collector.schema.migrations.steps import Migration, ModifyQuery

MIGRATION = Migration(
    version=4,
    description="AgentName falls back to gen_ai.agent.id when an agent sets no name (tool_calls and artifacts views)",
    steps=(
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
        multiIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 'Error', StatusCode IN ('Ok', 'STATUS_CODE_OK'),
            'Ok', 'Unset') AS Status,
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
        multiIf(SpanAttributes['foothold.credential.kind'] != '', SpanAttributes['foothold.credential.kind'],
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
        ServiceName, TraceId, SpanId, ParentSpanId
    FROM {source}
    WHERE ((SpanAttributes['gen_ai.operation.name'] = 'execute_tool' OR
        SpanAttributes['openinference.span.kind'] = 'TOOL' OR (SpanAttributes['mcp.method.name'] =
        'tools/call' AND multiIf(SpanKind IN ('Server', 'SPAN_KIND_SERVER'), 'Server', SpanKind IN ('Client',
        'SPAN_KIND_CLIENT'), 'Client', SpanKind IN ('Producer', 'SPAN_KIND_PRODUCER'), 'Producer', SpanKind IN
        ('Consumer', 'SPAN_KIND_CONSUMER'), 'Consumer', 'Internal') = 'Client')) AND NOT
        (SpanAttributes['mcp.method.name'] = 'tools/call' AND multiIf(SpanKind IN ('Server',
        'SPAN_KIND_SERVER'), 'Server', SpanKind IN ('Client', 'SPAN_KIND_CLIENT'), 'Client', SpanKind IN
        ('Producer', 'SPAN_KIND_PRODUCER'), 'Producer', SpanKind IN ('Consumer', 'SPAN_KIND_CONSUMER'),
        'Consumer', 'Internal') = 'Server' AND ParentSpanId != '') AND
        SpanAttributes['foothold.tool.call.duplicate_of'] = '')""",
        ),
        ModifyQuery(
            view="artifacts_mv",
            source="otel_traces",
            select="""
    SELECT
        Timestamp,
        multiIf(SpanAttributes['gen_ai.conversation.id'] != '', SpanAttributes['gen_ai.conversation.id'],
            SpanAttributes['mcp.session.id'] != '', SpanAttributes['mcp.session.id'],
            SpanAttributes['session.id'] != '', SpanAttributes['session.id'], TraceId) AS SessionId,
        SpanAttributes['gen_ai.agent.id'] AS AgentId,
        multiIf(SpanAttributes['gen_ai.agent.name'] != '', SpanAttributes['gen_ai.agent.name'],
            SpanAttributes['gen_ai.agent.id'] != '', SpanAttributes['gen_ai.agent.id'], '') AS AgentName,
        SpanAttributes['foothold.task.id'] AS TaskId,
        SpanAttributes['foothold.artifact.kind'] AS Kind,
        SpanAttributes['foothold.artifact.action'] AS Action,
        SpanAttributes['foothold.artifact.path'] AS Path,
        SpanAttributes['foothold.artifact.sha256'] AS Sha256,
        SpanAttributes['foothold.artifact.sha256.before'] AS Sha256Before,
        toUInt64OrZero(SpanAttributes['foothold.artifact.size']) AS Size,
        SpanAttributes['foothold.artifact.durable'] IN ('true', '1') AS Durable,
        SpanAttributes['foothold.artifact.source'] AS Source,
        SpanAttributes['foothold.persistence.kind'] AS PersistenceKind,
        SpanAttributes['foothold.persistence.target'] AS PersistenceTarget,
        SpanAttributes['foothold.persistence.technique'] AS Technique,
        SpanAttributes['foothold.persistence.evidence'] AS Evidence,
        ServiceName, TraceId, SpanId, ParentSpanId AS ToolSpanId
    FROM {source}
    WHERE SpanAttributes['foothold.artifact.kind'] != ''""",
        ),
    ),
)
