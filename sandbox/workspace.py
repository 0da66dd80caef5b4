"""The sandbox's private directories: Lambda's /opt, /tmp, /var/lang/bin and /var/runtime, per sandbox.

One temporary root holds them all; it lives as long as the Sandbox (across re-inits, like an execution
environment's disk) and is deleted on close.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
import tempfile
from importlib import resources
from pathlib import Path

from sandbox.config import FunctionConfig
from sandbox.layers import unpack_layers

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
EXECUTION_ENV = f"AWS_Lambda_python{PYTHON_VERSION}"


class Workspace:
    def __init__(self, config: FunctionConfig) -> None:
        # short prefix: Unix socket paths under TMPDIR must stay below 108 bytes
        self.root = Path(tempfile.mkdtemp(prefix="agsb-"))
        try:
            self.opt_dir = self.root / "opt"
            self.tmp_dir = self.root / "tmp"
            self.lang_bin = self.root / "lang" / "bin"
            self.runtime_dir = self.root / "runtime"
            for directory in (self.opt_dir, self.tmp_dir, self.lang_bin, self.runtime_dir):
                directory.mkdir(parents=True)
            self.python = self._write_python_shims()
            self.bootstrap = self._write_managed_runtime()
            unpack_layers(config.layers, self.opt_dir)
        except BaseException:
            self.close()
            raise

    def _write_python_shims(self) -> Path:
        # A script, not a symlink: a venv interpreter finds its pyvenv.cfg only when started by its own path.
        script = f"#!/bin/sh\nexec {shlex.quote(sys.executable)} \"$@\"\n"
        for name in ("python3", f"python{PYTHON_VERSION}", "python"):
            _write_executable(self.lang_bin / name, script)
        return self.lang_bin / f"python{PYTHON_VERSION}"

    def _write_managed_runtime(self) -> Path:
        templates = resources.files("sandbox") / "managed_runtime"
        bootstrap_py = self.runtime_dir / "bootstrap.py"
        source = (templates / "bootstrap.py").read_text()
        bootstrap_py.write_text(source.replace("@OPT_DIR@", str(self.opt_dir).replace("\\", "\\\\")))
        shell = (templates / "bootstrap.sh").read_text()
        shell = (
            shell.replace("@EXECUTION_ENV@", EXECUTION_ENV)
            .replace("@PYTHON@", shlex.quote(str(self.python)))
            .replace("@BOOTSTRAP_PY@", shlex.quote(str(bootstrap_py)))
        )
        bootstrap = self.runtime_dir / "bootstrap"
        _write_executable(bootstrap, shell)
        return bootstrap

    def map_opt(self, value: str) -> str:
        """A value naming Lambda's /opt points into this sandbox's opt directory instead."""
        if value == "/opt" or value.startswith("/opt/"):
            return str(self.opt_dir) + value[len("/opt") :]
        return value

    def extension_paths(self) -> list[Path]:
        """Every regular file directly in opt/extensions, in name order (subdirectories are skipped)."""
        folder = self.opt_dir / "extensions"
        if not folder.is_dir():
            return []
        return sorted(
            (entry for entry in folder.iterdir() if entry.is_file()),
            key=lambda entry: entry.name,
        )

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
