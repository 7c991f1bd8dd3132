"""Read access to the store for the CLI: through the running collector, or directly.

With chDB only the process that owns the data dir can open it, so when a collector is running for that
data dir the CLI goes through its query API; otherwise (or with a ClickHouse server) it opens the store.
The query API client sends the bearer token from ``FOOTHOLD_TOKEN`` (or ``auth.client_token``) and, over
https, verifies the collector with ``tls.ca_file`` (default: the system store) and presents
``tls.client_cert_file`` when the collector requires client certificates.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import orjson

from foothold.collector.config import Settings

if TYPE_CHECKING:
    from foothold.collector.query_door import ReadSession
from foothold.collector.discovery import read_discovery
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

    def close(self) -> None: ...


def _parameter(value: Any) -> str:
    """Query parameters travel as JSON; times in the text form ClickHouse parses for DateTime64."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    raise TypeError(f"cannot send a {type(value).__name__} as a query parameter")


TOKEN_ENV = "FOOTHOLD_TOKEN"


def client_token(settings: Settings | None) -> str | None:
    """The CLI's bearer token: ``FOOTHOLD_TOKEN`` wins over ``auth.client_token``."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    if settings is not None and settings.auth.client_token is not None:
        return settings.auth.client_token.get_secret_value()
    return None


def client_tls(settings: Settings | None) -> ssl.SSLContext | bool:
    """httpx ``verify``: the CA to trust (tls.ca_file) and the client certificate to present (mTLS)."""
    tls = settings.tls if settings is not None else None
    if tls is None or (tls.ca_file is None and tls.client_cert_file is None):
        return True
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.client_cert_file is not None:
        context.load_cert_chain(str(tls.client_cert_file), str(tls.client_key_file))
    return context


_UNAUTHORIZED = (
    f"the collector's query API refused the request (401): set {TOKEN_ENV} (or auth.client_token in the config) "
    "to a token listed in the collector's auth.tokens"
)


class ApiReader:
    def __init__(self, base_url: str, token: str | None = None, verify: ssl.SSLContext | bool = True) -> None:
        self.via = f"collector query API at {base_url}"
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._http = httpx.Client(base_url=base_url, timeout=120, headers=headers, verify=verify)

    def _post(self, path: str) -> httpx.Response:
        try:
            response = self._http.post(path)
        except httpx.HTTPError as exc:
            raise StoreError(
                f"the collector's query API did not answer ({exc}); is `foothold-audit collect` running?"
            ) from exc
        if response.status_code == 401:
            raise StoreError(_UNAUTHORIZED)
        return response

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        body = orjson.dumps(
            {"sql": sql, "parameters": parameters}, default=_parameter, option=orjson.OPT_PASSTHROUGH_DATETIME
        )
        try:
            response = self._http.post("/v1/query", content=body, headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise StoreError(
                f"the collector's query API did not answer ({exc}); is `foothold-audit collect` running?"
            ) from exc
        if response.status_code == 401:
            raise StoreError(_UNAUTHORIZED)
        body = response.json()
        if response.status_code != 200:
            raise StoreError(body.get("error", response.text))
        return QueryResult(body["columns"], body["types"], body["rows"])

    def flush(self) -> None:
        self._post("/v1/flush")

    def evaluate_alerts(self) -> dict[str, Any]:
        response = self._post("/v1/alerts/evaluate")
        if response.status_code != 200:
            raise StoreError(response.json().get("error", response.text))
        report: dict[str, Any] = response.json()  # the collector's EvaluationReport as JSON
        return report

    def verify(self) -> dict[str, Any]:
        """The running collector's own check of the export chain (it owns the store)."""
        response = self._post("/v1/verify")
        if response.status_code != 200:
            raise StoreError(response.json().get("error", response.text))
        report: dict[str, Any] = response.json()  # VerifyReport.to_dict()
        return report

    def close(self) -> None:
        self._http.close()


class DirectReader:
    def __init__(self, settings: Settings) -> None:
        self.via = f"store {settings.store_dsn}"
        self._store = open_store(
            settings.store_dsn, settings.store.database, settings.store.cluster, replicated=settings.store.replicated
        )
        self._client = self._store.client()
        self._settings = settings
        self._session: ReadSession | None = None

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        """The same door as the query API: one judged SELECT under the engine limits."""
        from foothold.collector.query_door import ReadSession
        from foothold.collector.query_guard import QueryRefused

        try:
            if self._session is None:
                embedded = chdb_path(self._settings.store_dsn) is not None
                session_client = self._store.client()
                self._session = ReadSession(session_client, self._settings.query_api, embedded, self._store.database)
            result = self._session.run(sql, parameters)
        except QueryRefused as exc:
            raise StoreError(f"refused: {exc}") from exc
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc
        return QueryResult(result["columns"], result["types"], [list(r) for r in result["rows"]])

    def flush(self) -> None:
        """Nothing is buffered outside a collector."""

    def rows(self, sql: str) -> Sequence[Sequence[Any]]:
        """Every row of a read-only query, values as the driver returns them (`foothold-audit verify`)."""
        try:
            return self._client.query(sql, settings={"readonly": 1}).result_rows
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc

    def close(self) -> None:
        self._store.close()


@contextmanager
def open_reader(settings: Settings) -> Iterator[ApiReader | DirectReader]:
    discovery = read_discovery(settings.data_dir) if chdb_path(settings.store_dsn) else None
    reader: ApiReader | DirectReader
    if discovery and "query_api" in discovery:
        reader = ApiReader(discovery["query_api"], client_token(settings), client_tls(settings))
    else:
        reader = DirectReader(settings)
    try:
        yield reader
    finally:
        reader.close()
