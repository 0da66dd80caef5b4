"""The sandbox's private directories: Lambda's /opt, /tmp, /var/lang/bin and /var/runtime, per sandbox.

One temporary root holds them all; it lives as long as the Sandbox (across re-inits, like an execution
environment's disk) and is deleted on close. Where the machine allows it (``sandbox.mounts``), the processes
see them at Lambda's own paths; ``*_path`` attributes say where the processes find each one.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import stat
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from sandbox import mounts, runtimes
from sandbox.config import FunctionConfig
from sandbox.layers import unpack_layers


class Workspace:
    def __init__(self, config: FunctionConfig, runtime: runtimes.Runtime, lambda_paths: bool = True) -> None:
        """``runtime``: the interpreter behind /var/lang/bin and the runtime client linked into /var/runtime."""
        # short prefix: Unix socket paths under TMPDIR must stay below 108 bytes
        self.root = Path(tempfile.mkdtemp(prefix="agsb-"))
        self.namespace: mounts.MountNamespace | None = None
        self.notice: str | None = None  # one line on what of Lambda's file system this machine cannot give
        self._private_tmp = False
        self.runtime = runtime
        try:
            self.opt_dir = self.root / "opt"
            self.tmp_dir = self.root / "tmp"
            self.lang_bin = self.root / "lang" / "bin"
            self.runtime_dir = self.root / "runtime"
            for directory in (self.opt_dir, self.tmp_dir, self.lang_bin, self.runtime_dir):
                directory.mkdir(parents=True)
            unpack_layers(config.layers, self.opt_dir)
            self.task_root = config.task_root
            if lambda_paths:
                self._enter_lambda_paths(config)
            seen = self.namespace is not None
            self.opt_path = mounts.OPT if seen else str(self.opt_dir)
            self.task_root_path = mounts.TASK if seen else str(config.task_root)
            self.runtime_path = mounts.RUNTIME if seen else str(self.runtime_dir)
            self.lang_bin_path = f"{mounts.LANG}/bin" if seen else str(self.lang_bin)
            # None: /tmp itself is the environment's own
            self.tmp_path: str | None = None if seen and self._private_tmp else str(self.tmp_dir)
            self._write_python_shims()
            self.python = f"{self.lang_bin_path}/python{runtime.version}"
            self._link_runtime_client()
            self._write_managed_runtime()
            self.bootstrap = f"{self.runtime_path}/bootstrap"
        except BaseException:
            self.close()
            raise

    def _enter_lambda_paths(self, config: FunctionConfig) -> None:
        reason = mounts.unavailable_reason()
        if reason is not None:
            self.notice = (f"sandbox: {reason}, so processes see the sandbox's own paths, not /opt and /var/task "
                           "(/opt in --env values is rewritten; sandbox.localdomain may not resolve)")
            return
        # The interpreter or this checkout in /tmp would vanish behind a private /tmp: keep the host's then.
        needed = [os.path.dirname(os.path.dirname(os.path.realpath(self.runtime.executable)))]
        if self.runtime.client_dir is not None:
            needed.append(str(self.runtime.client_dir))
        hidden = mounts.host_paths_under_tmp(needed)
        self._private_tmp = not hidden
        binds = [(self.opt_dir, mounts.OPT, True), (config.task_root, mounts.TASK, True),
                 (self.runtime_dir, mounts.RUNTIME, False), (self.lang_bin.parent, mounts.LANG, False),
                 (mounts.hosts_file(self.root / "hosts"), "/etc/hosts", True)]
        if self._private_tmp:
            binds.append((self.tmp_dir, mounts.TMP, False))  # last: the other sources may live in /tmp
        else:
            self.notice = (f"sandbox: {hidden[0]} is in /tmp, so the environment's /tmp is the host's "
                           f"(TMPDIR points to a private directory instead)")
        try:
            self.namespace = mounts.MountNamespace(binds)
        except OSError as error:
            self.notice = f"sandbox: {error}; processes see the sandbox's own paths, not /opt and /var/task"

    def host_path(self, seen: str) -> str:
        """Where a path as the processes see it lives on this machine."""
        if self.namespace is None:
            return seen
        mapping = {mounts.OPT: self.opt_dir, mounts.TASK: self.task_root, mounts.RUNTIME: self.runtime_dir,
                   mounts.LANG: self.lang_bin.parent}
        if self._private_tmp:
            mapping[mounts.TMP] = self.tmp_dir
        for prefix, folder in mapping.items():
            if seen == prefix or seen.startswith(prefix + "/"):
                return str(folder) + seen[len(prefix) :]
        return seen

    def check_runnable(self, program: str, search_path: str) -> None:
        """Raise OSError, as exec would, when ``program`` (searched in ``search_path``) cannot be run; the
        namespace's nsenter would only fail after starting."""
        if self.namespace is None:
            return  # Popen itself says so
        candidates = [program] if "/" in program else [f"{folder}/{program}" for folder in search_path.split(":")]
        for candidate in candidates:
            host = self.host_path(candidate)
            if os.path.isfile(host) and os.access(host, os.X_OK):
                return
        host = self.host_path(candidates[0]) if candidates else program
        code = errno.EACCES if os.path.exists(host) else errno.ENOENT
        raise OSError(code, os.strerror(code), program)

    def command(self, argv: Sequence[str]) -> list[str]:
        """How to start one of the environment's processes (inside Lambda's file system where there is one)."""
        return list(argv) if self.namespace is None else self.namespace.command(argv)

    def _write_python_shims(self) -> None:
        # A script, not a symlink: a venv interpreter finds its pyvenv.cfg only when started by its own path.
        script = f"#!/bin/sh\nexec {shlex.quote(self.runtime.executable)} \"$@\"\n"
        for name in ("python3", self.runtime.name, "python"):
            _write_executable(self.lang_bin / name, script)

    def _link_runtime_client(self) -> None:
        # Lambda's /var/runtime holds awslambdaric beside bootstrap.py, whose folder is first on sys.path.
        if self.runtime.client_dir is None:
            return  # the sandbox's own interpreter: awslambdaric is in its environment
        for entry in sorted(self.runtime.client_dir.iterdir()):
            if entry.name not in ("bin", "__pycache__"):
                (self.runtime_dir / entry.name).symlink_to(entry)

    def _write_managed_runtime(self) -> None:
        templates = resources.files("sandbox") / "managed_runtime"
        source = (templates / "bootstrap.py").read_text()
        (self.runtime_dir / "bootstrap.py").write_text(
            source.replace("@OPT_DIR@", self.opt_path.replace("\\", "\\\\")))
        shell = (templates / "bootstrap.sh").read_text()
        shell = (
            shell.replace("@EXECUTION_ENV@", self.runtime.execution_env)
            .replace("@PYTHON@", shlex.quote(self.python))
            .replace("@BOOTSTRAP_PY@", shlex.quote(f"{self.runtime_path}/bootstrap.py"))
        )
        _write_executable(self.runtime_dir / "bootstrap", shell)

    def map_opt(self, value: str) -> str:
        """A value naming Lambda's /opt points into this sandbox's opt directory, where processes do not
        see the layers at /opt itself."""
        if self.namespace is None and (value == "/opt" or value.startswith("/opt/")):
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
        if self.namespace is not None:
            self.namespace.close()
            self.namespace = None
        shutil.rmtree(self.root, ignore_errors=True)


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
