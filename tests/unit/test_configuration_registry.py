"""Every environment variable the code reads is declared once in tracer.config and listed in the README."""

from __future__ import annotations

import re
from pathlib import Path

from tracer import config

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("tracer", "instrumentation", "extension", "afterglow")
NAME = re.compile(r"\b((?:AFTERGLOW|OTEL)_[A-Z0-9_]*[A-Z0-9])\b")
READ = re.compile(r"config\.(?:raw|read_\w+)\(\s*\"([A-Za-z0-9_]+)\"")  # any name read through the registry


def _names_in_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and (path.suffix == ".py" or "layer_files" in path.parts):
                text = path.read_text(errors="replace")
                for name in NAME.findall(text) + READ.findall(text):
                    found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_variable_in_the_code_is_declared() -> None:
    declared = {var.name for var in config.VARS}
    undeclared = {name: where for name, where in _names_in_code().items() if name not in declared}
    assert not undeclared, f"declare these in tracer/config.py VARS: {undeclared}"


def test_every_declared_variable_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    table_rows = {match.group(1) for match in re.finditer(r"^\|\s*`([A-Z0-9_]+)`\s*\|", readme, re.MULTILINE)}
    missing = [var.name for var in config.VARS if var.name not in table_rows]
    assert not missing, f"add these to the README's configuration table: {missing}"


def test_declarations_are_unique_and_documented() -> None:
    names = [var.name for var in config.VARS]
    assert len(names) == len(set(names))
    for var in config.VARS:
        assert var.doc.strip() and var.read_by in ("function", "extension", "both"), var
