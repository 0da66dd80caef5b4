"""`afterglow layer build` against PyPI: layout, size, determinism, and cross builds with the right binaries."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from afterglow.layer import LAYER_CONSTRAINTS, Target, build_layer, this_machine

pytestmark = pytest.mark.slow

ELF_MACHINES = {62: "x86_64", 183: "arm64"}  # e_machine values: EM_X86_64, EM_AARCH64


@pytest.fixture
def native_layer(built_layer: Path) -> Path:
    return built_layer


def _elf_machine(data: bytes) -> str:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    (machine,) = struct.unpack_from("<H", data, 18)
    return ELF_MACHINES.get(machine, f"unknown({machine})")


def test_layout_has_the_wrapper_the_launcher_and_our_packages(native_layer: Path) -> None:
    with zipfile.ZipFile(native_layer) as archive:
        names = set(archive.namelist())
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
    assert "afterglow-instrument" in names
    assert modes["afterglow-instrument"] & 0o111, "the wrapper must be executable"
    for package in ("tracer", "instrumentation", "extension"):
        assert f"python/{package}/__init__.py" in names
    assert "python/afterglow/wrapper_bootstrap.py" in names
    assert "python/sandbox/__init__.py" not in names, "the sandbox is a development tool, not part of the layer"
    assert not [name for name in names if "/tests/" in name or name.endswith(".pyi")]


def test_ships_the_dependency_versions_the_matrix_proved(native_layer: Path) -> None:
    pinned = dict(line.lower().split("==") for line in LAYER_CONSTRAINTS.read_text().splitlines()
                  if line and not line.startswith("#"))
    shipped = {}
    with zipfile.ZipFile(native_layer) as archive:
        for name in archive.namelist():
            ours = name.startswith("python/afterglow")
            if name.startswith("python/") and name.endswith(".dist-info/METADATA") and not ours:
                header = archive.read(name).decode().split("\n\n", 1)[0]
                fields = dict(line.split(": ", 1) for line in header.splitlines() if ": " in line)
                shipped[fields["Name"].lower().replace("_", "-")] = fields["Version"]
    assert shipped
    assert {name: pinned.get(name) for name in shipped} == shipped


def test_ships_bytecode_for_the_target_interpreter(native_layer: Path) -> None:
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    with zipfile.ZipFile(native_layer) as archive:
        names = archive.namelist()
        pyc = archive.read(f"python/tracer/__pycache__/__init__.{tag}.pyc")
    assert f"python/opentelemetry/trace/__pycache__/__init__.{tag}.pyc" in names
    flags = struct.unpack_from("<I", pyc, 4)[0]
    assert flags & 0b01, "bytecode must be hash-based: fixed zip timestamps would invalidate timestamp-based pycs"


def test_fits_the_size_budget(native_layer: Path) -> None:
    with zipfile.ZipFile(native_layer) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    assert native_layer.stat().st_size <= 5_000_000
    assert unzipped <= 20_000_000


def test_same_inputs_give_the_same_bytes(native_layer: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.zip"
    build_layer(again, this_machine(), log=lambda message: None)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(native_layer.read_bytes()).hexdigest()


def test_cross_build_for_arm64_carries_arm64_binaries_only(tmp_path: Path) -> None:
    output = tmp_path / "arm64.zip"
    build_layer(output, Target("3.12", "arm64"), log=lambda message: None)
    with zipfile.ZipFile(output) as archive:
        shared_objects = [name for name in archive.namelist() if ".so" in name.rsplit("/", 1)[-1]]
        machines = {name: _elf_machine(archive.read(name)) for name in shared_objects}
        names = archive.namelist()
    assert shared_objects, "msgpack and wrapt ship native code"
    assert set(machines.values()) == {"arm64"}, machines
    for name in shared_objects:
        assert "x86_64" not in name and ("cpython-312" in name or ".abi3." in name), name
    if any("cpython-312.pyc" in name for name in names):  # only where a 3.12 interpreter is installed here
        assert not any("cpython-311.pyc" in name for name in names)


def test_command_line_prints_a_size_breakdown(tmp_path: Path) -> None:
    output = tmp_path / "layer.zip"
    result = subprocess.run(
        [sys.executable, "-m", "afterglow", "layer", "build", "--output", str(output)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}" in result.stdout
    assert "opentelemetry" in result.stdout and "KiB" in result.stdout
    assert output.exists()


def test_rejects_an_unsupported_python(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "afterglow", "layer", "build", "--output", str(tmp_path / "x.zip"), "--python", "3.9"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 2
    assert "--python must be one of" in result.stderr
