"""OTLP/HTTP receiver: ``POST /v1/traces`` (and ``POST /v1/logs`` with a logs pipeline) with protobuf or
JSON bodies, optionally gzip-compressed. Both paths share every rule below.

Status codes follow the OTLP specification: 400 undecodable (a truncated gzip stream included), 413 too
large (checked on the declared length, the received bytes and the decompressed size), 415 unsupported
content type or encoding, 429/503 with Retry-After when the collector cannot take data now. Every refusal
is counted by reason (``metrics.REFUSAL_REASONS``). Responses and errors are encoded in the
request's own format (ExportTraceServiceResponse / google.rpc.Status). With tokens configured a request
needs ``Authorization: Bearer <token>``, else 401 with ``WWW-Authenticate: Bearer`` and a Status body,
answered before the body is read. TLS is uvicorn's (collector/service.py).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from foothold.collector import metrics as m
from foothold.collector import otlp_logs
from foothold.collector.auth import Authenticator, AuthError, stamp_sender, stamping
from foothold.collector.config import AuthConfig, ConnectionsConfig, HttpReceiverConfig, TlsConfig
from foothold.collector.otlp import decode_json, decode_protobuf
from foothold.collector.pipeline import Pipeline
from foothold.collector.receivers import (
    RETRY_AFTER_CLOSED_SECONDS,
    RETRY_AFTER_FULL_SECONDS,
    Outcome,
    Verdict,
    count_answer,
    ingest,
    start_receiver_series,
)
from foothold.collector.serving import HttpListener

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RECEIVER = "otlp_http"  # the receiver label of its metrics


@dataclass(frozen=True)
class _Format:
    media_type: str
    decode: Callable[[bytes], ExportTraceServiceRequest]

    def encode(self, message: Message) -> bytes:
        if self.media_type == JSON:
            return orjson.dumps(json_format.MessageToDict(message))
        encoded: bytes = message.SerializeToString()
        return encoded


_FORMATS = {
    PROTOBUF: _Format(PROTOBUF, decode_protobuf),
    "application/protobuf": _Format(PROTOBUF, decode_protobuf),
    JSON: _Format(JSON, decode_json),
}
_LOGS_FORMATS = {
    PROTOBUF: _Format(PROTOBUF, otlp_logs.decode_protobuf),
    "application/protobuf": _Format(PROTOBUF, otlp_logs.decode_protobuf),
    JSON: _Format(JSON, otlp_logs.decode_json),
}


class _HttpError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason  # a metrics.REFUSAL_REASONS entry


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():  # uvicorn (h11) already answers these 400 itself
        raise _HttpError(400, "malformed", f"Content-Length {declared!r} is not a number of bytes")
    if declared is not None and int(declared) > limit:
        raise _HttpError(413, "too_large", f"request body over the {limit}-byte limit (receivers.http.max_body_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _HttpError(
                413, "too_large", f"request body over the {limit}-byte limit (receivers.http.max_body_bytes)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several), each read to its end, at most ``limit`` bytes in all."""
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise _HttpError(415, "unsupported_media_type", f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    out, rest = bytearray(), body
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise _HttpError(400, "bad_encoding", f"body is not valid gzip: {exc}") from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise _HttpError(
                413, "too_large", f"decompressed body over the {limit}-byte limit (receivers.http.max_body_bytes)"
            )
        if not inflater.eof:
            raise _HttpError(400, "bad_encoding", "gzip body is truncated: it ends inside a gzip member")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


def _status_response(fmt: _Format, status: int, message: str, retry_after: int | None = None) -> Response:
    grpc_code = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 503: 14}.get(status, 2)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    body = fmt.encode(status_pb2.Status(code=grpc_code, message=message))
    return Response(body, status_code=status, media_type=fmt.media_type, headers=headers)


def _unauthorized(fmt: _Format, error: AuthError) -> Response:
    response = _status_response(fmt, 401, str(error))
    challenge = 'Bearer realm="foothold"' + (', error="invalid_token"' if error.reason == "invalid" else "")
    response.headers["WWW-Authenticate"] = challenge
    return response


def otlp_http_app(
    pipeline: Pipeline,
    config: HttpReceiverConfig,
    auth: Authenticator | None = None,
    metrics: m.Metrics | None = None,
    logs_pipeline: Pipeline | None = None,
) -> Starlette:
    auth = auth or Authenticator(AuthConfig())
    metrics = metrics or m.Metrics()
    start_receiver_series(metrics, RECEIVER)

    def received(spans: int) -> None:
        metrics.record(m.SPANS_RECEIVED, spans, receiver=RECEIVER)

    def refused(fmt: _Format, error: _HttpError) -> Response:
        count_answer(metrics, RECEIVER, Outcome(Verdict.BAD_REQUEST, str(error), reason=error.reason))
        return _status_response(fmt, error.status, str(error))

    def export(
        pipeline: Pipeline, formats: dict[str, _Format], stamp: Callable[..., tuple[int, bool]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            return await _export(request, pipeline, formats, stamp)

        return handle

    async def _export(
        request: Request, pipeline: Pipeline, formats: dict[str, _Format], stamp: Callable[..., tuple[int, bool]]
    ) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        fmt = formats.get(media_type)
        try:
            identity = auth.check(request.headers.get("authorization"))
        except AuthError as exc:
            metrics.record(m.AUTH_FAILURES, listener=RECEIVER, reason=exc.reason)
            return _unauthorized(fmt or formats[JSON], exc)
        if fmt is None:
            message = f"unsupported Content-Type {media_type or '(none)'!r}: use {PROTOBUF} or {JSON}"
            return refused(formats[JSON], _HttpError(415, "unsupported_media_type", message))
        try:
            raw = await _read_body(request, config.max_body_bytes)
            encoding = request.headers.get("content-encoding", "").strip().lower()
            body = _decompress(raw, encoding, config.max_body_bytes)
        except _HttpError as exc:
            return refused(fmt, exc)
        decode = stamping(fmt.decode, identity.sender, json=fmt.media_type == JSON, count=received, stamp=stamp)
        # off the loop: decode and spool fsync
        outcome = await asyncio.to_thread(ingest, pipeline, decode, body, metrics, RECEIVER)
        count_answer(metrics, RECEIVER, outcome)
        if outcome.verdict is Verdict.OK and outcome.accepted is not None:  # an OK outcome carries what it accepted
            return Response(fmt.encode(outcome.accepted.response()), media_type=fmt.media_type)
        if outcome.verdict is Verdict.BAD_REQUEST:
            return _status_response(fmt, 400, outcome.message)
        if outcome.verdict is Verdict.FULL:
            return _status_response(fmt, 429, outcome.message, RETRY_AFTER_FULL_SECONDS)
        return _status_response(fmt, 503, outcome.message, RETRY_AFTER_CLOSED_SECONDS)

    routes = [Route("/v1/traces", export(pipeline, _FORMATS, stamp_sender), methods=["POST"])]
    if logs_pipeline is not None:
        routes.append(Route("/v1/logs", export(logs_pipeline, _LOGS_FORMATS, otlp_logs.stamp_sender), methods=["POST"]))
    return Starlette(routes=routes)


class OtlpHttpReceiver:
    """The OTLP/HTTP receiver as a collector component: :func:`otlp_http_app` on its own bounded listener."""

    def __init__(
        self,
        pipeline: Pipeline,
        config: HttpReceiverConfig,
        *,
        auth: Authenticator,
        metrics: m.Metrics,
        connections: ConnectionsConfig,
        tls: TlsConfig,
        logs_pipeline: Pipeline | None = None,
    ) -> None:
        app = otlp_http_app(pipeline, config, auth=auth, metrics=metrics, logs_pipeline=logs_pipeline)
        self._listener = HttpListener(app, RECEIVER, config.address, connections, tls, metrics)

    @property
    def port(self) -> int:
        return self._listener.port

    async def start(self) -> None:
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
