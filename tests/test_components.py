"""The collector's components: one lifecycle, built from config, started in dependency order, stopped in reverse;
processors chosen and ordered by config through a registry keyed by name."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pydantic import BaseModel, ConfigDict

from foothold.collector import processors
from foothold.collector.config import ConfigError, load_settings
from foothold.collector.processors.classify import ClassifyProcessor
from foothold.collector.processors.code_review import CodeReviewProcessor
from foothold.collector.processors.native import CallOfRecord, NativeToolCalls
from foothold.collector.rows import SpanBatch
from foothold.collector.service import CollectorThread, default_processors
from tests.conftest import make_settings, rows

COLLECTOR = Path(__file__).resolve().parent.parent / "collector"


class StampConfig(BaseModel):
    """The test processor's own settings (``processors.stamp``), next to it as in a processor module."""

    model_config = ConfigDict(extra="forbid")
    value: str = "x"


class Stamp:
    """A processor added the documented way: a class in a module, a registry line, a config entry."""

    def __init__(self, config: StampConfig) -> None:
        self._value = config.value

    def process(self, batch: SpanBatch) -> None:
        for attrs in batch.span_attributes:
            attrs["test.stamp"] = attrs.get("test.stamp", "") + self._value


@pytest.fixture
def stamp_registered(monkeypatch):
    monkeypatch.setitem(processors.REGISTRY, "stamp", processors.Registered(__name__, "Stamp", "StampConfig"))
    monkeypatch.setitem(processors.REGISTRY, "stamp_again", processors.Registered(__name__, "Stamp", "StampConfig"))


def test_the_default_chain_is_todays_processors_in_order():
    chain = default_processors(load_settings())
    assert [type(p) for p in chain] == [NativeToolCalls, ClassifyProcessor, CodeReviewProcessor, CallOfRecord]


def test_a_processor_gets_its_own_settings_and_the_chain_keeps_the_configured_order(stamp_registered):
    settings = load_settings(
        pipeline={"processors": ["stamp_again", "classify", "stamp"]},
        processors={"stamp": {"value": "b"}, "stamp_again": {"value": "a"}, "call_of_record": {"index_entries": 7}},
    )
    chain = default_processors(settings)
    assert [type(p) for p in chain] == [Stamp, ClassifyProcessor, Stamp]
    batch = SpanBatch(columns={"SpanAttributes": [{}]})
    for processor in chain:
        processor.process(batch)
    assert batch.span_attributes[0]["test.stamp"] == "ab"  # stamp_again ran first, as listed
    assert processors.build_processors(["call_of_record"], settings.processors)[0]._entries == 7


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"pipeline": {"processors": ["classify", "clasify"]}}, "pipeline.processors"),
        ({"processors": {"call_of_record": {"index_entris": 5}}}, "processors.call_of_record.index_entris"),
        ({"processors": {"call_of_record": {"index_entries": 0}}}, "processors.call_of_record.index_entries"),
        ({"processors": {"classify": {"anything": 1}}}, "classify takes no settings"),
        ({"processors": {"nope": {}}}, "unknown processor 'nope'"),
    ],
)
def test_a_processor_config_error_names_the_key(overrides, named):
    with pytest.raises(ConfigError) as raised:
        load_settings(**overrides)
    assert named in str(raised.value)


def _request(name: str) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\1" * 16, b"\2" * 8, name
    span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
    return request.SerializeToString()


def test_components_start_in_dependency_order_and_stop_in_reverse(tmp_path, chdb_dsn, database, stamp_registered):
    settings = make_settings(
        tmp_path,
        chdb_dsn,
        database,
        pipeline={"processors": ["stamp", "call_of_record"]},
        processors={"stamp": {"value": "configured"}},
    )
    stopped: list[str] = []
    running = CollectorThread(settings)
    collector = running.__enter__()
    try:
        names = [name for name, _ in collector._components]
        assert names == [
            "store",
            "metrics_table",
            "workers",
            "pipeline/traces",
            "pipeline/logs",
            "alerts",
            "query_api",
            "otlp_grpc",
            "otlp_http",
        ]
        for name, component in collector._components:
            original = component.stop

            async def stop(name: str = name, original=original) -> None:
                stopped.append(name)
                await original()

            component.stop = stop  # type: ignore[method-assign]
        url = collector.endpoint_url("otlp_http") + "/v1/traces"
        sent = httpx.post(url, content=_request("through-config"), headers={"content-type": "application/x-protobuf"})
        assert sent.status_code == 200 and collector.flush(30)
        stored = rows(collector, "SELECT SpanAttributes['test.stamp'] FROM {db}.otel_traces")
        assert stored == [("configured",)]  # the configured processor ran, with its own settings
    finally:
        running.stop()
    assert stopped == list(reversed(names))


def test_no_component_reaches_back_into_the_service():
    """Data flows one way: the service builds and wires components; none of them imports it."""
    importers = []
    for path in COLLECTOR.rglob("*.py"):
        if path.name == "service.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "foothold.collector.service":
                importers.append(str(path.relative_to(COLLECTOR)))
    assert importers == []
