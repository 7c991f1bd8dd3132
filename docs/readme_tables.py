"""Regenerate the README's generated tables (attributes, rules) from the code: `make readme`."""

import re
from pathlib import Path

from foothold import semconv
from foothold.detections import rules

README = Path(__file__).resolve().parent.parent / "README.md"
TABLES = {"attributes": semconv.markdown_table, "rules": rules.markdown_table}


def main() -> None:
    text = README.read_text()
    for name, table in TABLES.items():
        text = re.sub(
            rf"<!-- {name}:start -->.*<!-- {name}:end -->",
            f"<!-- {name}:start -->\n{table()}\n<!-- {name}:end -->",
            text,
            flags=re.S,
        )
    README.write_text(text)


if __name__ == "__main__":
    main()
