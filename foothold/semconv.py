"""Every span attribute, event and span name Foothold reads or writes: the one list.

Order of precedence: the OpenTelemetry GenAI conventions (``gen_ai.*``), then the MCP conventions
(``mcp.*``), then Foothold's own (``foothold.*``). The instrumentation writes these names, the collector's
schema and processors read them, and README.md documents them (tests/test_semconv.py keeps the README's
table in step with this module).
"""

from __future__ import annotations

# --- OpenTelemetry GenAI conventions -------------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
OPERATION_EXECUTE_TOOL = "execute_tool"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"  # opt-in content, redacted before export
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"  # opt-in content, redacted before export
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
ERROR_TYPE = "error.type"
# OpenTelemetry's process attribute: a shell tool's exit status (non-zero: the call failed).
PROCESS_EXIT_CODE = "process.exit.code"

# --- MCP conventions -----------------------------------------------------------------------------------
MCP_METHOD_NAME = "mcp.method.name"
MCP_SESSION_ID = "mcp.session.id"
JSONRPC_REQUEST_ID = "jsonrpc.request.id"

# --- Foothold ------------------------------------------------------------------------------------------
TASK_ID = "foothold.task.id"
# Span marking that a task ended (instrumentation/context.py end_task): the task is its foothold.task.id,
# the end its start time. Credential rules read it; a task with no such span has no known end.
TASK_END_SPAN = "foothold.task.end"
CWD = "foothold.cwd"  # working directory a tool call's relative paths resolve against
HOME = "foothold.home"  # what `~` means for this agent, so ~/.ssh/... is recognised wherever home is
SENDER = "foothold.sender"  # identity of the authenticated sender, set by the collector
# set by the collector on a span it moved to the receive time (start outside limits.max_span_age_days/_future_seconds)
ORIGINAL_START_TIME = "foothold.original_start_time_unix_nano"

ARTIFACT_KIND = "foothold.artifact.kind"  # file | process | connection | account | credential
ARTIFACT_ACTION = "foothold.artifact.action"  # create | modify | delete | rename | chmod | exec | connect
ARTIFACT_PATH = "foothold.artifact.path"  # file path, command line or network target
ARTIFACT_SHA256 = "foothold.artifact.sha256"  # content hash after the change
ARTIFACT_SHA256_BEFORE = "foothold.artifact.sha256.before"
ARTIFACT_SIZE = "foothold.artifact.size"
ARTIFACT_DURABLE = "foothold.artifact.durable"  # survives the session: a persistence candidate
ARTIFACT_SOURCE = "foothold.artifact.source"  # audit_hook | snapshot | intent | hook
ARTIFACT_ATTRIBUTION = "foothold.artifact.attribution"  # absent: the parent call's; ambiguous: see candidates
ARTIFACT_CANDIDATE_CALLS = "foothold.artifact.candidate_calls"  # call ids running when it was seen
ARTIFACT_NOTE = "foothold.artifact.note"  # why no hash: a FIFO, a symlink (not followed), over the size cap

PERSISTENCE_KIND = "foothold.persistence.kind"  # e.g. ssh_authorized_keys, cron, systemd_unit
PERSISTENCE_TECHNIQUE = "foothold.persistence.technique"  # MITRE ATT&CK / ATLAS id, e.g. T1098.004
PERSISTENCE_TARGET = "foothold.persistence.target"  # resolved path or account the call (intends to) change
PERSISTENCE_EVIDENCE = "foothold.persistence.evidence"  # why the classifier said so
PERSISTENCE_SEVERITY = "foothold.persistence.severity"  # info | low | medium | high | critical
TOOL_CATEGORIES = "foothold.tool.categories"  # comma-separated: untrusted_input, exec, egress, credential_read
# Who decided whether a call ran, and what: accept | reject (normalised from every agent's own spelling).
TOOL_DECISION = "foothold.tool.decision"
TOOL_DECISION_SOURCE = "foothold.tool.decision.source"  # e.g. config, user_temporary, hook, policy
TOOL_CALL_SOURCE = "foothold.tool.call.source"  # which telemetry reported the call, e.g. claude_code.logs
# Set by the collector on a record of a call another record already stands for (one call = one row).
TOOL_CALL_DUPLICATE_OF = "foothold.tool.call.duplicate_of"
DURATION_NS = "foothold.duration_ns"  # a call's duration where the record has no span duration (logs)
CODE_SEVERITY = (
    "foothold.code.severity"  # the most severe backdoor signal in code the call wrote (set by the collector)
)
CODE_FINDINGS = "foothold.code.findings"  # JSON list: signal, severity, technique, path, evidence

CREDENTIAL_FINGERPRINT = "foothold.credential.fingerprint"  # keyed HMAC, never the value
CREDENTIAL_KIND = "foothold.credential.kind"
CREDENTIAL_SCOPE = "foothold.credential.scope"
CREDENTIAL_ISSUED_TO = "foothold.credential.issued_to"  # agent id the credential was issued to
CREDENTIAL_TASK_ID = "foothold.credential.task.id"  # task that justified the credential
CREDENTIAL_EXPIRES_AT = "foothold.credential.expires_at"  # RFC 3339
# "true": the credential is meant to serve many tasks and sessions (exempt from the cross-task reuse rules)
CREDENTIAL_SHARED = "foothold.credential.shared"

# Span event marking where a person confirmed an action (breaks a "chained tools" run).
EVENT_HUMAN_CHECKPOINT = "foothold.human_checkpoint"
CHECKPOINT_APPROVER = "foothold.checkpoint.approver"
CHECKPOINT_DECISION = "foothold.checkpoint.decision"  # approved | denied

ARTIFACT_SPAN_PREFIX = "artifact "  # artifact span name: "artifact {kind}"


def tool_span_name(tool_name: str) -> str:
    """Span name per the GenAI conventions: ``execute_tool {gen_ai.tool.name}``."""
    return f"{OPERATION_EXECUTE_TOOL} {tool_name}"


# (name, meaning) pairs rendered into the README's attribute table.
DOCUMENTED: tuple[tuple[str, str], ...] = (
    (GEN_AI_OPERATION_NAME, "`execute_tool` on every tool-call span"),
    (GEN_AI_TOOL_NAME, "tool name"),
    (GEN_AI_TOOL_CALL_ID, "the model's id for this call"),
    (GEN_AI_TOOL_TYPE, "`function`, `extension` or `datastore`"),
    (GEN_AI_TOOL_DESCRIPTION, "tool description"),
    (GEN_AI_TOOL_CALL_ARGUMENTS, "arguments (opt-in, size-limited, secrets redacted)"),
    (GEN_AI_TOOL_CALL_RESULT, "result (opt-in, size-limited, secrets redacted)"),
    (GEN_AI_CONVERSATION_ID, "session / conversation id"),
    (GEN_AI_AGENT_ID, "agent id"),
    (GEN_AI_AGENT_NAME, "agent name"),
    (ERROR_TYPE, "exception type or error class of a failed call"),
    (PROCESS_EXIT_CODE, "exit status of a shell tool's command; non-zero marks the call failed"),
    (MCP_METHOD_NAME, "MCP method, e.g. `tools/call`"),
    (MCP_SESSION_ID, "MCP session id (session fallback)"),
    (JSONRPC_REQUEST_ID, "JSON-RPC request id"),
    (TASK_ID, "task the agent is working on"),
    (TASK_END_SPAN, "span name: the task in `foothold.task.id` ended (at the span's start)"),
    (CWD, "working directory of the call"),
    (HOME, "home directory `~` resolves to for the agent"),
    (SENDER, "authenticated sender identity (set by the collector)"),
    (ORIGINAL_START_TIME, "the span's own start time, when the collector moved it to the receive time"),
    (ARTIFACT_KIND, "`file`, `process`, `connection`, `account`, `credential`"),
    (ARTIFACT_ACTION, "`create`, `modify`, `delete`, `rename`, `chmod`, `exec`, `connect`"),
    (ARTIFACT_PATH, "path, command line or network target"),
    (ARTIFACT_SHA256, "content hash after the change"),
    (ARTIFACT_SHA256_BEFORE, "content hash before the change"),
    (ARTIFACT_SIZE, "size in bytes after the change"),
    (ARTIFACT_DURABLE, "`true` when the artifact outlives the session"),
    (ARTIFACT_SOURCE, "`audit_hook`, `snapshot`, `intent` or `hook`"),
    (ARTIFACT_ATTRIBUTION, "`ambiguous` when calls ran in parallel and none can be named (else absent)"),
    (ARTIFACT_CANDIDATE_CALLS, "comma-separated call ids that were running when an ambiguous change was seen"),
    (ARTIFACT_NOTE, "why the artifact has no hash: a FIFO, a device, a symlink (never followed), over the size cap"),
    (PERSISTENCE_KIND, "persistence class, e.g. `ssh_authorized_keys`"),
    (PERSISTENCE_TECHNIQUE, "MITRE ATT&CK / ATLAS technique id"),
    (PERSISTENCE_TARGET, "resolved path or account written (set by the collector)"),
    (PERSISTENCE_EVIDENCE, "the classifier's reason (set by the collector)"),
    (
        PERSISTENCE_SEVERITY,
        "severity of the finding: low when the written content is plainly benign (set by the collector)",
    ),
    (TOOL_CATEGORIES, "`untrusted_input`, `exec`, `egress`, `credential_read` (set by the collector)"),
    (TOOL_DECISION, "`accept` or `reject`: whether the call was allowed to run"),
    (TOOL_DECISION_SOURCE, "who decided, in the agent's words (e.g. `config`, `user_temporary`, `hook`)"),
    (TOOL_CALL_SOURCE, "the telemetry a native record came from, e.g. `claude_code.logs` (set by the collector)"),
    (TOOL_CALL_DUPLICATE_OF, "the call of record this record repeats (set by the collector; not a row)"),
    (DURATION_NS, "duration of a call reported as a log record (set by the collector)"),
    (CODE_SEVERITY, "most severe backdoor signal in code the call wrote, e.g. `critical` (set by the collector)"),
    (CODE_FINDINGS, "JSON list of the backdoor signals in that code: signal, severity, technique, path, evidence"),
    (CREDENTIAL_FINGERPRINT, "keyed HMAC fingerprint of the credential used"),
    (CREDENTIAL_KIND, "credential kind, e.g. `github_token`"),
    (CREDENTIAL_SCOPE, "declared scope"),
    (CREDENTIAL_ISSUED_TO, "agent id the credential was issued to"),
    (CREDENTIAL_TASK_ID, "task that justified the credential"),
    (CREDENTIAL_EXPIRES_AT, "expiry, RFC 3339"),
    (CREDENTIAL_SHARED, "`true`: declared shared, exempt from the cross-task and cross-session reuse rules"),
    (EVENT_HUMAN_CHECKPOINT, "span event: a person confirmed the action"),
    (CHECKPOINT_APPROVER, "on the checkpoint event: who confirmed"),
    (CHECKPOINT_DECISION, "on the checkpoint event: `approved` or `denied`"),
)


def markdown_table() -> str:
    """The README's attribute table (tests/test_semconv.py checks the README holds exactly this)."""
    rows = [f"| `{name}` | {meaning} |" for name, meaning in DOCUMENTED]
    return "\n".join(["| attribute | meaning |", "| --- | --- |", *rows])
