"""The durable write-ahead spool: accepted requests are on disk before the client hears "OK".

Layout under ``data_dir/spool/``::

    lock                      flock: one collector per spool
    checkpoint.json           {"spool_id", "committed", "batch"}: what is exported, what is being exported
    0000000000000000.seg      segment files, named by the sequence number of their first record
    00000000000004d2.seg      ...

A segment starts with the 8-byte magic ``FHSPOOL1`` followed by records::

    u32 payload length | u32 crc32(seq, spans, payload) | u64 seq | u32 spans | payload
    payload = serialized ExportTraceServiceRequest (the authenticated sender is already stamped on its spans)

Sequence numbers grow by one per record for the life of the spool. Appends go to the newest segment and
are fsync'ed before the receiver answers (several appends may share one fsync: group commit). The
exporter works through the records in order; before it inserts a range of records it writes that range to
the checkpoint (``batch``), and after the insert succeeded it advances ``committed`` past it and deletes
segments that are wholly exported. After a crash the collector therefore re-forms exactly the batch that
was in flight, with the same insert deduplication token (spool id + range), so ClickHouse drops it if the
first attempt had in fact been stored; everything after it is replayed as new batches.

Torn or corrupt records (a crash in the middle of an append, a flipped bit) are found by length, sequence
and checksum when the spool opens; the segment is cut at the first bad record with a logged warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from foothold.collector.config import SpoolConfig

log = logging.getLogger("foothold.collector.spool")

MAGIC = b"FHSPOOL1"
HEADER = struct.Struct("<IIQI")  # payload length, crc32, seq, spans
_CRC_FIELDS = struct.Struct("<QI")  # seq, spans: covered by the checksum with the payload
MAX_PAYLOAD = 1 << 30  # a length field beyond this is corruption, not a record
CHECKPOINT = "checkpoint.json"
SEGMENT_SUFFIX = ".seg"


class SpoolError(OSError):
    """The spool cannot be opened or written; the message says what to do."""


class SpoolFull(Exception):
    """No room for this record now (``too_large``: never, the record is bigger than the whole spool)."""

    def __init__(self, needed: int, used: int, limit: int) -> None:
        super().__init__(f"spool full: {used} of {limit} bytes used, {needed} more needed (spool.max_bytes)")
        self.too_large = needed > limit


@dataclass(frozen=True)
class Record:
    seq: int
    spans: int
    request: bytes  # serialized ExportTraceServiceRequest


@dataclass
class _Segment:
    first: int  # seq of its first record (its name)
    end: int  # seq after its last record
    path: Path
    size: int


def _crc(seq: int, spans: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_CRC_FIELDS.pack(seq, spans)))


def _segment_name(first: int) -> str:
    return f"{first:016x}{SEGMENT_SUFFIX}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Scan:
    """Reads records of one segment sequentially, checking each one."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by the caller
        self.offset = 0
        self.problem = ""

    def magic_ok(self) -> bool:
        ok = self.file.read(len(MAGIC)) == MAGIC
        self.offset = len(MAGIC) if ok else 0
        if not ok:
            self.problem = "missing or torn segment header"
        return ok

    def next(self, expected_seq: int | None, *, payload: bool = True) -> tuple[int, int, bytes | None] | None:
        """The next record (seq, spans, payload), or None at the end or at the first bad record."""
        header = self.file.read(HEADER.size)
        if not header:
            return None
        if len(header) < HEADER.size:
            self.problem = "torn record header"
            return None
        length, crc, seq, spans = HEADER.unpack(header)
        if length > MAX_PAYLOAD or (expected_seq is not None and seq != expected_seq):
            self.problem = f"bad record header (seq {seq}, length {length})"
            return None
        if payload:
            data = self.file.read(length)
            if len(data) < length:
                self.problem = f"torn record (seq {seq})"
                return None
            if _crc(seq, spans, data) != crc:
                self.problem = f"checksum mismatch (seq {seq})"
                return None
        else:
            data = None
            self.file.seek(length, os.SEEK_CUR)
        self.offset += HEADER.size + length
        return seq, spans, data

    def close(self) -> None:
        self.file.close()


class Spool:
    """Append, make durable, read back in order, checkpoint. Thread-safe; open with :meth:`open`."""

    def __init__(self, directory: Path, config: SpoolConfig) -> None:
        self.directory = directory
        self.config = config
        self.spool_id = ""
        self.committed = 0  # records below this seq are exported
        self.pending_batch: tuple[int, int] | None = None  # the range being exported when the checkpoint was written
        self.next_seq = 0
        self.durable_seq = 0  # records below this seq are on disk (fsync'ed when config.fsync)
        self.backlog_records = 0  # found at open, after the checkpoint: to replay
        self.backlog_spans = 0
        self.truncated_bytes = 0  # cut at open (torn or corrupt records)
        self._segments: list[_Segment] = []
        self._active_fd: int | None = None  # the newest segment, open for appending
        self._lock = threading.Lock()  # appends, segment list, checkpoint
        self._sync_lock = threading.Lock()  # one fsync at a time; the others wait and usually find theirs done
        self._lock_fd: int | None = None
        self._read_cursor: tuple[Path, int, int] | None = None  # (segment, next seq, offset) of the last read

    # --- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, config: SpoolConfig) -> Spool:
        spool = cls(Path(directory), config)
        spool._take_lock()
        try:
            spool._load()
        except BaseException:
            spool.close()
            raise
        return spool

    def _take_lock(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SpoolError(
                f"the spool {self.directory} is in use by another collector (pid {owner}); "
                "give each collector its own data_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _load(self) -> None:
        fresh = not self._read_checkpoint()
        paths = sorted(self.directory.glob("*" + SEGMENT_SUFFIX))
        end = self.committed
        for index, path in enumerate(paths):
            try:
                first = int(path.stem, 16)
            except ValueError:
                log.warning("spool: ignoring %s (not a segment name)", path)
                continue
            segment = self._scan_segment(path, first, last=index == len(paths) - 1)
            if segment is None:
                continue
            end = max(end, segment.end)
            if segment.end <= self.committed:  # wholly exported before the crash: finish the deletion
                path.unlink()
                continue
            self._segments.append(segment)
        if self.pending_batch is not None:
            if self.pending_batch[0] != self.committed:
                log.warning(
                    "spool: in-flight batch %s does not start at the checkpoint %d; ignored",
                    self.pending_batch,
                    self.committed,
                )
                self.pending_batch = None
            else:
                end = max(end, self.pending_batch[1])
        self.next_seq = self.durable_seq = end
        if self.config.fsync:  # what a killed process left in the page cache is on disk from here on
            for segment in self._segments:
                fd = os.open(segment.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        if fresh or self.truncated_bytes:
            self._write_checkpoint()
        if self.backlog_records:
            log.info(
                "spool: replaying %d request(s), %d span(s) accepted before the last stop",
                self.backlog_records,
                self.backlog_spans,
            )

    def _read_checkpoint(self) -> bool:
        path = self.directory / CHECKPOINT
        try:
            data = orjson.loads(path.read_bytes())
            self.spool_id = str(data["spool_id"])
            self.committed = int(data["committed"])
            batch = data.get("batch")
            self.pending_batch = (int(batch[0]), int(batch[1])) if batch else None
            return True
        except FileNotFoundError:
            pass
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
            # Written by rename, so this means tampering or disk damage. Replaying everything is the safe side.
            log.warning("spool: checkpoint %s unreadable (%s); replaying every record in the spool", path, exc)
        self.spool_id = uuid.uuid4().hex
        self.committed = 0
        self.pending_batch = None
        return False

    def _scan_segment(self, path: Path, first: int, *, last: bool) -> _Segment | None:
        """Check every record; cut the segment at the first bad one. None when nothing valid is left."""
        scan = _Scan(path)
        seq = first
        try:
            if scan.magic_ok():
                while (item := scan.next(seq, payload=True)) is not None:
                    if seq >= self.committed:
                        self.backlog_records += 1
                        self.backlog_spans += item[1]
                    seq += 1
            good = scan.offset
        finally:
            scan.close()
        size = path.stat().st_size
        if scan.problem:
            cut = size - good
            self.truncated_bytes += cut
            where = "at its tail (a crash during an append)" if last else "in the middle of the spool (disk damage?)"
            log.warning(
                "spool: %s: %s at offset %d %s; truncating %d byte(s)", path.name, scan.problem, good, where, cut
            )
            if good <= len(MAGIC):
                path.unlink()
                return None
            with open(path, "r+b") as f:
                f.truncate(good)
                if self.config.fsync:
                    os.fsync(f.fileno())
            size = good
        if seq == first:  # a header and no records
            path.unlink()
            return None
        return _Segment(first=first, end=seq, path=path, size=size)

    # --- appending -----------------------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    def append(self, payload: bytes, spans: int, on_append: Callable[[int], None] | None = None) -> int:
        """Write one record (not yet durable: call :meth:`sync`). Raises SpoolFull or SpoolError.

        ``on_append(seq)`` runs under the append lock once the record is written, so callers that queue
        records there see them in sequence order.
        """
        size = HEADER.size + len(payload)
        with self._lock:
            used = self.used_bytes
            if used + size + len(MAGIC) > self.config.max_bytes:
                raise SpoolFull(size + len(MAGIC), used, self.config.max_bytes)
            seq = self.next_seq
            segment, fd = self._writable_segment(seq)
            record = HEADER.pack(len(payload), _crc(seq, spans, payload), seq, spans) + payload
            try:
                _write_all(fd, record)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, segment.size)
                raise SpoolError(f"cannot write to the spool {segment.path}: {exc.strerror or exc}") from exc
            segment.size += len(record)
            segment.end = seq + 1
            self.next_seq = seq + 1
            if not self.config.fsync:
                self.durable_seq = self.next_seq
            if on_append is not None:
                on_append(seq)
            return seq

    def _writable_segment(self, seq: int) -> tuple[_Segment, int]:
        """The segment to append to and its open file descriptor: the active one, or a new one."""
        active_fd = self._active_fd
        if active_fd is not None and self._segments[-1].size < self.config.segment_bytes:
            return self._segments[-1], active_fd
        if active_fd is not None:  # roll: the old segment is complete and durable before the next one starts
            if self.config.fsync:
                os.fsync(active_fd)
            os.close(active_fd)
            self._active_fd = None
        path = self.directory / _segment_name(seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            _write_all(fd, MAGIC)
            if self.config.fsync:
                _fsync_dir(self.directory)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise SpoolError(f"cannot create a spool segment in {self.directory}: {exc.strerror or exc}") from exc
        self._active_fd = fd
        segment = _Segment(first=seq, end=seq, path=path, size=len(MAGIC))
        self._segments.append(segment)
        return segment, fd

    def sync(self, seq: int) -> None:
        """Return once record ``seq`` is durable; one fsync covers every record appended before it started."""
        if self.durable_seq > seq:
            return
        with self._sync_lock:
            if self.durable_seq > seq:  # someone else's fsync covered it meanwhile
                return
            with self._lock:
                target = self.next_seq
                fd = os.dup(self._active_fd) if self._active_fd is not None else None
            if fd is not None:  # a dup: an append may roll and close the segment while this runs
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self.durable_seq = max(self.durable_seq, target)

    # --- reading and checkpointing -------------------------------------------------------------------

    def read(self, start: int, stop: int, max_spans: int | None = None, max_bytes: int | None = None) -> list[Record]:
        """Records with ``start <= seq < stop`` in order: at least one, then up to ``max_spans`` spans and
        ``max_bytes`` of payload."""
        out: list[Record] = []
        spans = size = 0
        with self._lock:
            segments = [s for s in self._segments if s.end > start and s.first < stop]
        for segment in segments:
            scan = _Scan(segment.path)
            try:
                cursor = self._read_cursor  # sequential reads resume where the last one stopped
                if cursor is not None and cursor[0] == segment.path and segment.first <= cursor[1] <= start:
                    scan.file.seek(cursor[2])
                    scan.offset, seq = cursor[2], cursor[1]
                elif scan.magic_ok():
                    seq = segment.first
                else:
                    raise SpoolError(f"spool segment {segment.path}: {scan.problem}")
                while seq < stop:
                    item = scan.next(seq, payload=seq >= start)
                    if item is None:
                        if scan.problem:
                            raise SpoolError(f"spool segment {segment.path}: {scan.problem}")
                        break  # end of this segment
                    seq += 1
                    record_seq, record_spans, payload = item
                    if record_seq < start or payload is None:  # no payload: read past, before start
                        continue
                    if out and (
                        (max_spans is not None and spans + record_spans > max_spans)
                        or (max_bytes is not None and size + len(payload) > max_bytes)
                    ):
                        return out  # this record starts the next batch
                    out.append(Record(record_seq, record_spans, payload))
                    spans += record_spans
                    size += len(payload)
                    self._read_cursor = (segment.path, seq, scan.offset)
                    if max_spans is not None and spans >= max_spans:
                        return out
            finally:
                scan.close()
        return out

    def begin_batch(self, first: int, end: int) -> None:
        """Record the range about to be exported, so a crash re-forms exactly this batch."""
        with self._lock:
            self.pending_batch = (first, end)
            self._write_checkpoint()

    def commit(self, end: int) -> None:
        """Everything below ``end`` is exported: advance the checkpoint and delete finished segments."""
        with self._lock:
            self.committed = max(self.committed, end)
            self.pending_batch = None
            self._write_checkpoint()
            keep = []
            for index, segment in enumerate(self._segments):
                active_fd = self._active_fd if index == len(self._segments) - 1 else None
                active = active_fd is not None
                done = segment.end <= self.committed
                if done and active_fd is not None and self.next_seq == self.committed:
                    os.close(active_fd)  # all of it exported: start afresh on the next append
                    self._active_fd = None
                    active = False
                if done and not active:
                    with contextlib.suppress(FileNotFoundError):
                        segment.path.unlink()
                    if self._read_cursor and self._read_cursor[0] == segment.path:
                        self._read_cursor = None
                else:
                    keep.append(segment)
            self._segments = keep

    def _write_checkpoint(self) -> None:
        data = {
            "format": 1,
            "spool_id": self.spool_id,
            "committed": self.committed,
            "batch": list(self.pending_batch) if self.pending_batch else None,
        }
        path = self.directory / CHECKPOINT
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(data))
            if self.config.fsync:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(path)
        if self.config.fsync:
            _fsync_dir(self.directory)

    def token(self, first: int, end: int) -> str:
        """The insert deduplication token of the batch of records ``[first, end)``."""
        return f"foothold-spool:{self.spool_id}:{first}-{end}"

    def close(self) -> None:
        with self._lock:
            if self._active_fd is not None:
                with contextlib.suppress(OSError):
                    if self.config.fsync:
                        os.fsync(self._active_fd)
                    os.close(self._active_fd)
                self._active_fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
