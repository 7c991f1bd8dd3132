"""Tamper evidence: a keyed hash chain over the batches the collector exported, anchored outside the store.

After the inner exporter has written a batch, :class:`ChainingExporter` records one link in
``export_chain``: the batch's rows as (TraceId, SpanId, row digest) arrays, a batch digest over them, the
previous link's digest and this link's chained digest, an HMAC-SHA256 under the **chain key**: a random
key in ``data_dir/chain.key`` (mode 0600, created at first start, separate from the fingerprint key) that
the store never holds. Whoever can write the store but not read that file cannot recompute a link, so a
rewritten store (rows and chain recomputed) no longer verifies. Raised alerts are chained the same way in
a second chain, ``<name>#alerts`` (RuleId and FindingKey in place of TraceId and SpanId).

Every link is also appended to the **mirror** (``data_dir/chain-mirror.jsonl`` by default, mode 0600): an
out-of-store copy of each link's digest; ``foothold-audit verify`` compares table and mirror both ways, so
links dropped from the table, and links the table has but the mirror never saw, both show. Ship the mirror
off-host (or point ``chain.mirror_file`` at append-only storage) to make it hold against a host compromise.

Row digests are over the stored columns in a form that round-trips exactly through ClickHouse: times as
integer nanoseconds (read back with ``toUnixTimestamp64Nano``), maps with sorted keys, arrays in order.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from clickhouse_connect.driver.client import Client

from foothold.collector.exporter import milliseconds_json, nanoseconds_json
from foothold.collector.metrics import CHAIN_LINKS, CHAIN_MIRROR_FAILURES, Metrics
from foothold.collector.schema.ddl import EXPORT_CHAIN
from foothold.collector.store import Store, StoreError

if TYPE_CHECKING:
    from foothold.collector.config import Settings
    from foothold.collector.metrics import Metrics
    from foothold.collector.pipeline import Exporter
    from foothold.collector.rows import Column, SpanBatch

log = logging.getLogger("foothold.collector.chain")

GENESIS = "0" * 64
ALERTS_CHAIN_SUFFIX = "#alerts"  # never part of a configured chain name (its pattern has no '#')
KEY_BYTES = 32


class ChainKeyError(StoreError):
    """The chain key file is missing, unreadable or readable by others; the message names the fix."""


def load_chain_key(path: Path, create: bool = False) -> bytes:
    """The chain key; with ``create`` a new random one is written first if none exists (mode 0600)."""
    path = Path(path).expanduser()
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(os.urandom(KEY_BYTES).hex() + "\n")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ChainKeyError(
            f"no chain key at {path}: the collector creates it at first start; verify needs the same file "
            "(chain.key_file, FOOTHOLD_CHAIN__KEY_FILE)"
        ) from None
    except OSError as exc:
        raise ChainKeyError(f"cannot read the chain key {path}: {exc.strerror} (is it a symlink?)") from None
    with os.fdopen(fd, "rb") as key_file:
        info = os.fstat(key_file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ChainKeyError(f"the chain key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ChainKeyError(f"the chain key {path} is readable by others: chmod 600 {path}")
        text = key_file.read(4096).strip()
    try:
        key = bytes.fromhex(text.decode())
    except (UnicodeDecodeError, ValueError):
        raise ChainKeyError(f"the chain key {path} is not hex text") from None
    if len(key) < 16:
        raise ChainKeyError(f"the chain key {path} is shorter than 16 bytes")
    return key


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


def row_digest(values: Sequence[Any]) -> str:
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

    def summary(self) -> dict[str, object]:
        """The mirror line: everything but the per-row arrays."""
        out = asdict(self)
        for key in ("trace_ids", "span_ids", "row_digests"):
            del out[key]
        return out


def chain_digest(
    key: bytes,
    chain: str,
    sequence: int,
    exported_at_ms: int,
    rows: int,
    min_ts: int,
    max_ts: int,
    batch: str,
    prev: str,
) -> str:
    """HMAC-SHA256 under the chain key: without the key nobody can make a link that verifies."""
    text = f"{chain}\n{sequence}\n{exported_at_ms}\n{rows}\n{min_ts}\n{max_ts}\n{batch}\n{prev}\n"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def link_of_rows(
    key: bytes,
    chain: str,
    sequence: int,
    prev: str,
    ids: tuple[list[str], list[str]],
    digests: list[str],
    bounds: tuple[int, int],
    exported_at_ms: int | None = None,
) -> Link:
    exported_at_ms = int(time.time() * 1000) if exported_at_ms is None else exported_at_ms
    batch = batch_digest(ids[0], ids[1], digests)
    lo, hi = bounds
    digest = chain_digest(key, chain, sequence, exported_at_ms, len(digests), lo, hi, batch, prev)
    return Link(chain, sequence, exported_at_ms, len(digests), lo, hi, ids[0], ids[1], digests, batch, prev, digest)


def make_link(
    key: bytes, chain: str, sequence: int, prev: str, columns: dict[str, Column], exported_at_ms: int | None = None
) -> Link:
    """The link of one exported batch of spans (columns as written to otel_traces)."""
    ids = (list(columns["TraceId"]), list(columns["SpanId"]))
    digests = [row_digest(values) for values in zip(*(columns[name] for name in _NAMES), strict=True)]
    stamps = columns["Timestamp"]
    return link_of_rows(key, chain, sequence, prev, ids, digests, (min(stamps), max(stamps)), exported_at_ms)


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


class Mirror:
    """The out-of-store anchor: one JSON line per link, appended (mode 0600), shared by a process's chains."""

    def __init__(self, path: Path, metrics: Metrics | None = None) -> None:
        self.path = Path(path).expanduser()
        self._metrics = metrics
        self._lock = threading.Lock()

    def append(self, links: Sequence[Link]) -> None:
        lines = b"".join(orjson.dumps(link.summary()) + b"\n" for link in links)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "ab") as out:
                    out.write(lines)
        except OSError as exc:  # the table holds the link; verify will name it as not mirrored
            log.error("cannot append %d chain link(s) to %s: %s", len(links), self.path, exc)
            if self._metrics is not None:
                self._metrics.record(CHAIN_MIRROR_FAILURES)

    def last_sequence(self, chain: str) -> int:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        last = 0
        for line in data.splitlines():
            try:
                entry = orjson.loads(line)
                if entry["chain"] == chain:
                    last = max(last, int(entry["sequence"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return last


class ChainStore:
    """Appends links to ``export_chain`` (and the mirror); knows the head of one chain."""

    def __init__(
        self, store: Store, name: str, key: bytes, mirror: Mirror | None = None, metrics: Metrics | None = None
    ) -> None:
        self._client = store.client()  # used on the pipeline's (or the alert evaluator's) thread
        self._table = f"{store.database}.{EXPORT_CHAIN}"
        self.name = name
        self._key = key
        self._mirror = mirror
        self._metrics = metrics
        self.lock = threading.Lock()  # held across write + link, so a verify in the collector sees no half-step
        head = self._client.query(
            f"SELECT Sequence, ChainDigest FROM {self._table} WHERE Chain = {{chain:String}} "
            "ORDER BY Sequence DESC LIMIT 1",
            parameters={"chain": name},
        ).result_rows
        self.sequence, self.digest = (int(head[0][0]), str(head[0][1])) if head else (0, GENESIS)
        if mirror is not None:
            self._catch_up_mirror(mirror)

    def _catch_up_mirror(self, mirror: Mirror) -> None:
        """Links a crash left out of the mirror (written to the table, not yet appended) are appended now,
        if they verify under the key: a forged link is left for verify to report."""
        behind = mirror.last_sequence(self.name)
        if behind >= self.sequence:
            return
        rows = self._client.query(
            "SELECT Chain, Sequence, toUnixTimestamp64Milli(ExportedAt), Rows, toUnixTimestamp64Nano(MinTimestamp), "
            "toUnixTimestamp64Nano(MaxTimestamp), BatchDigest, PrevDigest, ChainDigest "
            f"FROM {self._table} WHERE Chain = {{chain:String}} AND Sequence > {{after:UInt64}} ORDER BY Sequence",
            parameters={"chain": self.name, "after": behind},
        ).result_rows
        links = []
        for chain, seq, at, count, lo, hi, batch, prev, digest in rows:
            if chain_digest(self._key, chain, int(seq), int(at), int(count), int(lo), int(hi), batch, prev) != digest:
                break
            links.append(Link(chain, int(seq), int(at), int(count), int(lo), int(hi), [], [], [], batch, prev, digest))
        if links:
            log.warning(
                "appending %d chain link(s) of %s missing from the mirror %s", len(links), self.name, mirror.path
            )
            mirror.append(links)

    def next_link(self, columns: dict[str, Column]) -> Link:
        return make_link(self._key, self.name, self.sequence + 1, self.digest, columns)

    def link_rows(self, ids: tuple[list[str], list[str]], digests: list[str], bounds: tuple[int, int]) -> Link:
        return link_of_rows(self._key, self.name, self.sequence + 1, self.digest, ids, digests, bounds)

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
            self._metrics.record(CHAIN_LINKS)
        if self._mirror is not None:
            self._mirror.append([link])


# The alerts columns an alert link covers, selected so that what verify reads back is what was recorded.
SELECT_ALERT_DIGEST_COLUMNS = (
    "toUnixTimestamp64Milli(RaisedAt), RuleId, Severity, Title, FindingKey, SessionId, AgentName, TraceId, SpanId, "
    "toUnixTimestamp64Nano(SeenAt), Technique, Evidence"
)


def alert_digests(rows: Sequence[Sequence[Any]]) -> tuple[tuple[list[str], list[str]], list[str], tuple[int, int]]:
    """(RuleIds, FindingKeys), row digests and RaisedAt bounds (ns) of alerts read with the columns above."""
    ids = ([row[1] for row in rows], [row[4] for row in rows])
    stamps = [int(row[0]) * 1_000_000 for row in rows]
    return ids, [row_digest(list(row)) for row in rows], (min(stamps), max(stamps))


def record_alerts(chain: ChainStore, client: Client, table: str, rule_id: str, keys: list[str]) -> None:
    """Link the alerts just written (read back as verify reads them; call with ``chain.lock`` held)."""
    rows = client.query(
        f"SELECT {SELECT_ALERT_DIGEST_COLUMNS} FROM {table} FINAL "
        "WHERE RuleId = {rule:String} AND FindingKey IN {keys:Array(String)}",
        parameters={"rule": rule_id, "keys": keys},
    ).result_rows
    if rows:
        chain.record(chain.link_rows(*alert_digests(rows)))


class ChainingExporter:
    """Exports through ``inner``, then records the batch's chain link.

    If recording the link fails the pipeline retries the same batch: the rows are already stored, so only
    the link is retried (the rows are not written twice).
    """

    def __init__(self, inner: Exporter, store: ChainStore) -> None:
        self._inner = inner
        self.chain = store
        self._written: tuple[object, Link] | None = None

    def export(self, batch: SpanBatch) -> None:
        if not len(batch):
            return
        with self.chain.lock:
            if self._written is None or self._written[0] is not batch:
                self._inner.export(batch)
                self._written = (batch, self.chain.next_link(batch.columns))
            self.chain.record(self._written[1])
            self._written = None

    def __getattr__(self, name: str) -> object:  # tests reach through wrappers to the exporter they built
        return getattr(self._inner, name)


def open_alert_chain(settings: Settings, store: Store, metrics: Metrics | None = None) -> ChainStore | None:
    """The alerts chain, for an evaluation outside the collector (`foothold-audit alerts --evaluate`)."""
    if not settings.chain.enabled:
        return None
    key = load_chain_key(settings.chain_key_path, create=True)
    mirror = Mirror(settings.chain_mirror_path, metrics) if settings.chain_mirror_path else None
    return ChainStore(store, settings.chain.name + ALERTS_CHAIN_SUFFIX, key, mirror, metrics)
