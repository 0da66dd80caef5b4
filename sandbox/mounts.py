"""Lambda's file system for the environment's processes, in a private mount namespace.

Vendors' extensions hard-code Lambda's paths (a launcher running ``python3 /opt/<name>/extension.py``, a
Telemetry listener bound to ``sandbox.localdomain``). So the runtime and the extensions run where ``/opt`` is
the layers' merged content and ``/var/task`` the function's code (both read-only, as on Lambda),
``/var/runtime`` and ``/var/lang`` the managed runtime, ``/tmp`` private to the environment, and
``/etc/hosts`` resolves ``sandbox.localdomain`` to loopback. One holder process keeps the namespace alive;
each process of the environment enters it through ``nsenter``. This needs root (CAP_SYS_ADMIN); elsewhere
the sandbox keeps its private directories at their own paths and rewrites ``/opt`` in ``--env`` values.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

OPT, TASK, RUNTIME, LANG, TMP = "/opt", "/var/task", "/var/runtime", "/var/lang", "/tmp"
SANDBOX_HOSTS = "sandbox.localdomain sandbox"

# Binds every source in turn ("ro" remounts it read-only), says "ready", then holds the namespace until its
# stdin closes (the sandbox closed it, or died).
_HOLDER_SCRIPT = (
    'set -e; while [ $# -gt 0 ]; do mount --bind "$1" "$2"; '
    'if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi; shift 3; done; '
    "echo ready; exec cat >/dev/null"
)
_START_TIMEOUT_S = 10.0


def _within(path: Path, folder: str) -> bool:
    try:
        return path.resolve().is_relative_to(folder)
    except OSError:
        return False


def host_paths_under_tmp(also: Iterable[str] = ()) -> list[str]:
    """What the processes need from the host (the interpreter, its packages, this checkout, ``also``) that
    lives in /tmp, which a private /tmp would hide."""
    needed = {sys.prefix, sys.base_prefix, os.path.realpath(sys.executable),
              str(Path(__file__).resolve().parent.parent), *also}
    return sorted(path for path in needed if _within(Path(path), TMP))


class MountNamespace:
    """The holder of one sandbox's namespace; ``command`` runs a process inside it."""

    def __init__(self, binds: Sequence[tuple[Path, str, bool]]) -> None:
        """``binds``: (host source, path the processes see, read-only), mounted in order."""
        arguments: list[str] = []
        for source, target, read_only in binds:
            arguments += [str(source), target, "ro" if read_only else "rw"]
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _HOLDER_SCRIPT, "sh",
             *arguments],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
        assert self._holder.stdout is not None
        ready, _, _ = select.select([self._holder.stdout], [], [], _START_TIMEOUT_S)
        line = self._holder.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.close()
            raise OSError(f"could not set up the mount namespace: {self._error() or 'no answer'}")

    def _error(self) -> str:
        with contextlib.suppress(Exception):
            _, error = self._holder.communicate(timeout=1)
            return error.decode(errors="replace").strip().splitlines()[-1]
        return ""

    def command(self, argv: Sequence[str], cwd: str = TASK) -> list[str]:
        return ["nsenter", f"--target={self._holder.pid}", "--mount", f"--wdns={cwd}", "--", *argv]

    def close(self) -> None:
        if self._holder.poll() is None:
            with contextlib.suppress(OSError):
                assert self._holder.stdin is not None
                self._holder.stdin.close()
            try:
                self._holder.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait()
        for stream in (self._holder.stdin, self._holder.stdout, self._holder.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def unavailable_reason() -> str | None:
    """Why processes cannot get Lambda's file system here, or None when they can."""
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    for target in (OPT, TASK, RUNTIME, LANG):
        try:
            os.makedirs(target, exist_ok=True)  # an empty mount point on the host; the content stays private
        except OSError as error:
            return f"cannot create the mount point {target} ({error.strerror})"
    return None


def hosts_file(path: Path) -> Path:
    """The host's /etc/hosts plus ``sandbox.localdomain``, which Lambda resolves inside the environment."""
    try:
        original = Path("/etc/hosts").read_text()
    except OSError:
        original = "127.0.0.1\tlocalhost\n"
    if not original.endswith("\n"):
        original += "\n"
    path.write_text(f"{original}127.0.0.1\t{SANDBOX_HOSTS}\n")
    return path
