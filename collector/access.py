"""Read access to the store for the CLI: through the running collector, or directly.

With chDB only the process that owns the data dir can open it, so when a collector is running for that
data dir the CLI goes through its query API; otherwise (or with a ClickHouse server) it opens the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
import orjson

from foothold.collector.config import Settings
from foothold.collector.service import read_discovery
from foothold.collector.store import StoreError, chdb_path, open_store


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]


class Reader(Protocol):
    via: str

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult: ...

    def flush(self) -> None: ...


def _parameter(value: Any) -> str:
    """Query parameters travel as JSON; times in the text form ClickHouse parses for DateTime64."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    raise TypeError(f"cannot send a {type(value).__name__} as a query parameter")


class ApiReader:
    def __init__(self, base_url: str) -> None:
        self.via = f"collector query API at {base_url}"
        self._http = httpx.Client(base_url=base_url, timeout=120)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        body = orjson.dumps({"sql": sql, "parameters": parameters}, default=_parameter, option=orjson.OPT_PASSTHROUGH_DATETIME)
        try:
            response = self._http.post("/v1/query", content=body, headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise StoreError(f"the collector's query API did not answer ({exc}); is `foothold collect` running?") from exc
        body = response.json()
        if response.status_code != 200:
            raise StoreError(body.get("error", response.text))
        return QueryResult(body["columns"], body["types"], body["rows"])

    def flush(self) -> None:
        self._http.post("/v1/flush")

    def evaluate_alerts(self) -> dict[str, Any]:
        response = self._http.post("/v1/alerts/evaluate")
        if response.status_code != 200:
            raise StoreError(response.json().get("error", response.text))
        return response.json()

    def close(self) -> None:
        self._http.close()


class DirectReader:
    def __init__(self, settings: Settings) -> None:
        self.via = f"store {settings.store_dsn}"
        self._store = open_store(settings.store_dsn, settings.store.database, settings.store.cluster)
        self._client = self._store.client()

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        try:
            result = self._client.query(sql, parameters=parameters, settings={"readonly": 1})
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc
        return QueryResult(list(result.column_names), [t.name for t in result.column_types], [list(r) for r in result.result_rows])

    def flush(self) -> None:
        """Nothing is buffered outside a collector."""

    def close(self) -> None:
        self._store.close()


@contextmanager
def open_reader(settings: Settings) -> Iterator[Reader]:
    discovery = read_discovery(settings.data_dir) if chdb_path(settings.store_dsn) else None
    reader = ApiReader(discovery["query_api"]) if discovery and "query_api" in discovery else DirectReader(settings)
    try:
        yield reader
    finally:
        reader.close()
