"""TLS on every listener with the real OTel SDK exporters, and client certificates (mTLS).

A throwaway CA, a server certificate for 127.0.0.1/localhost and client certificates are made at test time
with the ``cryptography`` package.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from foothold.collector.config import ConfigError, load_settings
from foothold.collector.discovery import DISCOVERY_FILE
from foothold.collector.service import CollectorThread
from foothold.investigation.access import open_reader
from tests.conftest import make_settings, rows

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402 (after the skip when cryptography is missing)
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402 (after the skip when cryptography is missing)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402 (after the skip when cryptography is missing)

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, issuer_key, issuer_name, *, ca: bool = False, server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name or _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    certificate = builder.sign(issuer_key or key, hashes.SHA256())
    return key, certificate


def _write(directory: Path, name: str, key, certificate) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(autouse=True)
def _no_requests_ca_bundle_override(monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's CA file (psf/requests#3829),
    which would hide the OTLP/HTTP exporter's certificate_file; agents in such environments unset them."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _issue("foothold test CA", None, None, ca=True)
    ca_path, _ = _write(directory, "ca", ca_key, ca_cert)
    server = _write(directory, "server", *_issue("127.0.0.1", ca_key, ca_cert.subject, server=True))
    client = _write(directory, "client", *_issue("agent-fleet-a", ca_key, ca_cert.subject))
    other_key, other_cert = _issue("another CA", None, None, ca=True)
    stranger = _write(directory, "stranger", *_issue("stranger", other_key, other_cert.subject))
    return Pki(ca_path, *server, *client, *stranger)


def _provider(exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "tls-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _emit(exporter, name: str) -> None:
    provider = _provider(exporter)
    with provider.get_tracer("t").start_as_current_span(name):
        pass
    provider.shutdown()


def _request() -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), "raw"
    return request.SerializeToString()


def test_tls_on_every_listener_with_the_sdk_exporters(tmp_path, chdb_dsn, database, pki):
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key), "ca_file": str(pki.ca)}
    with CollectorThread(make_settings(tmp_path, chdb_dsn, database, tls=tls)) as collector:
        urls = {name: collector.endpoint_url(name) for name in ("otlp_grpc", "otlp_http", "query_api")}
        assert all(url.startswith("https://127.0.0.1:") for url in urls.values())
        discovery = orjson.loads((tmp_path / DISCOVERY_FILE).read_bytes())
        assert {name: discovery[name] for name in urls} == urls

        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
        _emit(GrpcSpanExporter(endpoint=urls["otlp_grpc"], credentials=credentials), "over-grpc-tls")
        _emit(
            HttpSpanExporter(endpoint=urls["otlp_http"] + "/v1/traces", certificate_file=str(pki.ca)), "over-http-tls"
        )
        assert rows(collector, "SELECT SpanName FROM {db}.otel_traces ORDER BY SpanName") == [
            ("over-grpc-tls",),
            ("over-http-tls",),
        ]

        plain = urls["otlp_http"].replace("https://", "http://") + "/v1/traces"
        with pytest.raises(httpx.HTTPError):  # cleartext to a TLS port gets no OTLP answer
            httpx.post(plain, content=_request(), headers={"content-type": "application/x-protobuf"}, timeout=5)
        with pytest.raises(httpx.ConnectError):  # and a client that does not trust the CA refuses the server
            httpx.post(
                urls["otlp_http"] + "/v1/traces", content=_request(), headers={"content-type": "application/x-protobuf"}
            )

        with open_reader(collector.settings) as reader:  # the CLI over https, trusting tls.ca_file
            assert reader.query("SELECT count() FROM otel_traces").rows == [[2]]


def test_client_certificates_are_required_when_client_ca_file_is_set(tmp_path, chdb_dsn, database, pki):
    tls = {
        "cert_file": str(pki.server_cert),
        "key_file": str(pki.server_key),
        "client_ca_file": str(pki.ca),
        "ca_file": str(pki.ca),
        "client_cert_file": str(pki.client_cert),
        "client_key_file": str(pki.client_key),
    }
    with CollectorThread(make_settings(tmp_path, chdb_dsn, database, tls=tls)) as collector:
        grpc_target = collector.endpoint_url("otlp_grpc").removeprefix("https://")
        traces = collector.endpoint_url("otlp_http") + "/v1/traces"
        headers = {"content-type": "application/x-protobuf"}
        ca = pki.ca.read_bytes()

        # no client certificate: the handshake fails on both OTLP listeners
        channel = grpc.secure_channel(grpc_target, grpc.ssl_channel_credentials(root_certificates=ca))
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(EXPORT)(_request(), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
        with pytest.raises(httpx.HTTPError):
            httpx.post(
                traces, content=_request(), headers=headers, verify=ssl.create_default_context(cafile=str(pki.ca))
            )

        # a certificate from another CA is refused too
        stranger = ssl.create_default_context(cafile=str(pki.ca))
        stranger.load_cert_chain(str(pki.stranger_cert), str(pki.stranger_key))
        with pytest.raises(httpx.HTTPError):
            httpx.post(traces, content=_request(), headers=headers, verify=stranger)
        channel = grpc.secure_channel(
            grpc_target, grpc.ssl_channel_credentials(ca, pki.stranger_key.read_bytes(), pki.stranger_cert.read_bytes())
        )
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(EXPORT)(_request(), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()

        # the CA's client certificate works, with the SDK exporters and the CLI
        credentials = grpc.ssl_channel_credentials(ca, pki.client_key.read_bytes(), pki.client_cert.read_bytes())
        _emit(GrpcSpanExporter(endpoint=collector.endpoint_url("otlp_grpc"), credentials=credentials), "mtls-grpc")
        _emit(
            HttpSpanExporter(
                endpoint=traces,
                certificate_file=str(pki.ca),
                client_certificate_file=str(pki.client_cert),
                client_key_file=str(pki.client_key),
            ),
            "mtls-http",
        )
        assert rows(collector, "SELECT SpanName FROM {db}.otel_traces ORDER BY SpanName") == [
            ("mtls-grpc",),
            ("mtls-http",),
        ]
        with open_reader(collector.settings) as reader:
            assert reader.query("SELECT count() FROM otel_traces").rows == [[2]]


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"cert_file": "{server_cert}"}, "tls.cert_file and tls.key_file go together"),
        ({"cert_file": "{missing}", "key_file": "{server_key}"}, "is not a readable file"),
        ({"client_ca_file": "{ca}"}, "needs tls.cert_file"),
        ({"client_cert_file": "{client_cert}"}, "tls.client_cert_file and tls.client_key_file go together"),
    ],
)
def test_broken_tls_config_is_refused_at_start(tmp_path, pki, tls, message):
    paths = {
        "server_cert": pki.server_cert,
        "server_key": pki.server_key,
        "ca": pki.ca,
        "client_cert": pki.client_cert,
        "missing": tmp_path / "absent.pem",
    }
    with pytest.raises(ConfigError, match=message):
        load_settings(data_dir=tmp_path, tls={key: value.format(**paths) for key, value in tls.items()})
