"""Processors: each enriches, classifies or marks a batch in place between the pipeline's spool and its
exporter, and they run in the order ``pipeline.processors`` lists them (today's chain by default).

Adding a processor is a module (a class with ``process(batch)``), a line in :data:`REGISTRY` and its name in
``pipeline.processors``. Its settings, if it has any, are a pydantic model in its module, filled from
``processors.<name>`` in the collector config and validated with it. Modules are imported only when a
processor is built or its settings are checked, so reading the config stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:  # the config reads this registry while it loads: nothing here may import the pipeline
    from foothold.collector.pipeline import Processor


@dataclass(frozen=True)
class Registered:
    module: str  # the module that defines it (imported when the processor is built)
    factory: str  # a class or function: (config) -> Processor, or () -> Processor when config is None
    config: str | None = None  # its settings model in the same module

    def config_type(self) -> type[BaseModel] | None:
        if self.config is None:
            return None
        settings: type[BaseModel] = getattr(self._module(), self.config)
        return settings

    def build(self, settings: Mapping[str, Any]) -> Processor:
        factory = getattr(self._module(), self.factory)
        config_type = self.config_type()
        if config_type is None:
            processor: Processor = factory()
        else:
            processor = factory(config_type.model_validate(dict(settings)))
        return processor

    def _module(self) -> Any:
        return importlib.import_module(self.module)


REGISTRY: dict[str, Registered] = {
    # native agent telemetry normalised into GenAI tool calls first, so every record of a call is judged alike
    "native_tool_calls": Registered(f"{__name__}.native", "NativeToolCalls"),
    "classify": Registered(f"{__name__}.classify", "ClassifyProcessor"),
    "code_review": Registered(f"{__name__}.code_review", "CodeReviewProcessor"),
    # last: one record per call, whichever telemetries reported it
    "call_of_record": Registered(f"{__name__}.native", "CallOfRecord", "CallOfRecordConfig"),
}
DEFAULT_CHAIN = ("native_tool_calls", "classify", "code_review", "call_of_record")


def build_processors(names: list[str], settings: Mapping[str, Mapping[str, Any]]) -> list[Processor]:
    """The configured chain, in order (names and settings are validated with the config)."""
    return [REGISTRY[name].build(settings.get(name, {})) for name in names]
