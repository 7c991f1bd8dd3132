"""Hostile files in watched paths: a repository committing ``AGENTS.md -> /dev/zero`` and a FIFO planted as
``~/.ssh/authorized_keys`` must not pin or hang the agent. The tool call completes; the artifact is recorded
with a note instead of a hash. Everything lives in a temp HOME and project (real FIFOs, real symlinks to the
real /dev/zero: the hazard itself, not a stand-in)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from foothold import instrumentation as fh
from foothold import semconv
from foothold.instrumentation.artifacts import file_digest, hash_file
from tests.test_instrumentation import _reset, home, instrument  # noqa: F401 (fixture)

# A deadlock guard, not a timing assertion: a regression hangs or spins forever, a pass takes well under a second.
HANG_GUARD_SECONDS = 120


def _in_thread(work) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_SECONDS)
    assert not worker.is_alive(), "the tool call hung on a special file"
    if errors:
        raise errors[0]


def test_file_digest_reads_only_regular_files_within_the_cap(tmp_path: Path):
    fifo, link, dangling, big, plain = (tmp_path / n for n in ("fifo", "zero", "dangling", "big", "plain"))
    os.mkfifo(fifo)
    os.symlink("/dev/zero", link)
    os.symlink(tmp_path / "nowhere", dangling)
    big.write_bytes(b"x" * 2048)
    plain.write_bytes(b"hello")

    def check() -> None:
        assert file_digest(str(fifo), 1024).note == "not hashed: a FIFO"
        assert file_digest(str(link), 1024).note == "not hashed: a symlink to /dev/zero, not followed"
        assert file_digest(str(dangling), 1024).sha256 is None
        assert file_digest("/dev/zero", 1024).note == "not hashed: a character device"
        assert file_digest(str(tmp_path), 1024).note == "not hashed: a directory"
        over = file_digest(str(big), 1024)
        assert (over.sha256, over.size, over.note) == (None, 2048, "not hashed: over the 1024-byte hash limit")
        assert hash_file(str(plain), 1024) == (hashlib.sha256(b"hello").hexdigest(), 5)
        assert hash_file(str(link), 1024) == (None, None)  # the Claude Code hook's entry point: safe too

    _in_thread(check)


def test_a_fifo_and_a_dev_zero_symlink_in_watched_paths_leave_a_note_not_a_hang(home: Path):
    project = home / "project"
    (project / ".git").mkdir(parents=True)
    (home / ".ssh").mkdir()
    os.symlink("/dev/zero", project / "CLAUDE.md")  # committed in the clone: there before the first call
    harness = instrument(home)
    try:

        def call() -> None:
            with fh.tool_call("bash", arguments={"command": "git clone …"}, cwd=str(project)):
                os.mkfifo(home / ".ssh" / "authorized_keys")
                os.symlink("/dev/zero", project / "AGENTS.md")
                (home / ".bashrc").write_text("alias ll='ls -la'\n")

        _in_thread(call)
        harness.instrumentation.force_flush()
        spans = harness.exporter.get_finished_spans()
    finally:
        harness.close()
        _reset()
    assert [s.name for s in spans if s.name.startswith("execute_tool")] == ["execute_tool bash"]
    artifacts = {
        s.attributes[semconv.ARTIFACT_PATH]: s.attributes
        for s in spans
        if s.name.startswith(semconv.ARTIFACT_SPAN_PREFIX)
    }
    fifo = artifacts[str(home / ".ssh" / "authorized_keys")]
    assert semconv.ARTIFACT_SHA256 not in fifo and fifo[semconv.ARTIFACT_NOTE] == "not hashed: a FIFO"
    agents = artifacts[str(project / "AGENTS.md")]
    assert semconv.ARTIFACT_SHA256 not in agents
    assert agents[semconv.ARTIFACT_NOTE] == "not hashed: a symlink to /dev/zero, not followed"
    bashrc = artifacts[str(home / ".bashrc")]  # a regular file beside them is hashed as before
    assert bashrc[semconv.ARTIFACT_SHA256] == hashlib.sha256(b"alias ll='ls -la'\n").hexdigest()
