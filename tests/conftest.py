"""Shared fixtures: one real chDB store per test process, a fresh database per test, real collectors.

chDB allows one store path per process, so every test in this process shares one path and isolates
itself with its own database. Collectors listen on 127.0.0.1 with ports picked at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from foothold.collector.config import Settings, load_settings
from foothold.collector.service import Collector, CollectorThread
from foothold.collector.store import Store, open_store

# A two-shard cluster whose shards are both this process (tests/test_cluster.py). Both replicas are
# 127.0.0.1 on the engine's tcp_port with no default_database, which is what makes ClickHouse treat them
# as local: queries take the real distributed planning path (Code 288 and all) without a server, and
# every Distributed read sees each row twice (both shards read the same local table). Shard 2 takes no
# writes (weight 0): both shards are the same table, and a batch split in two under one deduplication token
# would otherwise have its second half dropped as a duplicate of the first (on a real cluster each shard
# deduplicates in its own table).
TEST_CLUSTER = "foothold_test_cluster"
_CLUSTER_CONFIG = f"""<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers>
    <{TEST_CLUSTER}>
      <shard><weight>1</weight><replica><host>127.0.0.1</host><port>9000</port></replica></shard>
      <shard><weight>0</weight><replica><host>127.0.0.1</host><port>9000</port></replica></shard>
    </{TEST_CLUSTER}>
  </remote_servers>
</clickhouse>
"""


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import chdb

    base = Path(os.path.realpath(tmp_path_factory.mktemp("chdb")))
    config = base / "cluster.xml"
    config.write_text(_CLUSTER_CONFIG, encoding="utf-8")
    # chDB has one engine per process and the first handle configures it: open it with the cluster.
    engine = chdb.connect(f"{base / 'store'}?config-file={config}")
    dsn = f"chdb://{base / 'store'}"
    keeper = open_store(dsn, "foothold_keeper")  # keeps the engine up for the whole session
    yield dsn
    keeper.close()
    engine.close()


@pytest.fixture
def database() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(tmp_path: Path, chdb_dsn: str, database: str) -> Settings:
    return make_settings(tmp_path, chdb_dsn, database)


def make_settings(data_dir: Path, dsn: str, database: str, **overrides) -> Settings:
    loopback = {"endpoint": "127.0.0.1:0"}
    values = {
        "data_dir": data_dir,
        "store": {"dsn": dsn, "database": database},
        "receivers": {"grpc": dict(loopback), "http": dict(loopback)},
        "query_api": dict(loopback),
        "batch": {"timeout_seconds": 0.2},
        "fingerprint_key": "test-deployment-key",
    }
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return load_settings(**values)


@pytest.fixture
def collector(settings: Settings) -> Iterator[Collector]:
    with CollectorThread(settings) as running:
        yield running


@pytest.fixture
def store(collector: Collector) -> Store:
    return collector.store


@dataclass
class Agent:
    """A real OpenTelemetry SDK pipeline pointed at a collector, exporting each span as it ends."""

    provider: TracerProvider

    @property
    def tracer(self):
        return self.provider.get_tracer("foothold.tests")

    def close(self) -> None:
        self.provider.shutdown()


def sdk_agent(collector: Collector, protocol: str = "grpc", service: str = "test-agent") -> Agent:
    if protocol == "grpc":
        exporter = GrpcSpanExporter(endpoint=collector.endpoint_url("otlp_grpc"), insecure=True)
    else:
        exporter = HttpSpanExporter(endpoint=collector.endpoint_url("otlp_http") + "/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Agent(provider)


def rows(collector: Collector, sql: str, **parameters) -> list[tuple]:
    """Flush the pipeline, then query the test's database (``{db}`` in the SQL)."""
    assert collector.pipeline.flush(30), "pipeline did not flush in time"
    if collector.logs_pipeline is not None:
        assert collector.logs_pipeline.flush(30), "logs pipeline did not flush in time"
    client = collector.store.client()
    return client.query(sql.format(db=collector.store.database), parameters=parameters).result_rows


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution as users install it: a wheel built from this checkout (no dependencies fetched)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    (wheel,) = out.glob("foothold_audit-*.whl")
    return wheel


@pytest.fixture
def stop_hook_forwarders(tmp_path: Path) -> Iterator[None]:
    """A Claude Code hook test leaves the hook's per-user forwarder behind (it would idle out only after minutes,
    one per test): stop the ones whose state directory is under this test's tmp_path."""
    yield
    from foothold.instrumentation.integrations.hook_forwarder import stop

    for directory in {lock.parent for lock in tmp_path.rglob("forwarder-*.sock.lock")}:
        stop(str(directory))
