"""The dependency matrix: unit and functional tests against the lowest and the newest allowed versions, per Python.

``nox`` (in the ``test`` extra) runs every session; ``make matrix`` is the same. One cell:
``nox -s "tests-3.10(deps='floor')"``. ``floor`` installs with ``-c constraints/floor.txt`` (each floor in setup.cfg,
pinned); ``newest`` installs with ``-c afterglow/layer-constraints.txt``, the versions the layer ships, so the
layer's pins are the ones proven here. ``nox -s lock`` refreshes those pins to the newest releases (then run the
``newest`` sessions before committing them). A floor in setup.cfg is a claim; this is the proof.

It is CPU-heavy (each cell builds a virtualenv and runs a few hundred tests): on a small machine run one cell.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
FLOOR = ROOT / "constraints" / "floor.txt"
LAYER_CONSTRAINTS = ROOT / "afterglow" / "layer-constraints.txt"
PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]
TESTS = ["tests/unit", "tests/functional"]


def _pyenv_interpreters_on_path() -> None:
    """pyenv's shims answer only for its selected versions: put every installed X.Y of ours on PATH directly."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [str(path.parent) for version in PYTHONS
             for path in sorted(root.glob(f"versions/{version}.*/bin/python{version}"))[-1:]]
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_pyenv_interpreters_on_path()
nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = False  # a Python not installed here is skipped, and nox says so
nox.options.sessions = ["tests", "grpc_floor"]
# What the OTLP/gRPC export path imports (the ``grpc`` extra), and the tests that send through it for real.
GRPC_PACKAGES = ("grpcio", "opentelemetry-proto", "googleapis-common-protos")
GRPC_TESTS = ["tests/unit/extension/test_otlp_config.py", "tests/unit/extension/test_logs_settings.py",
              "tests/functional/extension/test_faults.py", "tests/functional/extension/test_logs.py",
              "tests/functional/extension/test_export_imports.py", "tests/integration/extension/test_tls.py",
              "-k", "grpc"]


@nox.session(python=PYTHONS)
@nox.parametrize("deps", ["floor", "newest"])
def tests(session: nox.Session, deps: str) -> None:
    constraints = FLOOR if deps == "floor" else LAYER_CONSTRAINTS
    session.install("-c", str(constraints), "-e", ".[test,bench]")  # bench: the benchmarks' smoke test
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", "-q", "-p", "no:cacheprovider", *(session.posargs or TESTS))


@nox.session(python=PYTHONS)
def grpc_floor(session: nox.Session) -> None:
    """The gRPC export tests against the ``grpc`` extra's floors: the lowest grpcio, opentelemetry-proto and
    googleapis-common-protos setup.cfg allows (``constraints/floor.txt``), checked as installed before the tests run."""
    session.install("-c", str(FLOOR), "-e", ".[grpc,test]")
    frozen = session.run("python", "-m", "pip", "list", "--format=freeze", silent=True)
    installed = dict(line.split("==", 1) for line in str(frozen).splitlines() if "==" in line)
    pinned = _floor_pins(session.python if isinstance(session.python, str) else "")
    for package in GRPC_PACKAGES:
        key = next((name for name in installed if _normalise(name) == package), None)
        if key is None or installed[key] != pinned.get(package):
            session.error(f"{package}: installed {installed.get(key or package)}, its floor is {pinned.get(package)}")
        session.log(f"{package}=={installed[key]} (the floor)")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *(session.posargs or GRPC_TESTS))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _floor_pins(python: str) -> dict[str, str]:
    """``constraints/floor.txt``'s pins that apply to ``python`` (X.Y), by normalised name."""
    from packaging.markers import Marker

    pins = {}
    for line in FLOOR.read_text().splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement.strip() or requirement.startswith("#"):
            continue
        if marker.strip() and python and not Marker(marker.strip()).evaluate({"python_version": python}):
            continue
        name, _, version = requirement.strip().partition("==")
        pins[_normalise(name)] = version
    return pins


@nox.session(python=False)
def lock(session: nox.Session) -> None:
    """Write ``afterglow/layer-constraints.txt``: the newest release of every package the layer installs that has
    wheels for every supported Python on both architectures (what ``afterglow layer build`` resolves for each)."""
    sys.path.insert(0, str(ROOT))
    from packaging.version import Version

    from afterglow.layer import ARCHES, BASE_REQUIREMENTS, GRPC_REQUIREMENTS, SUPPORTED_PYTHONS, Target

    chosen: dict[str, str] = {}
    for python in SUPPORTED_PYTHONS:
        for arch in ARCHES:
            target = Target(python, arch)
            report = ROOT / "build" / f"lock-{python}-{arch}.json"
            report.parent.mkdir(exist_ok=True)
            session.run(
                sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                "--report", str(report), "--target", str(ROOT / "build" / "lock-target"),
                "--platform", target.platform_tag, "--python-version", python, "--implementation", "cp",
                "--abi", target.abi, "--only-binary=:all:", *BASE_REQUIREMENTS, *GRPC_REQUIREMENTS,
            )
            for item in json.loads(report.read_text())["install"]:
                name = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
                version = item["metadata"]["version"]
                # the lowest of the per-target newest: a version every target can install
                if name not in chosen or Version(version) < Version(chosen[name]):
                    chosen[name] = version
    lines = [f"{name}=={chosen[name]}" for name in sorted(chosen)]
    header = ("# What `afterglow layer build` installs (pip -c), proven by `nox -s tests` with deps='newest'.\n"
              "# Regenerate with `nox -s lock`; do not edit by hand.\n")
    LAYER_CONSTRAINTS.write_text(header + "\n".join(lines) + "\n")
    session.log(f"wrote {os.path.relpath(LAYER_CONSTRAINTS)} ({len(lines)} packages)")

