"""``foothold-audit verify``: recompute the export hash chain from the stored rows and report what changed.

Findings, each with the chain, the batch sequence and the span where known:

- ``deleted``: a span a chain link recorded is not in ``otel_traces`` any more;
- ``altered``: the span is there but its stored content no longer hashes to the recorded digest;
- ``inserted``: a row in ``otel_traces`` that no chain link covers (with ``chain.other_writers: true``
  only such rows that claim a ``foothold.sender``, since other writers legitimately add unchained rows);
- ``link_altered`` / ``chain_broken`` / ``chain_gap`` / ``duplicate_link``: the chain table itself was
  edited (a link's digests do not recompute, a link does not point at its predecessor, links are missing
  or repeated);
- ``mirror_mismatch`` / ``mirror_missing``: the table disagrees with ``chain.mirror_file`` (someone
  rewrote the chain consistently, or deleted its newest links).

Only SELECTs: runs through the store directly, or inside the running collector (query API ``/v1/verify``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from foothold.collector.chain import GENESIS, SELECT_DIGEST_COLUMNS, batch_digest, chain_digest, row_digest
from foothold.collector.schema.ddl import EXPORT_CHAIN, TRACES
from foothold.semconv import SENDER

Query = Callable[[str], Sequence[Sequence]]

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

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            out[finding.kind] += 1
        return dict(out)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "chains": self.chains,
            "links": self.links,
            "rows": self.rows,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict) -> VerifyReport:
        return cls(data["chains"], data["links"], data["rows"], [Finding(**f) for f in data["findings"]])


def verify(query: Query, mirror_file: Path | None = None, other_writers: bool = False) -> VerifyReport:
    """Check the chain links, then every stored row against them. ``query`` runs one SELECT."""
    report = VerifyReport()
    before = {(r[0], int(r[1])) for r in query(f"SELECT Chain, Sequence FROM {EXPORT_CHAIN}")}
    stored: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
    for row in query(f"SELECT {SELECT_DIGEST_COLUMNS} FROM {TRACES}"):
        stored[(row[1], row[2])].append((row_digest(row), SENDER in row[11]))
        report.rows += 1
    # Read the links after the rows: a batch written meanwhile then has its link (no false "inserted");
    # its rows may be missing from what was read, so links that appeared meanwhile never report "deleted".
    links = [list(r) for r in query(_LINKS_SQL)]
    report.links = len(links)
    _check_links(links, report)
    if mirror_file is not None:
        _check_mirror(links, Path(mirror_file).expanduser(), report)

    expected = [
        (link[0], int(link[1]), t, s, d, (link[0], int(link[1])) in before)
        for link in links
        for t, s, d in zip(link[6], link[7], link[8], strict=False)
    ]
    unmatched = []
    matched: set[tuple[str, str, str]] = set()
    for chain, seq, trace, span, digest, settled in expected:  # exact matches first, wherever they are
        candidates = stored.get((trace, span))
        hit = next((i for i, (d, _) in enumerate(candidates or ()) if d == digest), None)
        if hit is not None:
            candidates.pop(hit)
            matched.add((trace, span, digest))
        elif (trace, span, digest) not in matched:
            unmatched.append((chain, seq, trace, span, settled))
        # else: a later link recorded the same row again: a batch replayed after a crash that came between
        # its link and its spool checkpoint; the insert was deduplicated, the link was not.
    for chain, seq, trace, span, settled in unmatched:
        candidates = stored.get((trace, span))
        if candidates:
            candidates.pop(0)
            report.findings.append(
                Finding("altered", chain, seq, trace, span, "stored content differs from the recorded digest")
            )
        elif settled:
            report.findings.append(
                Finding("deleted", chain, seq, trace, span, "recorded span is missing from otel_traces")
            )
    for (trace, span), leftovers in stored.items():
        for _, claims_sender in leftovers:
            if other_writers and not claims_sender:
                continue
            report.findings.append(
                Finding("inserted", trace_id=trace, span_id=span, detail="row in otel_traces covered by no chain link")
            )
    return report


def _check_links(links: list[list], report: VerifyReport) -> None:
    by_chain: dict[str, list[list]] = defaultdict(list)
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
            elif chain_digest(chain, seq, int(exported_ms), int(rows), int(lo), int(hi), batch, link_prev) != digest:
                report.findings.append(
                    Finding("link_altered", chain, seq, detail="the link's chained digest does not recompute")
                )
            prev, expected_seq = digest, seq + 1
        report.chains[chain] = expected_seq - 1


def _check_mirror(links: list[list], path: Path, report: VerifyReport) -> None:
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        report.findings.append(Finding("mirror_missing", detail=f"mirror file {path} does not exist"))
        return
    table = {(link[0], int(link[1])): link[11] for link in links}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
            key, digest = (entry["chain"], int(entry["sequence"])), entry["chain_digest"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            report.findings.append(Finding("mirror_mismatch", detail=f"{path}:{number} is not a chain link"))
            continue
        if key not in table:
            report.findings.append(
                Finding("mirror_missing", key[0], key[1], detail="link in the mirror file is missing from export_chain")
            )
        elif table[key] != digest:
            report.findings.append(
                Finding("mirror_mismatch", key[0], key[1], detail="export_chain disagrees with the mirror file")
            )
