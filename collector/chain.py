"""Tamper evidence: a hash chain over the batches the collector exported.

After the inner exporter has written a batch, :class:`ChainingExporter` records one link in
``export_chain``: the batch's rows as (TraceId, SpanId, row digest) arrays, a batch digest over them, the
previous link's digest and this link's chained digest. ``foothold-audit verify`` (collector/verify.py)
recomputes every row digest from ``otel_traces`` and walks the chain, so a deleted, altered or inserted
span row shows up with the batch it belongs to. Each link can also be appended as a JSON line to
``chain.mirror_file``; shipped off-host, that copy also catches someone rewriting the chain table itself.

Row digests are over the stored columns in a form that round-trips exactly through ClickHouse: times as
integer nanoseconds (read back with ``toUnixTimestamp64Nano``), maps with sorted keys, arrays in order.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from foothold.collector.exporter import milliseconds_json, nanoseconds_json
from foothold.collector.schema.ddl import EXPORT_CHAIN
from foothold.collector.store import Store

log = logging.getLogger("foothold.collector.chain")

GENESIS = "0" * 64

# The otel_traces columns a row digest covers, in order, and how verify selects each so that the value
# read back equals the value written.
DIGEST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Timestamp", "toUnixTimestamp64Nano(Timestamp)"),
    ("TraceId", "TraceId"),
    ("SpanId", "SpanId"),
    ("ParentSpanId", "ParentSpanId"),
    ("TraceState", "TraceState"),
    ("SpanName", "SpanName"),
    ("SpanKind", "SpanKind"),
    ("ServiceName", "ServiceName"),
    ("ResourceAttributes", "ResourceAttributes"),
    ("ScopeName", "ScopeName"),
    ("ScopeVersion", "ScopeVersion"),
    ("SpanAttributes", "SpanAttributes"),
    ("Duration", "Duration"),
    ("StatusCode", "StatusCode"),
    ("StatusMessage", "StatusMessage"),
    ("Events.Timestamp", "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp)"),
    ("Events.Name", "Events.Name"),
    ("Events.Attributes", "Events.Attributes"),
    ("Links.TraceId", "Links.TraceId"),
    ("Links.SpanId", "Links.SpanId"),
    ("Links.TraceState", "Links.TraceState"),
    ("Links.Attributes", "Links.Attributes"),
)
_NAMES = tuple(name for name, _ in DIGEST_COLUMNS)
SELECT_DIGEST_COLUMNS = ", ".join(expression for _, expression in DIGEST_COLUMNS)


def row_digest(values: Sequence) -> str:
    """Digest of one row given in :data:`DIGEST_COLUMNS` order (as written, or as read back by verify).

    One orjson call: maps serialise with sorted keys, so a map reads back to the same bytes whatever
    order ClickHouse returns its keys in; times are integer nanoseconds on both sides (validated in range).
    """
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


def batch_digest(trace_ids: Iterable[str], span_ids: Iterable[str], row_digests: Iterable[str]) -> str:
    """Order-free: the same rows give the same digest however the store returns them."""
    lines = sorted(f"{t}:{s}:{d}\n" for t, s, d in zip(trace_ids, span_ids, row_digests, strict=True))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    chain: str
    sequence: int
    exported_at_ms: int
    rows: int
    min_timestamp: int
    max_timestamp: int
    trace_ids: list[str]
    span_ids: list[str]
    row_digests: list[str]
    batch_digest: str
    prev_digest: str
    chain_digest: str

    def summary(self) -> dict:
        """The mirror line: everything but the per-row arrays."""
        out = asdict(self)
        for key in ("trace_ids", "span_ids", "row_digests"):
            del out[key]
        return out


def chain_digest(
    chain: str, sequence: int, exported_at_ms: int, rows: int, min_ts: int, max_ts: int, batch: str, prev: str
) -> str:
    text = f"{chain}\n{sequence}\n{exported_at_ms}\n{rows}\n{min_ts}\n{max_ts}\n{batch}\n{prev}\n"
    return hashlib.sha256(text.encode()).hexdigest()


def make_link(
    chain: str, sequence: int, prev: str, columns: dict[str, list], exported_at_ms: int | None = None
) -> Link:
    trace_ids, span_ids = list(columns["TraceId"]), list(columns["SpanId"])
    digests = [row_digest(values) for values in zip(*(columns[name] for name in _NAMES), strict=True)]
    stamps = columns["Timestamp"]
    exported_at_ms = int(time.time() * 1000) if exported_at_ms is None else exported_at_ms
    batch = batch_digest(trace_ids, span_ids, digests)
    lo, hi = min(stamps), max(stamps)
    digest = chain_digest(chain, sequence, exported_at_ms, len(digests), lo, hi, batch, prev)
    return Link(
        chain, sequence, exported_at_ms, len(digests), lo, hi, trace_ids, span_ids, digests, batch, prev, digest
    )


LINK_COLUMNS = (
    "Chain",
    "Sequence",
    "ExportedAt",
    "Rows",
    "MinTimestamp",
    "MaxTimestamp",
    "TraceIds",
    "SpanIds",
    "RowDigests",
    "BatchDigest",
    "PrevDigest",
    "ChainDigest",
)


class ChainStore:
    """Appends links to ``export_chain`` (and the mirror file); knows the head of this collector's chain."""

    def __init__(self, store: Store, name: str, mirror_file: Path | None = None, metrics=None) -> None:
        self._client = store.client()  # used on the pipeline's worker thread
        self._table = f"{store.database}.{EXPORT_CHAIN}"
        self.name = name
        self._mirror = Path(mirror_file).expanduser() if mirror_file else None
        self._metrics = metrics
        self.lock = threading.Lock()  # held across write + link, so a verify in the collector sees no half-step
        head = self._client.query(
            f"SELECT Sequence, ChainDigest FROM {self._table} WHERE Chain = {{chain:String}} ORDER BY Sequence DESC LIMIT 1",
            parameters={"chain": name},
        ).result_rows
        self.sequence, self.digest = (int(head[0][0]), head[0][1]) if head else (0, GENESIS)

    def next_link(self, columns: dict[str, list]) -> Link:
        return make_link(self.name, self.sequence + 1, self.digest, columns)

    def record(self, link: Link) -> None:
        row = dict(
            zip(
                LINK_COLUMNS,
                (
                    link.chain,
                    link.sequence,
                    milliseconds_json(link.exported_at_ms),
                    link.rows,
                    nanoseconds_json(link.min_timestamp),
                    nanoseconds_json(link.max_timestamp),
                    link.trace_ids,
                    link.span_ids,
                    link.row_digests,
                    link.batch_digest,
                    link.prev_digest,
                    link.chain_digest,
                ),
                strict=True,
            )
        )
        # JSON, like the span insert: the engine parses the batch-sized id arrays without holding the GIL
        self._client.raw_insert(
            self._table, column_names=LINK_COLUMNS, insert_block=orjson.dumps(row), fmt="JSONEachRow"
        )
        self.sequence, self.digest = link.sequence, link.chain_digest
        if self._metrics is not None:
            self._metrics.inc("foothold_chain_links_total")
        if self._mirror is not None:
            try:
                with self._mirror.open("ab") as out:
                    out.write(orjson.dumps(link.summary()) + b"\n")
            except OSError as exc:  # the table holds the link; the mirror is a second copy, not a gate
                log.error("cannot append chain link %d to %s: %s", link.sequence, self._mirror, exc)
                if self._metrics is not None:
                    self._metrics.inc("foothold_chain_mirror_failures_total")


class ChainingExporter:
    """Exports through ``inner``, then records the batch's chain link.

    If recording the link fails the pipeline retries the same batch: the rows are already stored, so only
    the link is retried (the rows are not written twice).
    """

    def __init__(self, inner, store: ChainStore) -> None:
        self._inner = inner
        self.chain = store
        self._written: tuple[object, Link] | None = None

    def export(self, batch) -> None:
        if not len(batch):
            return
        with self.chain.lock:
            if self._written is None or self._written[0] is not batch:
                self._inner.export(batch)
                self._written = (batch, self.chain.next_link(batch.columns))
            self.chain.record(self._written[1])
            self._written = None

    def __getattr__(self, name: str):
        return getattr(self._inner, name)
