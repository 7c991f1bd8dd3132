"""The discovery file: where a running collector tells the CLI which endpoints it listens on.

Kept apart from the service so that a reader (the CLI, investigation) can find a running collector without
importing the servers (uvicorn, grpc) that the service wires.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

DISCOVERY_FILE = "collector.json"


def write_discovery(data_dir: Path, info: dict) -> None:
    """Atomically, so a reader never sees half a file."""
    path = data_dir / DISCOVERY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    tmp.replace(path)


def read_discovery(data_dir: Path) -> dict | None:
    """The running collector's endpoints, or None when none is running for this data dir."""
    try:
        info = orjson.loads((data_dir / DISCOVERY_FILE).read_bytes())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ProcessLookupError, ValueError, KeyError, orjson.JSONDecodeError):
        return None
    except PermissionError:  # alive, but another user's
        pass
    return info
