"""What the README shows is what the code does: generated tables, and a configuration example that loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from foothold import semconv
from foothold.detections import rules

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize(("name", "table"), [("attributes", semconv.markdown_table), ("rules", rules.markdown_table)])
def test_readme_tables_match_the_code(name, table):
    found = re.search(rf"<!-- {name}:start -->\n(.*)\n<!-- {name}:end -->", README.read_text(), re.S)
    assert found, f"README.md lost its {name} markers"
    assert found.group(1) == table(), "run `make readme` to regenerate the README tables"


def test_every_attribute_constant_is_documented():
    constants = {
        v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str) and "." in v and " " not in v
    }
    documented = {name for name, _ in semconv.DOCUMENTED}
    assert constants - documented == set()


def test_readme_config_example_is_a_valid_config(tmp_path):
    from foothold.collector.config import load_settings

    block = re.search(r"## Configuration\n.*?```yaml\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md lost its configuration example"
    config = tmp_path / "foothold.yaml"
    config.write_text(block.group(1))
    settings = load_settings(config)
    assert settings.alerts.rules["chained_tools_unchecked"].params == {"max_unchecked_calls": 20}
    assert settings.spool.fsync and settings.limits.max_nesting_depth == 8
