"""``afterglow layer build``: the Lambda layer zip, for any supported runtime and architecture.

Layout of the zip::

    python/                  tracer, instrumentation, extension, afterglow.wrapper_bootstrap and their dependencies
    extensions/afterglow     the extension's launcher (Lambda starts every file in extensions/)
    afterglow-instrument     the AWS_LAMBDA_EXEC_WRAPPER script for zero-code instrumentation

Dependencies come from pip for the *target* platform (``--platform manylinux2014_<arch> --python-version
X.Y --only-binary=:all:``), so a build on x86_64 for arm64 gets arm64 wheels, at the versions pinned in
``layer-constraints.txt``: the ones the dependency matrix (``nox``, deps='newest') tested; ``nox -s lock`` renews
them. Bytecode is compiled with the target interpreter when one is installed here (hash-based pycs: the zip's
fixed timestamps would otherwise invalidate timestamp-based ones, and /opt is read-only, so every cold start
would recompile).
The zip is deterministic: sorted entries, fixed timestamps and modes, so the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from afterglow.extras import DISTRIBUTION

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAYER_FILES = Path(__file__).resolve().parent / "layer_files"
LAYER_CONSTRAINTS = Path(__file__).resolve().parent / "layer-constraints.txt"

# Our packages that run inside Lambda; `sandbox` and the CLI stay out of the layer.
RUNTIME_PACKAGES = ("tracer", "instrumentation", "extension")
RUNTIME_MODULES = ("afterglow/__init__.py", "afterglow/wrapper_bootstrap.py")

# The extension writes OTLP/HTTP protobuf itself: no exporter package, no protobuf, unless gRPC is asked for.
BASE_REQUIREMENTS = (
    "opentelemetry-api",
    "opentelemetry-sdk",
    "wrapt",
    "msgpack",
)
GRPC_REQUIREMENTS = ("grpcio", "opentelemetry-proto", "googleapis-common-protos")

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
ARCHES = {"x86_64": "x86_64", "arm64": "aarch64"}

# What the runtime never needs: tests, caches, type stubs, build leftovers, dist-info bloat.
_STRIP_DIRS = {"tests", "test", "__pycache__", "bin"}
_STRIP_SUFFIXES = (".pyi", ".pyc", ".pyo", ".c", ".h", ".pyx", ".pxd")
_DIST_INFO_KEEP = {"METADATA", "entry_points.txt", "top_level.txt", "WHEEL"}

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Target:
    python: str  # "3.12"
    arch: str  # "x86_64" | "arm64"

    @property
    def platform_tag(self) -> str:
        return f"manylinux2014_{ARCHES[self.arch]}"

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


def this_machine() -> Target:
    machine = platform.machine()
    arch = "arm64" if machine in ("aarch64", "arm64") else "x86_64"
    return Target(f"{sys.version_info.major}.{sys.version_info.minor}", arch)


def build_command(args: argparse.Namespace) -> int:
    default = this_machine()
    target = Target(args.python or default.python, args.arch or default.arch)
    if target.python not in SUPPORTED_PYTHONS:
        print(f"afterglow layer build: --python must be one of {', '.join(SUPPORTED_PYTHONS)}", file=sys.stderr)
        return 2
    try:
        report = build_layer(Path(args.output), target, with_grpc=args.with_grpc, log=_stderr)
    except BuildError as error:
        print(f"afterglow layer build: {error}", file=sys.stderr)
        return 1
    print(report.render())
    return 0


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class BuildReport:
    output: Path
    target: Target
    zipped_bytes: int
    unzipped_bytes: int
    by_package: dict[str, int]
    compiled: bool

    def render(self) -> str:
        lines = [
            f"wrote {self.output} for Python {self.target.python} on {self.target.arch}"
            + ("" if self.compiled else " (no bytecode: no local interpreter for that version)"),
            f"  zipped {_mb(self.zipped_bytes)}, unzipped {_mb(self.unzipped_bytes)}",
            "  unzipped size by package:",
        ]
        ranked = sorted(self.by_package.items(), key=lambda item: (-item[1], item[0]))
        lines += [f"    {size / 1024:9.0f} KiB  {name}" for name, size in ranked]
        return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.2f} MB"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def build_layer(output: Path, target: Target, with_grpc: bool = False, log=_stderr) -> BuildReport:  # type: ignore[no-untyped-def]
    """Build the layer zip at ``output`` and return its size report."""
    with tempfile.TemporaryDirectory(prefix="afterglow-layer-") as scratch:
        root = Path(scratch) / "layer"
        site = root / "python"
        site.mkdir(parents=True)
        requirements = BASE_REQUIREMENTS + (GRPC_REQUIREMENTS if with_grpc else ())
        log(f"installing {len(requirements)} requirements for Python {target.python} on {target.arch}")
        _pip_install(site, target, requirements)
        _copy_own_code(site)
        _write_own_dist_info(site)
        _strip(site)
        _copy_layer_files(root)
        compiled = _compile(site, target)
        output.parent.mkdir(parents=True, exist_ok=True)
        unzipped, by_package = _write_zip(root, output)
    return BuildReport(output, target, output.stat().st_size, unzipped, by_package, compiled)


def _pip_install(site: Path, target: Target, requirements: Iterable[str]) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(site),
        "--platform", target.platform_tag,
        "--python-version", target.python,
        "--implementation", "cp",
        "--abi", target.abi,
        "--only-binary=:all:",
        "--constraint", str(LAYER_CONSTRAINTS),
        *requirements,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"pip could not install the dependencies:\n{result.stderr.strip()}")


def _copy_own_code(site: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in RUNTIME_PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, site / package, ignore=ignore)
    for module in RUNTIME_MODULES:
        destination = site / module
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / module, destination)


def _write_own_dist_info(site: Path) -> None:
    """Just enough metadata for our entry points (the `xray` propagator) to be found in /opt/python."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return
    info = site / f"{DISTRIBUTION.replace('-', '_')}-{distribution.version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: {distribution.version}\n")
    entry_points = distribution.read_text("entry_points.txt") or ""
    kept = _without_section(entry_points, "console_scripts")
    if kept.strip():
        (info / "entry_points.txt").write_text(kept)


def _without_section(ini: str, section: str) -> str:
    out: list[str] = []
    skipping = False
    for line in ini.splitlines():
        header = re.fullmatch(r"\s*\[(.+)\]\s*", line)
        if header:
            skipping = header.group(1).strip() == section
        if not skipping:
            out.append(line)
    return "\n".join(out).strip() + "\n"


def _strip(site: Path) -> None:
    # Deepest paths first, so a removed directory is never visited again.
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and _unneeded_dir(path.relative_to(site)):
            shutil.rmtree(path)
        elif path.is_file() and _unneeded_file(path):
            path.unlink()


def _unneeded_dir(relative: Path) -> bool:
    # Only the top-level `bin/` holds console scripts for this machine; a package may own a `bin/`.
    if relative.name == "bin":
        return len(relative.parts) == 1
    return relative.name in _STRIP_DIRS


def _unneeded_file(path: Path) -> bool:
    if path.suffix in _STRIP_SUFFIXES:
        return True
    in_dist_info = path.parent.name.endswith(".dist-info")
    return in_dist_info and path.name not in _DIST_INFO_KEEP and "licen" not in path.name.lower()


def _copy_layer_files(root: Path) -> None:
    for source in sorted(LAYER_FILES.rglob("*")):
        if source.is_file():
            destination = root / source.relative_to(LAYER_FILES)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            destination.chmod(0o755)


def _target_interpreter(target: Target) -> str | None:
    """An installed interpreter of the target version, to compile bytecode with; None if there is none."""
    if target.python == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    candidates = [shutil.which(f"python{target.python}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{target.python}.*/bin/python{target.python}"))
    for candidate in candidates:
        if candidate and _reports_version(candidate, target.python):
            return candidate
    return None


def _reports_version(interpreter: str, version: str) -> bool:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        result = subprocess.run([interpreter, "-c", probe], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def _compile(site: Path, target: Target) -> bool:
    interpreter = _target_interpreter(target)
    if interpreter is None:
        return False
    # -s/-p: paths baked into code objects name /opt/python, not the build's temporary directory.
    command = [
        interpreter, "-m", "compileall", "-q", "-j", "0", "-s", str(site), "-p", "/opt/python",
        "--invalidation-mode", "unchecked-hash", str(site),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "315532800"}
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise BuildError(f"byte-compiling failed:\n{result.stdout}{result.stderr}")
    return True


def _write_zip(root: Path, output: Path) -> tuple[int, dict[str, int]]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    unzipped = 0
    by_package: dict[str, int] = {}
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            relative = path.relative_to(root).as_posix()
            info = zipfile.ZipInfo(relative, date_time=_FIXED_TIME)
            # Only the scripts Lambda runs are executable; wheels' own modes would make the zip depend on them.
            executable = not relative.startswith("python/")
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            info.create_system = 3  # unix, so the modes above are honoured when Lambda unpacks
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            archive.writestr(info, data, compresslevel=9)
            unzipped += len(data)
            by_package[_package_of(relative)] = by_package.get(_package_of(relative), 0) + len(data)
    return unzipped, by_package


def _package_of(relative: str) -> str:
    """The top-level package or module a layer file belongs to, for the size report."""
    parts = relative.split("/")
    if parts[0] != "python" or len(parts) < 2:
        return parts[0]
    name = parts[2] if parts[1] == "__pycache__" and len(parts) > 2 else parts[1]
    if name.endswith(".dist-info"):
        return "(package metadata)"
    return name.split(".")[0]
