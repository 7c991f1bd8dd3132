"""The benchmarks' memory readings count the processes the collector starts (a worker pool), not only its own."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.common import descendants, memory_kib, tree_memory_kib


def test_the_tree_reading_includes_a_child_process_and_adds_its_memory() -> None:
    # The child blocks on its stdin until we close it: no sleep, and it is in our children list from fork on.
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        me = os.getpid()
        assert child.pid in descendants(me)
        own, child_kib, tree = memory_kib(me), memory_kib(child.pid), tree_memory_kib(me)
        assert child_kib["VmHWM"] > 0
        assert tree["VmHWM"] >= own["VmHWM"] + child_kib["VmHWM"]
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    assert child.pid not in descendants(os.getpid())
