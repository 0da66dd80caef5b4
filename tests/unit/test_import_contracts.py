"""The import contracts (pyproject.toml, checked by ``lint-imports`` in ``make test``) keep up with the tree: the
extension and the export pipeline may use only ``tracer.config`` and ``tracer.wire`` of the function side, so
every other module of ``tracer`` must be on the forbidden list, including one added after the list was written."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli to Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"tracer.config", "tracer.wire", "tracer.export"}  # what the extension may import of tracer


def test_every_function_side_module_of_tracer_is_forbidden_to_the_extension() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (contract,) = [entry for entry in contracts
                   if entry["type"] == "forbidden" and "extension" in entry["source_modules"]
                   and "tracer.export" in entry["source_modules"]]
    modules = {f"tracer.{path.stem}" for path in (ROOT / "tracer").glob("*.py") if path.stem != "__init__"}
    modules |= {f"tracer.{path.name}" for path in (ROOT / "tracer").iterdir()
                if path.is_dir() and (path / "__init__.py").exists()}
    assert modules - SHARED == set(contract["forbidden_modules"])
