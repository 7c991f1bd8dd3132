"""The install layout: one `foothold.` namespace, every package folder listed, the agent side light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_under_the_foothold_namespace():
    setuptools = _pyproject()["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    listed = set(setuptools["packages"])
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert all(name == "foothold" or name.startswith("foothold.") for name in listed)


def test_agent_side_imports_no_clickhouse():
    code = (
        "import sys, foothold.instrumentation, foothold.semconv, foothold.cli\n"
        "heavy = [m for m in ('clickhouse_connect', 'chdb', 'starlette', 'uvicorn') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/", timeout=60)


def test_investigation_reads_the_store_without_the_collector_service():
    """Investigation depends on the schema and the store, not on the service: reading a timeline must not
    start importing the servers (uvicorn, grpc) the service wires."""
    code = (
        "import sys\n"
        "import foothold.investigation.access, foothold.investigation.timeline\n"
        "import foothold.investigation.inventory, foothold.investigation.report\n"
        "heavy = [m for m in ('foothold.collector.service', 'uvicorn', 'grpc') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/", timeout=60)


def test_agent_side_dependencies_exclude_the_collector_stack():
    base = " ".join(_pyproject()["project"]["dependencies"]).lower()
    assert "clickhouse" not in base and "chdb" not in base


def test_wheel_ships_data_files_and_only_the_foothold_namespace(built_wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(built_wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("foothold_audit-")}
    assert top_level == {"foothold"}
    for required in (
        "foothold/detections/rules/alerts.yaml",
        "foothold/detections/rules/persistence.yaml",
        "foothold/templates/timeline.html.j2",
        "foothold/collector/schema/ddl.py",
    ):
        assert required in names


def test_readme_architecture_table_names_modules_and_files_that_exist():
    """The README's map of components (module -> file) is what a new reader trusts first: every module it
    names imports, every file it names exists (a name not rooted at the top is beside the path before it)."""
    import importlib.util
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| Component | Module | File |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 10
    for row in rows:
        _, module_cell, file_cell = (cell.strip() for cell in row.strip("|").split("|"))
        for module in re.findall(r"`([^`]+)`", module_cell):
            assert importlib.util.find_spec(module) is not None, module
        folder = ROOT
        for name in re.findall(r"`([^`]+)`", file_cell):
            if (ROOT / name.split("/")[0]).is_dir() and "/" in name:  # a path from the top
                path = ROOT / name
                folder = path if name.endswith("/") else path.parent
            else:
                path = folder / name
            assert any(path.parent.glob(path.name)) if "*" in name else path.exists(), f"{row}: {name}"
