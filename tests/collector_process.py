"""A collector run as its own process (``python -m foothold collect -c CONFIG``), the way an operator runs it.

For what only a separate process shows: kill -9 mid-load, a store another process holds, what a child writes
to its log. Readiness is the collector's discovery file (``collector.json`` naming the child's pid), polled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

CLI = [sys.executable, "-m", "foothold"]
READY_WITHIN_SECONDS = 120


def write_config(path: Path, data_dir: Path, store_path: Path, **settings: Any) -> Path:
    """A collector config at ``path``: data in ``data_dir``, a chDB store at ``store_path``, receivers and the query
    API on 127.0.0.1 with ports picked at run time; ``settings`` add sections (``store`` keys are merged)."""
    loopback = {"endpoint": "127.0.0.1:0"}
    document = {
        "data_dir": str(data_dir),
        "receivers": {"grpc": loopback, "http": loopback},
        "query_api": loopback,
        **settings,
        "store": {"dsn": f"chdb://{store_path}", "database": "foothold", **settings.get("store", {})},
    }
    path.write_text(yaml.safe_dump(document))
    return path


def start_collector(config: Path, data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start a collector on ``config``; return the process and its discovery info once it listens.

    Its stdout and stderr are appended to ``log`` (a restart on the same data dir keeps the earlier run's);
    FOOTHOLD_* variables of the test process are not passed on, so only ``config`` decides.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHOLD_")}
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([*CLI, "collect", "-c", str(config)], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_WITHIN_SECONDS  # readiness of another process: poll its discovery file
    while time.monotonic() < deadline:
        try:
            info = orjson.loads((data_dir / "collector.json").read_bytes())
            if info.get("pid") == proc.pid:
                return proc, info
        except (FileNotFoundError, orjson.JSONDecodeError):
            pass
        if proc.poll() is not None:
            raise AssertionError(f"collector exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"collector not ready in {READY_WITHIN_SECONDS} s:\n{log.read_text(errors='replace')}")
