"""``foothold-audit verify``: recompute the keyed export chain from the stored rows and report what changed.

Findings, each with the chain, the batch sequence and the span where known:

- ``deleted``: a span a chain link recorded is not in ``otel_traces`` any more;
- ``altered``: the span is there but its stored content no longer hashes to the recorded digest;
- ``inserted``: a row in ``otel_traces`` that no chain link covers (with ``chain.other_writers: true``
  only such rows that claim a ``foothold.sender``, since other writers legitimately add unchained rows);
- ``link_altered`` / ``chain_broken`` / ``chain_gap`` / ``duplicate_link``: the chain table itself was
  edited (a link's HMAC under the chain key does not recompute, a link does not point at its predecessor,
  links are missing or repeated);
- ``alert_deleted`` / ``alert_altered`` / ``alert_inserted``: the same for ``alerts``, chained in
  ``<name>#alerts``;
- ``tool_calls_*`` / ``artifacts_*`` (``deleted``, ``altered``, ``inserted``): the audit tables are
  derived from ``otel_traces`` by materialized views; verify derives them again from the (verified) spans
  and compares row by row;
- ``mirror_mismatch`` / ``mirror_missing`` / ``unmirrored_link``: the table and the mirror disagree, in
  either direction (links dropped from the table, or links in the table the mirror never recorded).

Only SELECTs: runs through the store directly, or inside the running collector (query API ``/v1/verify``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from foothold.collector.chain import (
    ALERTS_CHAIN_SUFFIX,
    GENESIS,
    SELECT_ALERT_DIGEST_COLUMNS,
    SELECT_DIGEST_COLUMNS,
    batch_digest,
    chain_digest,
    row_digest,
)
from foothold.collector.schema.ddl import (
    ALERTS,
    ARTIFACTS_TABLE,
    ARTIFACTS_VIEW,
    EXPORT_CHAIN,
    LOGS,
    TOOL_CALLS_FROM_LOGS_VIEW,
    TOOL_CALLS_TABLE,
    TOOL_CALLS_VIEW,
    TRACES,
    Table,
    View,
)
from foothold.semconv import SENDER

# A row as the SELECT returns it: each cell's Python type follows its column, known where it is unpacked.
Row = Sequence[Any]
Query = Callable[[str], Sequence[Row]]

_LINKS_SQL = (
    "SELECT Chain, Sequence, toUnixTimestamp64Milli(ExportedAt), Rows, toUnixTimestamp64Nano(MinTimestamp), "
    "toUnixTimestamp64Nano(MaxTimestamp), TraceIds, SpanIds, RowDigests, BatchDigest, PrevDigest, ChainDigest "
    f"FROM {EXPORT_CHAIN} ORDER BY Chain, Sequence"
)


@dataclass(frozen=True)
class Finding:
    kind: str
    chain: str = ""
    sequence: int | None = None
    trace_id: str = ""
    span_id: str = ""
    detail: str = ""


@dataclass
class VerifyReport:
    chains: dict[str, int] = field(default_factory=dict)  # chain name -> last sequence
    links: int = 0
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    mirror: str = ""  # the mirror file compared, "" when none was

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            out[finding.kind] += 1
        return dict(out)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "chains": self.chains,
            "links": self.links,
            "rows": self.rows,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
            "mirror": self.mirror,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifyReport:  # to_dict's JSON, read back
        findings = [Finding(**f) for f in data["findings"]]
        return cls(data["chains"], data["links"], data["rows"], findings, data.get("mirror", ""))


@dataclass(frozen=True)
class _Kinds:
    deleted: str
    altered: str
    inserted: str
    missing_from: str


_SPANS = _Kinds("deleted", "altered", "inserted", TRACES)
_ALERTS = _Kinds("alert_deleted", "alert_altered", "alert_inserted", ALERTS)


def verify(
    query: Query,
    key: bytes,
    mirror_file: Path | None = None,
    other_writers: bool = False,
    local_chains: Sequence[str] = (),
) -> VerifyReport:
    """Check the chain links, then every stored row against them. ``query`` runs one SELECT.

    ``local_chains``: the chains this deployment's mirror must hold every link of (its collector's name);
    chains other collectors write are checked against the mirror only for the links it has.
    """
    report = VerifyReport()
    before = {(r[0], int(r[1])) for r in query(f"SELECT Chain, Sequence FROM {EXPORT_CHAIN}")}
    spans: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
    for row in query(f"SELECT {SELECT_DIGEST_COLUMNS} FROM {TRACES}"):
        spans[(row[1], row[2])].append((row_digest(row), SENDER in row[11]))
        report.rows += 1
    alerts: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
    for row in query(f"SELECT {SELECT_ALERT_DIGEST_COLUMNS} FROM {ALERTS} FINAL"):
        alerts[(row[1], row[4])].append((row_digest(list(row)), True))
    # Read the links after the rows: a batch written meanwhile then has its link (no false "inserted");
    # its rows may be missing from what was read, so links that appeared meanwhile never report "deleted".
    links = [list(r) for r in query(_LINKS_SQL)]
    report.links = len(links)
    _check_links(links, key, report)
    if mirror_file is not None:
        report.mirror = str(mirror_file)
        _check_mirror(links, Path(mirror_file).expanduser(), report, local_chains)
    span_links = [link for link in links if not link[0].endswith(ALERTS_CHAIN_SUFFIX)]
    alert_links = [link for link in links if link[0].endswith(ALERTS_CHAIN_SUFFIX)]
    _compare(span_links, spans, before, report, _SPANS, skip_unclaimed=other_writers)
    _compare(alert_links, alerts, before, report, _ALERTS, skip_unclaimed=False)
    for table, view in ((TOOL_CALLS_TABLE, TOOL_CALLS_VIEW), (ARTIFACTS_TABLE, ARTIFACTS_VIEW)):
        _check_derived(query, table, view, report)
    return report


def _compare(
    links: Sequence[Row],
    stored: dict[tuple[str, str], list[tuple[str, bool]]],
    before: set[tuple[str, int]],
    report: VerifyReport,
    kinds: _Kinds,
    skip_unclaimed: bool,
) -> None:
    """Match the rows the links recorded against the stored rows, by key and digest."""
    expected = [
        (link[0], int(link[1]), a, b, d, (link[0], int(link[1])) in before)
        for link in links
        for a, b, d in zip(link[6], link[7], link[8], strict=False)
    ]
    unmatched = []
    matched: set[tuple[str, str, str]] = set()
    for chain, seq, a, b, digest, settled in expected:  # exact matches first, wherever they are
        candidates = stored.get((a, b), [])
        hit = next((i for i, (d, _) in enumerate(candidates) if d == digest), None)
        if hit is not None:
            candidates.pop(hit)
            matched.add((a, b, digest))
        elif (a, b, digest) not in matched:
            unmatched.append((chain, seq, a, b, settled))
        # else: a later link recorded the same row again: a batch replayed after a crash that came between
        # its link and its spool checkpoint; the insert was deduplicated, the link was not.
    for chain, seq, a, b, settled in unmatched:
        if remaining := stored.get((a, b)):
            remaining.pop(0)
            report.findings.append(
                _finding(kinds, kinds.altered, chain, seq, a, b, "stored content differs from the recorded digest")
            )
        elif settled:
            detail = f"recorded row is missing from {kinds.missing_from}"
            report.findings.append(_finding(kinds, kinds.deleted, chain, seq, a, b, detail))
    for (a, b), leftovers in stored.items():
        for _, claims_sender in leftovers:
            if skip_unclaimed and not claims_sender:
                continue
            detail = f"row in {kinds.missing_from} covered by no chain link"
            report.findings.append(_finding(kinds, kinds.inserted, "", None, a, b, detail))


def _finding(kinds: _Kinds, kind: str, chain: str, seq: int | None, a: str, b: str, detail: str) -> Finding:
    if kinds is _ALERTS:  # the ids are a rule and a finding key, not a trace and a span
        return Finding(kind, chain, seq, detail=f"{detail}: rule {a}, finding {b}")
    return Finding(kind, chain, seq, a, b, detail)


def _check_derived(query: Query, table: Table, view: View, report: VerifyReport) -> None:
    """Derive the audit table again from otel_traces (its view's own SELECT) and compare row by row."""
    columns = query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        f"AND table = '{table.name}' ORDER BY position"
    )
    if not columns:
        return
    # sipHash128 is NULL if any argument is: a Nullable column is hashed as (is null, its text)
    names = ", ".join(
        f"isNull(`{name}`), ifNull(toString(`{name}`), '')" if kind.startswith("Nullable(") else f"`{name}`"
        for name, kind in columns
    )
    casts = ", ".join(f"CAST(`{name}` AS {kind}) AS `{name}`" for name, kind in columns)
    digest = f"hex(sipHash128({names}))"
    derived_sql = f"SELECT TraceId, SpanId, {digest} FROM (SELECT {casts} FROM ({view.select.format(source=TRACES)}))"
    derived = {(t, s): d for t, s, d in query(derived_sql)}
    if table.name == TOOL_CALLS_FROM_LOGS_VIEW.target:
        derived |= _derived_from_logs(query, view, casts, digest)
    stored = {(t, s): d for t, s, d in query(f"SELECT TraceId, SpanId, {digest} FROM {table.name} FINAL")}
    for key, digest_value in derived.items():
        if key not in stored:
            report.findings.append(
                Finding(f"{table.name}_deleted", trace_id=key[0], span_id=key[1], detail=_DERIVED_MISSING % table.name)
            )
        elif stored[key] != digest_value:
            report.findings.append(
                Finding(f"{table.name}_altered", trace_id=key[0], span_id=key[1], detail=_DERIVED_ALTERED % table.name)
            )
    for key in stored.keys() - derived.keys():
        report.findings.append(
            Finding(f"{table.name}_inserted", trace_id=key[0], span_id=key[1], detail=_DERIVED_EXTRA % table.name)
        )


def _derived_from_logs(query: Query, span_view: View, casts: str, digest: str) -> dict[tuple[str, str], str]:
    """tool_calls rows the stored native agent events (otel_logs) imply, less the calls a span records (the
    collector deletes such a log row when the span arrives: processors/native.py CallOfRecord)."""
    logs_select = TOOL_CALLS_FROM_LOGS_VIEW.select.format(source=LOGS)
    spans_select = span_view.select.format(source=TRACES)
    sql = (
        f"SELECT TraceId, SpanId, {digest} FROM (SELECT {casts} FROM ({logs_select})) "
        "WHERE (SessionId, ToolCallId) NOT IN "
        f"(SELECT SessionId, ToolCallId FROM ({spans_select}) WHERE ToolCallId != '')"
    )
    return {(t, s): d for t, s, d in query(sql)}


_DERIVED_MISSING = "the stored span implies a %s row that is missing"
_DERIVED_ALTERED = "the %s row differs from what its stored span implies"
_DERIVED_EXTRA = "%s row with no stored span behind it"


def _check_links(links: Sequence[Row], key: bytes, report: VerifyReport) -> None:
    by_chain: dict[str, list[Row]] = defaultdict(list)
    for link in links:
        by_chain[link[0]].append(link)
    for chain, chain_links in by_chain.items():
        prev, expected_seq = GENESIS, 1
        for link in chain_links:
            _, seq, exported_ms, rows, lo, hi, traces, spans, digests, batch, link_prev, digest = link
            seq = int(seq)
            if seq < expected_seq:
                report.findings.append(Finding("duplicate_link", chain, seq, detail="sequence recorded more than once"))
                continue
            if seq > expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
                report.findings.append(
                    Finding("chain_gap", chain, seq, detail=f"link(s) {missing} missing before this one")
                )
            elif link_prev != prev:
                report.findings.append(
                    Finding("chain_broken", chain, seq, detail="previous digest does not match the preceding link")
                )
            if (
                len(digests) != rows
                or len(traces) != rows
                or len(spans) != rows
                or batch_digest(traces, spans, digests) != batch
            ):
                report.findings.append(
                    Finding("link_altered", chain, seq, detail="the link's rows do not match its batch digest")
                )
            elif (
                chain_digest(key, chain, seq, int(exported_ms), int(rows), int(lo), int(hi), batch, link_prev) != digest
            ):
                report.findings.append(
                    Finding("link_altered", chain, seq, detail="the link's HMAC does not recompute under the chain key")
                )
            prev, expected_seq = digest, seq + 1
        report.chains[chain] = expected_seq - 1


def _check_mirror(links: Sequence[Row], path: Path, report: VerifyReport, local_chains: Sequence[str]) -> None:
    """Both ways: every mirrored link is in the table unchanged, every table link of a mirrored chain is mirrored."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        report.findings.append(Finding("mirror_missing", detail=f"mirror file {path} does not exist"))
        return
    table = {(link[0], int(link[1])): link[11] for link in links}
    mirrored: set[tuple[str, int]] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
            key, digest = (entry["chain"], int(entry["sequence"])), entry["chain_digest"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            report.findings.append(Finding("mirror_mismatch", detail=f"{path}:{number} is not a chain link"))
            continue
        mirrored.add(key)
        if key not in table:
            report.findings.append(
                Finding("mirror_missing", key[0], key[1], detail="link in the mirror file is missing from export_chain")
            )
        elif table[key] != digest:
            report.findings.append(
                Finding("mirror_mismatch", key[0], key[1], detail="export_chain disagrees with the mirror file")
            )
    anchored = {chain for chain, _ in mirrored}
    anchored |= {c for name in local_chains for c in (name, name + ALERTS_CHAIN_SUFFIX)}
    for chain, seq in sorted(table.keys() - mirrored):
        if chain in anchored:
            report.findings.append(
                Finding(
                    "unmirrored_link",
                    chain,
                    seq,
                    detail="link in export_chain the mirror never recorded (forged, or the append failed: "
                    "see foothold_chain_mirror_failures_total)",
                )
            )
