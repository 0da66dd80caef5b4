"""Lambda's runtime setting (``python3.10`` ... ``python3.14``): which installed interpreter runs the function,
and the runtime client it needs.

A managed runtime's ``/var/runtime`` holds awslambdaric for its own Python. For the sandbox's own interpreter
that is the sandbox's environment; for any other version the same awslambdaric release is installed once, with
that interpreter's pip, into a per-user cache (``$XDG_CACHE_HOME/afterglow/runtimes/python3.X/...``) and linked
into each environment's runtime directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

SUPPORTED = ("python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
RUNTIME_CLIENT = "awslambdaric"

_NAME = re.compile(r"python(3\.\d+)\Z")
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
_PROBE_TIMEOUT_S = 10.0
_INSTALL_TIMEOUT_S = 300.0
# The sandbox's own environment must not leak into another interpreter (its pip, its probe).
_FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV", "PIP_TARGET",
                "PIP_PREFIX", "PIP_USER")


@dataclass(frozen=True)
class Runtime:
    """A Lambda Python runtime as this machine provides it."""

    name: str  # "python3.12"
    executable: str  # the interpreter the environment's python shims run
    client_dir: Path | None  # awslambdaric for it, linked into /var/runtime; None: the sandbox's own has it

    @property
    def version(self) -> str:
        return self.name.removeprefix("python")

    @property
    def execution_env(self) -> str:
        return f"AWS_Lambda_{self.name}"

    @property
    def runtime_version(self) -> str:
        """As INIT_START and platform.initStart name it (Lambda's read "python:3.12.v45")."""
        return f"python:{self.version}.sandbox"


def own_name() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def check_name(name: str) -> str:
    """``name`` if it is one of Lambda's Python runtime names, else ValueError (naming the installed ones)."""
    if name not in SUPPORTED:
        raise ValueError(f"runtime {name!r} is not a Lambda Python runtime ({', '.join(SUPPORTED)}); "
                         f"installed here: {_installed_list()}")
    return name


def installed() -> dict[str, str]:
    """Every supported runtime this machine has an interpreter for: name -> interpreter."""
    found = {name: find_interpreter(name) for name in SUPPORTED}
    return {name: path for name, path in found.items() if path is not None}


def _installed_list() -> str:
    return ", ".join(installed()) or "none"


@cache
def find_interpreter(name: str) -> str | None:
    """An interpreter that answers as ``name``'s version: the sandbox's own, then PATH, then pyenv's versions
    (read directly: a pyenv shim answers only for the versions pyenv has activated)."""
    version = _NAME.match(name)
    if version is None:
        return None
    if name == own_name():
        return sys.executable
    seen: set[str] = set()
    for candidate in _candidates(version.group(1)):
        real = os.path.realpath(candidate)
        if real in seen or not (os.path.isfile(real) and os.access(real, os.X_OK)):
            continue
        seen.add(real)
        if _reports_version(candidate, version.group(1)):
            return candidate
    return None


def _candidates(version: str) -> list[str]:
    program = f"python{version}"
    on_path = [os.path.join(folder, program) for folder in os.environ.get("PATH", "").split(os.pathsep) if folder]
    versions = _pyenv_root() / "versions"
    patches = versions.glob(f"{version}.*/bin/{program}") if versions.is_dir() else []

    def newest_first(path: Path) -> tuple[int, ...]:
        release = path.parent.parent.name.removeprefix(f"{version}.")
        return tuple(-int(part) for part in re.findall(r"\d+", release)[:1]) or (0,)

    return on_path + [str(path) for path in sorted(patches, key=newest_first)]


@cache
def _pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            answer = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S,
                                    check=False)
            if answer.returncode == 0 and answer.stdout.strip():
                return Path(answer.stdout.strip())
    return Path.home() / ".pyenv"


def _reports_version(interpreter: str, version: str) -> bool:
    try:
        answer = subprocess.run([interpreter, "-c", _PROBE], capture_output=True, text=True,
                                timeout=_PROBE_TIMEOUT_S, env=_clean_env(), check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return answer.returncode == 0 and answer.stdout.strip() == version


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in _FOREIGN_ENV}


def resolve(name: str, log: Callable[[str], None] | None = None) -> Runtime:
    """The runtime ``name`` on this machine, its runtime client installed (once per version and user).

    ValueError when no interpreter of that version is installed here; OSError when the install fails."""
    if name == own_name():
        return Runtime(name, sys.executable, None)
    check_name(name)
    executable = find_interpreter(name)
    if executable is None:
        raise ValueError(f"runtime {name}: no python{name.removeprefix('python')} interpreter on PATH or in "
                         f"pyenv's versions ({_pyenv_root() / 'versions'}); installed here: {_installed_list()}")
    return Runtime(name, executable, runtime_client(name, executable, log))


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "afterglow" / "runtimes"


def client_release() -> str:
    """The awslambdaric release the sandbox's own environment runs: every runtime gets the same."""
    return metadata.version(RUNTIME_CLIENT)


def runtime_client(name: str, executable: str, log: Callable[[str], None] | None = None) -> Path:
    """A directory holding awslambdaric (the sandbox's own release) for ``executable``, installed on first use.

    One install per runtime, version and user: later sandboxes (and other processes, behind a lock) reuse it."""
    release = client_release()
    folder = cache_root() / name
    target = folder / f"{RUNTIME_CLIENT}-{release}"
    if (target / RUNTIME_CLIENT).is_dir():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another sandbox may be installing the same one
        if (target / RUNTIME_CLIENT).is_dir():
            return target
        (log or _stderr)(f"sandbox: installing {RUNTIME_CLIENT} {release} for {name} into {target} (once)")
        staging = Path(tempfile.mkdtemp(prefix=".install-", dir=folder))
        try:
            _pip_install(executable, staging, f"{RUNTIME_CLIENT}=={release}", name)
            shutil.rmtree(target, ignore_errors=True)  # an incomplete leftover
            staging.rename(target)  # complete or absent, never half there
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _pip_install(executable: str, target: Path, requirement: str, name: str) -> None:
    command = [executable, "-m", "pip", "install", "--target", str(target), "--no-input", "--quiet",
               "--disable-pip-version-check", requirement]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S,
                                env=_clean_env(), check=False)
    except subprocess.TimeoutExpired:
        raise OSError(f"runtime {name}: installing {requirement} took over {_INSTALL_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0:
        said = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        reason = said[-1].strip() if said else f"exit code {result.returncode}"
        raise OSError(f"runtime {name}: '{executable} -m pip install {requirement}' failed: {reason}")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
