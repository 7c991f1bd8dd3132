"""The attribute list is written once (foothold/semconv.py) and the README shows exactly that list."""

from __future__ import annotations

import re
from pathlib import Path

from foothold import semconv

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_attribute_table_matches_the_code():
    text = README.read_text()
    table = re.search(r"<!-- attributes:start -->\n(.*)\n<!-- attributes:end -->", text, re.S)
    assert table, "README.md lost its attributes markers"
    assert table.group(1) == semconv.markdown_table(), "regenerate the README table from foothold.semconv.markdown_table()"


def test_every_attribute_constant_is_documented():
    constants = {v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str) and "." in v and " " not in v}
    documented = {name for name, _ in semconv.DOCUMENTED}
    assert constants - documented == set()
