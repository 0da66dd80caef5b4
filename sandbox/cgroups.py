"""Control groups for one execution environment: freeze every process at once, count each one's CPU, cap the CPU.

Lambda freezes the environment with the cgroup freezer and gives it a share of one vCPU proportional to its
memory. Here each environment gets a cgroup v2 group (``cgroup.freeze``, ``cpu.stat``) with one child group per
process (the runtime, each extension), so a process's CPU time includes every thread and helper it ever ran,
to the microsecond. The CPU cap uses the v2 ``cpu`` controller where it is enabled, else the v1 ``cpu``
hierarchy of a hybrid system. ``open_environment_groups`` returns None where no writable cgroup v2 hierarchy
exists (a container without privileges, say); the sandbox then falls back to signals and /proc.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid
from pathlib import Path

_V2_CANDIDATES = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
_V1_CPU = Path("/sys/fs/cgroup/cpu")
_BASE = "afterglow-sandbox"
CFS_PERIOD_US = 100_000
FULL_VCPU_MB = 1769  # Lambda: 1,769 MB of memory is one vCPU


def _v2_root() -> Path | None:
    for candidate in _V2_CANDIDATES:
        if (candidate / "cgroup.subtree_control").exists() and os.access(candidate, os.W_OK):
            return candidate
    return None


def _write(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)


def _read(path: Path) -> bytes:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return os.read(descriptor, 4096)
    finally:
        os.close(descriptor)


def cpu_quota_us(memory_mb: int) -> int:
    """Lambda's CPU share for ``memory_mb`` as a CFS quota per ``CFS_PERIOD_US`` (kernel minimum 1 ms)."""
    return max(1000, round(CFS_PERIOD_US * memory_mb / FULL_VCPU_MB))


class EnvironmentGroups:
    """``<root>/afterglow-sandbox/<environment>/<process>``; the environment's group is what freezes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.group = root / _BASE / uuid.uuid4().hex[:12]
        self.group.mkdir(parents=True)
        self._members: dict[str, Path] = {}
        self._v1_cpu: Path | None = None

    def add(self, name: str, pid: int) -> None:
        """Move ``pid`` into its own group (``name`` is unique within the environment)."""
        member = self.group / name.replace("/", "_")
        member.mkdir(exist_ok=True)
        _write(member / "cgroup.procs", str(pid))
        self._members[name] = member
        if self._v1_cpu is not None:
            _write(self._v1_cpu / "cgroup.procs", str(pid))

    def cpu_us(self, name: str) -> tuple[int, int] | None:
        """(user, system) microseconds the process and everything it started have used, or None."""
        member = self._members.get(name)
        if member is None:
            return None
        try:
            fields = dict(line.split() for line in _read(member / "cpu.stat").decode().splitlines())
            return int(fields["user_usec"]), int(fields["system_usec"])
        except (OSError, KeyError, ValueError):
            return None

    def freeze(self, frozen: bool, timeout: float = 2.0) -> bool:
        """Freeze or thaw every process; True once the kernel says it is done."""
        _write(self.group / "cgroup.freeze", "1" if frozen else "0")
        want = b"frozen 1" if frozen else b"frozen 0"
        deadline = time.monotonic() + timeout
        while want not in _read(self.group / "cgroup.events"):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0002)
        return True

    def limit_cpu(self, memory_mb: int) -> str | None:
        """Cap the environment's CPU as Lambda would for ``memory_mb``; None when done, else why not."""
        quota = cpu_quota_us(memory_mb)
        try:
            if b"cpu" in _read(self.root / "cgroup.controllers").split():
                base = self.group.parent
                for parent in (self.root, base):
                    _write(parent / "cgroup.subtree_control", "+cpu")
                _write(self.group / "cpu.max", f"{quota} {CFS_PERIOD_US}")
                return None
        except OSError as error:
            return f"the cgroup v2 cpu controller refused the limit ({error.strerror})"
        if not (_V1_CPU / "cpu.cfs_quota_us").exists():
            return "no cpu controller is available (neither cgroup v2 nor v1)"
        try:
            group = _V1_CPU / _BASE / self.group.name
            group.mkdir(parents=True, exist_ok=True)
            _write(group / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(group / "cpu.cfs_quota_us", str(quota))
        except OSError as error:
            return f"the cgroup v1 cpu controller refused the limit ({error.strerror})"
        self._v1_cpu = group
        return None

    def kill(self) -> None:
        """SIGKILL everything in the environment, frozen or not (``cgroup.kill``, Linux 5.14+)."""
        with contextlib.suppress(OSError):
            _write(self.group / "cgroup.kill", "1")

    def close(self, timeout: float = 2.0) -> None:
        """Remove the groups once their processes are gone (call after the processes were reaped)."""
        with contextlib.suppress(OSError):
            self.freeze(False, timeout=0.1)
        deadline = time.monotonic() + timeout
        groups = [*self._members.values(), self.group]
        if self._v1_cpu is not None:
            groups.append(self._v1_cpu)
        for group in groups:
            while True:
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:  # EBUSY: a zombie not reaped yet
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)


def open_environment_groups() -> EnvironmentGroups | None:
    """A fresh set of groups for one environment, or None where cgroups cannot be written here."""
    root = _v2_root()
    if root is None:
        return None
    try:
        return EnvironmentGroups(root)
    except OSError:
        return None
