"""The data layer imports nothing above it: no configuration, engine, analysis or command-line module."""

import ast
from pathlib import Path

import cplir

PACKAGE = Path(cplir.__file__).parent
ABOVE_DATA = ("cplir.config", "cplir.engine", "cplir.analysis", "cplir.cli", "cplir.demo", "cplir.data_check",
              "cplir.models", "cplir.losses", "cplir.inference")


def imported_modules(path: Path) -> set:
    """Every module an ``import`` or ``from ... import`` in ``path`` names (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_data_modules_import_nothing_above_the_data_layer():
    files = sorted((PACKAGE / "data").rglob("*.py"))
    assert len(files) > 20  # the walk found the package
    upward = {f"{path.relative_to(PACKAGE)}: {name}" for path in files for name in imported_modules(path)
              if name.startswith(ABOVE_DATA) or name == "cplir"}
    assert not upward


def test_the_scan_sees_upward_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from cplir.config import load_config\nfrom cplir import engine\n")
    assert {"cplir.config", "cplir.engine"} <= imported_modules(module)
