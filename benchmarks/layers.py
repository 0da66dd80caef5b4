"""The layers the configurations run with: afterglow's own, and the field's, installed from PyPI.

afterglow's layer is built fresh by ``afterglow layer build`` on every run (it is the code under test), into the
run's own scratch directory, so concurrent runs never share it.
The field's layers are ``pip install --target`` directories cached under ``benchmarks/.cache/`` (git-ignored),
keyed by what they install (the peers' layers, pinned by ``benchmarks/peer-constraints.txt`` and installed with
their runtime's own interpreter, under ``~/.cache/afterglow/peer-layers/``, so that fresh checkouts on one
machine share them), and byte-compiled the way afterglow's layer is (unchecked-hash pycs), so neither
side pays for compiling at cold start.

The sandbox copies a layer into every fresh environment, which for a few thousand files costs more than the
cold start being measured. So each configuration gets its layer as a directory of symbolic links to the
unpacked tree (``Layer.linked``); the sandbox keeps links as links, every environment sees the same bytes, and
nothing is copied, much as Lambda mounts a layer read-only instead of copying it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent
CACHE = HERE / ".cache"
LAYER_FILES = HERE / "layer_files"

Log = Callable[[str], None]

# What the OpenTelemetry Lambda layer puts in the function for tracing: the aws-lambda instrumentation,
# the SDK with the OTLP/HTTP exporter, and `opentelemetry-instrument` (from opentelemetry-instrumentation)
# with the distro that configures the SDK from OTEL_* variables.
OTEL_REQUIREMENTS = (
    "opentelemetry-distro",
    "opentelemetry-instrumentation-aws-lambda",
    "opentelemetry-exporter-otlp-proto-http",
)
# The X-Ray SDK; botocore is part of the Lambda runtime, so the layer brings only the SDK and wrapt.
XRAY_REQUIREMENTS = ("aws-xray-sdk", "wrapt")


class LayerError(RuntimeError):
    """A layer that could not be built or installed (the message says which and why)."""


@dataclass(frozen=True)
class Layer:
    name: str
    tree: Path  # the unpacked layer
    versions: dict[str, str]  # distribution -> version, for the results' record of what ran
    extra: tuple[tuple[str, Path], ...] = ()  # files added at the layer's root: (name, source)

    def linked(self, workdir: Path) -> Path:
        """What the sandbox is given: a directory (in this run's ``workdir``) of links to the top-level entries."""
        links = workdir / f"{self.name}.layer"
        links.mkdir(parents=True)
        added = {name for name, _ in self.extra}
        for entry in sorted(self.tree.iterdir()):
            if not entry.name.startswith(".") and entry.name not in added:
                (links / entry.name).symlink_to(entry.resolve())
        for name, source in self.extra:
            (links / name).symlink_to(source.resolve())
        return links


def afterglow_layer(workdir: Path, log: Log = print, checkout: Path | None = None, name: str = "afterglow") -> Layer:
    """Build afterglow's layer zip from the working tree (or from another ``checkout``: its own builder, run there)
    with the project's own builder, and unpack it."""
    output = workdir / f"{name}-layer.zip"
    log(f"building the {name} layer (afterglow layer build{f' in {checkout}' if checkout else ''})")
    result = subprocess.run(
        [sys.executable, "-m", "afterglow", "layer", "build", "--output", str(output)],
        cwd=checkout or PROJECT_ROOT, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise LayerError(f"afterglow layer build failed:\n{result.stderr.strip() or result.stdout.strip()}")
    tree = workdir / f"{name}-layer"
    _unzip(output, tree)
    return Layer(name, tree, {"afterglow": f"the checkout at {checkout}" if checkout else _project_version()})


def _unzip(archive: Path, destination: Path) -> None:
    """Unpack keeping the zip's Unix modes (zipfile drops them; the launcher and wrapper must stay executable)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            target = zipped.extract(info, destination)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)


def otel_standard_layer(workdir: Path, log: Log = print) -> Layer:
    """The standard OpenTelemetry setup from PyPI, plus our exec wrapper ``otel-instrument`` at its root."""
    layer = _pip_layer("otel-standard", OTEL_REQUIREMENTS, no_deps=False, log=log)
    return replace(layer, extra=(("otel-instrument", LAYER_FILES / "otel-instrument"),))


def xray_layer(workdir: Path, log: Log = print) -> Layer:
    return _pip_layer("xray-sdk", XRAY_REQUIREMENTS, no_deps=True, log=log)


def noop_extension_layer(workdir: Path, log: Log = print) -> Layer:
    return Layer("noop-extension", LAYER_FILES / "noop-extension", {})


def floor_extension_layer(workdir: Path, log: Log = print) -> Layer:
    return Layer("floor-extension", LAYER_FILES / "floor-extension", {})


def peer_layer(name: str, requirements: tuple[str, ...], runtime: str | None, log: Log = print) -> Layer:
    """A peer's layer: ``requirements`` pinned by ``PEER_CONSTRAINTS``, installed by the interpreter of ``runtime``
    (Lambda's runtime setting; None: ours), cached under ``PEER_CACHE``."""
    from sandbox import runtimes

    interpreter = sys.executable
    if runtime is not None and runtime != runtimes.own_name():
        found = runtimes.find_interpreter(runtime)
        if found is None:
            raise LayerError(f"no {runtime} interpreter on this machine (installed: {', '.join(runtimes.installed())})")
        interpreter = found
    constraints = PEER_CONSTRAINTS.read_text()
    return _pip_layer(name, requirements, no_deps=False, log=log, interpreter=interpreter, cache=PEER_CACHE,
                      constraints=PEER_CONSTRAINTS, key_extra=constraints)


def peer_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "afterglow" / "peer-layers"


PEER_CONSTRAINTS = HERE / "peer-constraints.txt"
PEER_CACHE = peer_cache()
# The interpreter's own environment must not leak into another interpreter's pip.
_FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_TARGET", "PIP_PREFIX", "PIP_USER")


def _pip_layer(name: str, requirements: tuple[str, ...], no_deps: bool, log: Log, interpreter: str | None = None,
               cache: Path = CACHE, constraints: Path | None = None, key_extra: str = "") -> Layer:
    """Install once per (requirements, interpreter) into the cache; concurrent runs each install into a private
    directory and the first to finish publishes it with an atomic rename."""
    python = interpreter or sys.executable
    version = sys.version if interpreter is None else _interpreter_version(python)
    key = hashlib.sha256(json.dumps([requirements, no_deps, version, key_extra]).encode()).hexdigest()[:12]
    root = cache / f"{name}-{key}"
    stamp = root / ".installed.json"
    if stamp.is_file():
        return Layer(name, root, json.loads(stamp.read_text()))
    log(f"installing the {name} layer from PyPI: {' '.join(requirements)}")
    cache.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    env = {key: value for key, value in os.environ.items() if key not in _FOREIGN_ENV}
    try:
        site = private / "python"
        command = [
            python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
            "--no-compile", "--target", str(site), *(["--no-deps"] if no_deps else []),
            *(["--constraint", str(constraints)] if constraints else []), *requirements,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0:
            said = [line for line in result.stderr.splitlines() if line.strip() and "is ignored" not in line]
            raise LayerError(f"pip could not install the {name} layer: {' | '.join(said[-3:])[-800:]}")
        compiled = subprocess.run(
            [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(site)],
            capture_output=True, text=True, check=False, env=env,
        )
        if compiled.returncode != 0:
            raise LayerError(f"byte-compiling the {name} layer failed:\n{compiled.stdout}{compiled.stderr}")
        versions = installed_versions(site)
        (private / ".installed.json").write_text(json.dumps(versions, indent=1, sort_keys=True))
        try:
            private.rename(root)
        except OSError:  # another run published it first (or a stale, unstamped one is in the way)
            if not stamp.is_file():
                shutil.rmtree(root, ignore_errors=True)
                private.rename(root)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return Layer(name, root, json.loads(stamp.read_text()))


def _interpreter_version(interpreter: str) -> str:
    result = subprocess.run([interpreter, "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                            check=False, timeout=30)
    if result.returncode != 0:
        raise LayerError(f"{interpreter} did not start: {result.stderr.strip()[-300:]}")
    return result.stdout.strip()


def installed_versions(site: Path) -> dict[str, str]:
    """Distribution name -> version for every package installed in ``site``."""
    found: dict[str, str] = {}
    for distribution in metadata.distributions(path=[str(site)]):
        name = distribution.metadata["Name"]
        if name:
            found[name.lower()] = distribution.version
    return dict(sorted(found.items()))


def foreign_instrumentors(site: Path) -> list[str]:
    """Instrumentor entry points visible to the function that the layer in ``site`` did not bring.

    The sandbox's runtime runs this project's interpreter, so `opentelemetry-instrument` would also load
    any instrumentation installed in our own environment (tests use some); the standard setup should
    load only what its layer ships, so these names go into OTEL_PYTHON_DISABLED_INSTRUMENTATIONS.
    """
    ours = {
        entry.name
        for distribution in metadata.distributions(path=[str(site)])
        for entry in distribution.entry_points
        if entry.group == "opentelemetry_instrumentor"
    }
    everywhere = {entry.name for entry in metadata.entry_points(group="opentelemetry_instrumentor")}
    return sorted(everywhere - ours)


def _project_version() -> str:
    try:
        return metadata.version("afterglow")
    except metadata.PackageNotFoundError:
        return "unknown"
