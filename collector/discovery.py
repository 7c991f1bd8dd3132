"""The discovery file: where a running collector tells the CLI which endpoints it listens on.

Kept apart from the service so that a reader (the CLI, investigation) can find a running collector without
importing the servers (uvicorn, grpc) that the service wires.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Required, TypedDict

import orjson

DISCOVERY_FILE = "collector.json"


class Discovery(TypedDict, total=False):
    """The file's content: the collector's pid and store, and a URL per listener that is running."""

    pid: Required[int]
    store: Required[str]
    otlp_grpc: str
    otlp_http: str
    query_api: str


def write_discovery(data_dir: Path, info: Mapping[str, object]) -> None:
    """Atomically, so a reader never sees half a file."""
    path = data_dir / DISCOVERY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    tmp.replace(path)


def read_discovery(data_dir: Path) -> Discovery | None:
    """The running collector's endpoints, or None when none is running for this data dir."""
    try:
        info: Discovery = orjson.loads((data_dir / DISCOVERY_FILE).read_bytes())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ProcessLookupError, ValueError, KeyError, orjson.JSONDecodeError):
        return None
    except PermissionError:  # alive, but another user's
        pass
    return info
