"""The post-import hook machinery, on real modules written to a temporary directory."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.resources
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from instrumentation import _hooks


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh importable package ``hooked_<n>`` with a module ``target`` that records its own execution."""
    name = f"hooked_{tmp_path.name.replace('-', '_')}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "target.py").write_text("EXECUTED = True\nVALUE = 41\n")
    (root / "data.txt").write_text("resource")
    (root / "broken.py").write_text("raise RuntimeError('the module itself fails')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [module for module in sys.modules if module == name or module.startswith(name + ".")]:
        del sys.modules[module]


def test_callback_runs_after_the_module_has_executed(package: str) -> None:
    seen: list[tuple[str, bool, int]] = []

    def callback(module: ModuleType) -> None:
        seen.append((module.__name__, module.EXECUTED, module.VALUE))
        module.VALUE += 1  # patching: the importer sees the patched module

    _hooks.when_imported(f"{package}.target", callback)
    try:
        assert f"{package}.target" not in sys.modules, "registering must not import"
        assert seen == []
        target = importlib.import_module(f"{package}.target")
        assert seen == [(f"{package}.target", True, 41)]
        assert target.VALUE == 42
        importlib.import_module(f"{package}.target")  # a second import is a cache hit: no second call
        assert len(seen) == 1
    finally:
        _hooks.cancel(f"{package}.target", callback)


def test_a_module_imported_before_registration_is_handled_at_once(package: str) -> None:
    target = importlib.import_module(f"{package}.target")
    seen: list[ModuleType] = []
    _hooks.when_imported(f"{package}.target", seen.append)
    try:
        assert seen == [target]
    finally:
        _hooks.cancel(f"{package}.target", seen.append)


def test_the_module_keeps_its_real_loader(package: str) -> None:
    seen: list[ModuleType] = []
    _hooks.when_imported(f"{package}.target", seen.append)
    _hooks.when_imported(package, seen.append)
    try:
        target = importlib.import_module(f"{package}.target")
        assert isinstance(target.__loader__, importlib.machinery.SourceFileLoader)
        assert isinstance(target.__spec__.loader, importlib.machinery.SourceFileLoader)
        # importlib.resources asks the package's loader for a reader: it must still work.
        assert importlib.resources.files(package).joinpath("data.txt").read_text() == "resource"
        assert len(seen) == 2
    finally:
        _hooks.cancel(f"{package}.target", seen.append)
        _hooks.cancel(package, seen.append)


def test_cancelled_callbacks_do_not_run(package: str) -> None:
    seen: list[ModuleType] = []
    _hooks.when_imported(f"{package}.target", seen.append)
    _hooks.cancel(f"{package}.target", seen.append)
    importlib.import_module(f"{package}.target")
    assert seen == []
    assert f"{package}.target" not in _hooks.waiting()


def test_a_reimported_module_is_handled_again(package: str) -> None:
    seen: list[ModuleType] = []
    _hooks.when_imported(f"{package}.target", seen.append)
    try:
        first = importlib.import_module(f"{package}.target")
        del sys.modules[f"{package}.target"]
        second = importlib.import_module(f"{package}.target")
        assert seen == [first, second] and first is not second
    finally:
        _hooks.cancel(f"{package}.target", seen.append)


@pytest.mark.tracer_may_fail
def test_a_failing_callback_never_breaks_the_import(package: str, swallowed: list[tuple[str, BaseException]]) -> None:
    def broken(module: ModuleType) -> None:
        raise ValueError("our bug")

    seen: list[ModuleType] = []
    _hooks.when_imported(f"{package}.target", broken)
    _hooks.when_imported(f"{package}.target", seen.append)
    try:
        target = importlib.import_module(f"{package}.target")
        assert target.VALUE == 41
        assert seen == [target], "the other callbacks still run"
        assert [type(error) for _, error in swallowed] == [ValueError]
    finally:
        _hooks.cancel(f"{package}.target", broken)
        _hooks.cancel(f"{package}.target", seen.append)


def test_a_module_that_fails_to_import_raises_its_own_error(package: str) -> None:
    seen: list[ModuleType] = []
    _hooks.when_imported(f"{package}.broken", seen.append)
    try:
        with pytest.raises(RuntimeError, match="the module itself fails"):
            importlib.import_module(f"{package}.broken")
        assert seen == []
    finally:
        _hooks.cancel(f"{package}.broken", seen.append)


def test_a_missing_module_still_raises_module_not_found(package: str) -> None:
    seen: list[ModuleType] = []
    _hooks.when_imported(f"{package}.absent", seen.append)
    try:
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"{package}.absent")
    finally:
        _hooks.cancel(f"{package}.absent", seen.append)
