"""The alert evaluator: runs the detection rules as SQL, records each finding once, delivers it once per sink.

Findings are keyed by (rule, finding key): a finding already in ``alerts`` is not raised again however
often the rules run. Delivery is an outbox: every alert not yet recorded in ``alert_deliveries`` for a
sink is sent on each pass until the sink accepts it, so a webhook that is down gets everything later and
nothing twice.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO

import httpx
import orjson
from clickhouse_connect.driver.client import Client

from foothold.collector.chain import ChainStore, record_alerts
from foothold.collector.component import Periodic
from foothold.collector.config import AlertsConfig
from foothold.collector.schema.ddl import ALERT_DELIVERIES, ALERTS
from foothold.collector.store import StoreError
from foothold.collector.store_connection import StoreConnection
from foothold.detections.macros import TimeRange, expand
from foothold.detections.rules import AlertRule, RuleError, load_alert_rules

log = logging.getLogger("foothold.collector.alerting")

ALERT_COLUMNS = (
    "RaisedAt",
    "RuleId",
    "Severity",
    "Title",
    "FindingKey",
    "SessionId",
    "AgentName",
    "TraceId",
    "SpanId",
    "SeenAt",
    "Technique",
    "Evidence",
    "Outcome",
)


@dataclass(frozen=True)
class Alert:
    rule_id: str
    severity: str
    title: str
    finding_key: str
    session_id: str
    agent_name: str
    trace_id: str
    span_id: str
    seen_at: datetime
    technique: str
    evidence: str
    raised_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    outcome: str = ""  # written | ran | denied | failed, for rules about what a call did (else empty)

    def row(self) -> list[Any]:
        return [
            self.raised_at,
            self.rule_id,
            self.severity,
            self.title,
            self.finding_key,
            self.session_id,
            self.agent_name,
            self.trace_id,
            self.span_id,
            self.seen_at,
            self.technique,
            self.evidence,
            self.outcome,
        ]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Alert:
        raised, rule, severity, title, key, session, agent, trace, span, seen, technique, evidence, outcome = row
        return cls(rule, severity, title, key, session, agent, trace, span, seen, technique, evidence, raised, outcome)


class Sink(Protocol):
    name: str

    def deliver(self, alerts: list[Alert]) -> None:
        """Send the alerts; raise if the receiver did not take them."""


class StreamSink:
    """One readable line per alert (stdout by default)."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def deliver(self, alerts: list[Alert]) -> None:
        from foothold.render import shown  # stored values may carry terminal escapes: the log is read in one

        stream = self._stream or sys.stdout
        for a in alerts:
            line = (
                f"ALERT {a.severity.upper():8} {a.rule_id} session={a.session_id} agent={a.agent_name} "
                f"{a.technique or '-'} :: {a.evidence}"
            )
            stream.write(shown(line, one_line=True) + "\n")
        stream.flush()


class WebhookSink:
    """POSTs alerts as an Alertmanager ``/api/v2/alerts`` array, or as plain ``{"alerts": [...]}`` JSON."""

    def __init__(self, url: str, payload: str = "json", timeline_url: str | None = None, timeout: float = 10.0) -> None:
        if payload not in ("json", "alertmanager"):
            raise ValueError("webhook payload must be 'json' or 'alertmanager'")
        self.name = f"webhook:{url}"
        self._url, self._payload, self._timeline_url, self._timeout = url, payload, timeline_url, timeout

    def _link(self, alert: Alert) -> str:
        return f"{self._timeline_url}{alert.session_id}" if self._timeline_url else ""

    def _alertmanager(self, alerts: list[Alert]) -> list[dict[str, Any]]:
        return [
            {
                "labels": {
                    "alertname": a.rule_id,
                    "severity": a.severity,
                    "session_id": a.session_id,
                    "agent": a.agent_name,
                    "technique": a.technique,
                    "finding_key": a.finding_key,
                    **({"outcome": a.outcome} if a.outcome else {}),
                },
                "annotations": {
                    "summary": a.title,
                    "description": a.evidence,
                    "trace_id": a.trace_id,
                    "timeline": self._link(a),
                },
                "startsAt": a.seen_at.replace(tzinfo=a.seen_at.tzinfo or UTC).isoformat(),
                "generatorURL": self._link(a),
            }
            for a in alerts
        ]

    def deliver(self, alerts: list[Alert]) -> None:
        if self._payload == "alertmanager":
            body: Any = self._alertmanager(alerts)
        else:
            body = {"alerts": [asdict(a) | {"timeline": self._link(a)} for a in alerts]}
        response = httpx.post(
            self._url,
            content=orjson.dumps(body, default=str),
            timeout=self._timeout,
            headers={"content-type": "application/json"},
        )
        response.raise_for_status()


@dataclass
class EvaluationReport:
    raised: list[Alert] = field(default_factory=list)
    delivered: dict[str, int] = field(default_factory=dict)
    failed_rules: dict[str, str] = field(default_factory=dict)
    failed_sinks: dict[str, str] = field(default_factory=dict)


class AlertEvaluator:
    def __init__(
        self,
        client: Client,
        rules: Sequence[AlertRule],
        sinks: Sequence[Sink],
        lookback_seconds: float,
        chain: ChainStore | None = None,
    ) -> None:
        self._client = client  # its current database is the store's
        self._chain = chain  # raised alerts are linked in the '<name>#alerts' chain (tamper evidence)
        self._rules = list(rules)
        self._sinks = list(sinks)
        self._lookback = lookback_seconds

    def evaluate(self, now: datetime | None = None) -> EvaluationReport:
        report = EvaluationReport()
        # The plugin's $__timeFilter compares whole seconds; reach one second past now so spans from the
        # current second are not left out until the next pass.
        end = (now or datetime.now(UTC)) + timedelta(seconds=1)
        window = TimeRange.last(self._lookback + 1, end)
        for rule in self._rules:
            try:
                report.raised += self._raise(rule, window)
            except Exception as exc:  # one broken rule must not silence the others
                log.error("alert rule %s failed: %s", rule.id, exc)
                report.failed_rules[rule.id] = str(exc).strip()
        for sink in self._sinks:
            try:
                report.delivered[sink.name] = self._deliver(sink)
            except Exception as exc:
                log.warning("alert delivery to %s failed, will retry: %s", sink.name, exc)
                report.failed_sinks[sink.name] = str(exc)
        return report

    def _raise(self, rule: AlertRule, window: TimeRange) -> list[Alert]:
        result = self._client.query(expand(rule.sql, window))
        if not result.result_rows:
            return []
        if tuple(result.column_names) != rule.columns:  # Grafana reads them by name: keep the contract
            raise RuleError(
                f"rule {rule.id} returns columns {list(result.column_names)}, expected {list(rule.columns)}"
            )
        findings = [dict(zip(rule.columns, row, strict=True)) for row in result.result_rows]
        known = {
            row[0]
            for row in self._client.query(
                f"SELECT FindingKey FROM {ALERTS} FINAL WHERE RuleId = {{rule:String}} AND FindingKey "
                f"IN {{keys:Array(String)}}",
                parameters={"rule": rule.id, "keys": [f["finding_key"] for f in findings]},
            ).result_rows
        }
        fresh = [_alert(rule, f) for f in findings if f["finding_key"] not in known]
        chain = self._chain
        if fresh and chain is None:
            self._client.insert(ALERTS, [a.row() for a in fresh], column_names=ALERT_COLUMNS)
        elif fresh and chain is not None:
            with chain.lock:  # a verify in the collector sees both the rows and their link, or neither
                # foreground: on a cluster the rows must be readable at once, to be linked as stored
                settings = {"distributed_foreground_insert": 1}
                self._client.insert(ALERTS, [a.row() for a in fresh], column_names=ALERT_COLUMNS, settings=settings)
                record_alerts(chain, self._client, ALERTS, rule.id, [a.finding_key for a in fresh])
        return fresh

    def _deliver(self, sink: Sink) -> int:
        pending = self._client.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM {ALERTS} FINAL "
            f"WHERE (RuleId, FindingKey) GLOBAL NOT IN "
            f"(SELECT RuleId, FindingKey FROM {ALERT_DELIVERIES} WHERE Sink = {{sink:String}}) "
            f"ORDER BY RaisedAt, RuleId, FindingKey",
            parameters={"sink": sink.name},
        ).result_rows
        if not pending:
            return 0
        alerts = [Alert.from_row(row) for row in pending]
        sink.deliver(alerts)
        self._client.insert(
            ALERT_DELIVERIES,
            [[sink.name, a.rule_id, a.finding_key] for a in alerts],
            column_names=("Sink", "RuleId", "FindingKey"),
        )
        return len(alerts)


def _alert(rule: AlertRule, finding: dict[str, Any]) -> Alert:
    """A finding as an alert: the rule's severity, or the finding's own when it says what became of the call."""
    severity = finding.pop("severity", None) or rule.severity
    return Alert(rule.id, severity, rule.title, **finding)


def build_sinks(config: AlertsConfig) -> list[Sink]:
    sinks: list[Sink] = []
    for sink in config.sinks:
        if sink.type == "stdout":
            sinks.append(StreamSink())
        else:
            sinks.append(WebhookSink(sink.url or "", sink.payload, config.timeline_url))
    return sinks


def build_evaluator(
    config: AlertsConfig, client: Client, sinks: Sequence[Sink] | None = None, chain: ChainStore | None = None
) -> AlertEvaluator:
    rules = load_alert_rules(config.rule_overrides())
    sinks = build_sinks(config) if sinks is None else sinks
    return AlertEvaluator(client, rules, sinks, config.lookback_seconds, chain)


class Alerting:
    """The evaluator as a collector component: a pass every ``alerts.interval_seconds`` once the store is open
    (:meth:`attach`), and on demand (the query API's ``/v1/alerts/evaluate``). Each pass first flushes the
    pipelines, so it judges everything accepted so far."""

    def __init__(self, config: AlertsConfig, store: StoreConnection, flush: Callable[[float], bool]) -> None:
        self._config = config
        self._store = store
        self._flush = flush
        self._evaluator: AlertEvaluator | None = None
        self._lock = threading.Lock()  # the loop and the query API may both ask for a pass
        self._loop = Periodic("alert evaluation", config.interval_seconds, self._scheduled)

    def attach(self, client: Client, chain: ChainStore | None) -> None:
        self._evaluator = build_evaluator(self._config, client, chain=chain)

    def evaluate(self) -> EvaluationReport:
        """One pass over everything accepted so far (blocking: call off the loop)."""
        if self._evaluator is None:
            self._store.connected()  # raises StoreError naming why the store is unreachable
            raise StoreError("alerts are starting: the store has just opened")
        self._flush(60.0)
        with self._lock:
            return self._evaluator.evaluate()

    def _scheduled(self) -> None:
        if self._evaluator is not None:
            self.evaluate()

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
