"""OTLP/gRPC receiver (``TraceService/Export``, and ``LogsService/Export`` with a logs pipeline) on grpc.aio.

The request is taken as raw bytes and decoded here, so a malformed body gets INVALID_ARGUMENT with a
reason instead of the library's generic deserialization error. The method is registered as client-streaming
(the same wire format as unary) so that a message the gRPC core refuses as over ``max_message_bytes``
still reaches the handler, as an empty stream, and is counted. With tokens configured every call
needs ``authorization: Bearer <token>`` metadata (else UNAUTHENTICATED); with ``tls.cert_file`` the port
is TLS, and with ``tls.client_ca_file`` clients must present a certificate that CA signed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from foothold.collector import metrics as m
from foothold.collector import otlp_logs
from foothold.collector.auth import Authenticator, AuthError, stamp_sender, stamping
from foothold.collector.config import AuthConfig, ConnectionsConfig, GrpcReceiverConfig, TlsConfig
from foothold.collector.otlp import decode_protobuf
from foothold.collector.pipeline import Pipeline
from foothold.collector.receivers import (
    RETRY_AFTER_CLOSED_SECONDS,
    RETRY_AFTER_FULL_SECONDS,
    Verdict,
    count_answer,
    ingest,
    start_receiver_series,
)
from foothold.collector.serving import grpc_options

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
RECEIVER = "otlp_grpc"  # the receiver label of its metrics
STOP_GRACE_SECONDS = 5.0


def _retry_metadata(code: grpc.StatusCode, message: str, seconds: int) -> tuple[tuple[str, bytes], ...]:
    """RetryInfo in the status details: OTLP clients only retry RESOURCE_EXHAUSTED when it is present."""
    detail = AnyProto()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds)))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


class GrpcReceiver:
    def __init__(
        self,
        pipeline: Pipeline,
        config: GrpcReceiverConfig,
        auth: Authenticator | None = None,
        metrics: m.Metrics | None = None,
        tls: TlsConfig | None = None,
        connections: ConnectionsConfig | None = None,
        logs_pipeline: Pipeline | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._logs_pipeline = logs_pipeline
        self._config = config
        self._auth = auth or Authenticator(AuthConfig())
        self._metrics = metrics or m.Metrics()
        start_receiver_series(self._metrics, RECEIVER)
        self._tls = tls or TlsConfig()
        self._connections = connections or ConnectionsConfig()
        self._server: grpc.aio.Server | None = None
        self.port = 0  # the bound port, once started (endpoint port 0 picks one)

    async def _export(
        self, _requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> ExportTraceServiceResponse:
        return await self._handle(context, self._pipeline, decode_protobuf, stamp_sender)

    async def _export_logs(
        self, _requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> ExportLogsServiceResponse:
        assert self._logs_pipeline is not None
        return await self._handle(context, self._logs_pipeline, otlp_logs.decode_protobuf, otlp_logs.stamp_sender)

    async def _handle(
        self,
        context: grpc.aio.ServicerContext,
        pipeline: Pipeline,
        decoder: Callable[[bytes], ExportTraceServiceRequest],
        stamp: Callable[..., tuple[int, bool]],
    ) -> ExportTraceServiceResponse | ExportLogsServiceResponse:
        """One Export call of either service: the same auth, limits, spool and answers."""
        metadata = context.invocation_metadata() or ()
        authorization = next((value for key, value in metadata if key == "authorization"), None)
        try:
            identity = self._auth.check(authorization if isinstance(authorization, str) else None)
        except AuthError as exc:
            self._metrics.record(m.AUTH_FAILURES, listener=RECEIVER, reason=exc.reason)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        body = await context.read()
        if body is grpc.aio.EOF:  # the core refused the message as too large (or the client left before sending it)
            self._metrics.record(m.REQUESTS_REFUSED, receiver=RECEIVER, reason="too_large")
            message = f"message over the {self._config.max_message_bytes}-byte limit (receivers.grpc.max_message_bytes)"
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)

        def received(spans: int) -> None:
            self._metrics.record(m.SPANS_RECEIVED, spans, receiver=RECEIVER)

        # Off the event loop: decoding is CPU work and the spool fsyncs before we may answer; in worker
        # threads concurrent requests share one fsync (group commit) instead of queueing behind each other.
        decode = stamping(decoder, identity.sender, json=False, count=received, stamp=stamp)
        outcome = await asyncio.to_thread(ingest, pipeline, decode, body, self._metrics, RECEIVER)
        count_answer(self._metrics, RECEIVER, outcome)
        if outcome.verdict is Verdict.OK and outcome.accepted is not None:  # an OK outcome carries what it accepted
            return outcome.accepted.response()
        if outcome.verdict is Verdict.BAD_REQUEST:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, outcome.message)
        if outcome.verdict is Verdict.FULL:
            code, seconds = grpc.StatusCode.RESOURCE_EXHAUSTED, RETRY_AFTER_FULL_SECONDS
        else:
            code, seconds = grpc.StatusCode.UNAVAILABLE, RETRY_AFTER_CLOSED_SECONDS
        await context.abort(code, outcome.message, trailing_metadata=_retry_metadata(code, outcome.message, seconds))
        raise AssertionError("unreachable: context.abort raises")

    async def start(self) -> None:
        limit = self._config.max_message_bytes
        self._server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]
            + grpc_options(self._connections)
        )
        handler = grpc.stream_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=ExportTraceServiceResponse.SerializeToString
        )
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        if self._logs_pipeline is not None:
            logs = grpc.stream_unary_rpc_method_handler(
                self._export_logs,
                request_deserializer=None,
                response_serializer=ExportLogsServiceResponse.SerializeToString,
            )
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(LOGS_SERVICE, {"Export": logs}),)
            )
        address = self._config.address
        host = f"[{address.host}]" if ":" in address.host else address.host
        tls = self._tls
        if tls.cert_file is not None and tls.key_file is not None:  # tls.enabled: the config sets both or neither
            client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
            credentials = grpc.ssl_server_credentials(
                [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
                root_certificates=client_ca,
                require_client_auth=client_ca is not None,
            )
            self.port = self._server.add_secure_port(f"{host}:{address.port}", credentials)
        else:
            self.port = self._server.add_insecure_port(f"{host}:{address.port}")
        if not self.port:
            raise OSError(f"cannot bind OTLP/gRPC on {address}: is the port in use? set receivers.grpc.endpoint")
        await self._server.start()

    async def stop(self) -> None:
        """Stop taking calls; those in flight get ``STOP_GRACE_SECONDS`` to finish."""
        if self._server is not None:
            await self._server.stop(STOP_GRACE_SECONDS)
