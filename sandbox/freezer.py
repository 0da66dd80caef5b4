"""Freezing an execution environment between invocations, as Lambda does, and what each process costs.

Once the runtime and every INVOKE extension have called next, Lambda stops every thread of every process of
the environment until the next INVOKE or SHUTDOWN. ``Freezer`` does that with the environment's cgroup
(``sandbox.cgroups``) where it can, else with SIGSTOP / SIGCONT to each process group the sandbox started.
It also samples each process's CPU time: from its cgroup (every thread and helper it ran, in microseconds),
else from ``/proc/<pid>/task/*/schedstat`` (the threads alive at the time, in nanoseconds).
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

from sandbox.cgroups import EnvironmentGroups, open_environment_groups


@dataclass(frozen=True)
class CpuSample:
    total_us: float
    user_us: float | None  # None where only the total is known
    system_us: float | None


def _proc_cpu_us(pid: int) -> CpuSample | None:
    total_ns = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        with contextlib.suppress(OSError, ValueError, IndexError):
            descriptor = os.open(f"/proc/{pid}/task/{task}/schedstat", os.O_RDONLY)
            try:
                total_ns += int(os.read(descriptor, 256).split()[0])
            finally:
                os.close(descriptor)
    return CpuSample(total_ns / 1000, None, None)


class Freezer:
    """Freeze, thaw and CPU sampling for the processes of one environment."""

    def __init__(self, enabled: bool, use_cgroups: bool = True) -> None:
        self.enabled = enabled
        self.groups: EnvironmentGroups | None = open_environment_groups() if use_cgroups else None
        self.frozen = False
        self._pids: dict[str, int] = {}

    @property
    def mechanism(self) -> str:
        return "cgroup" if self.groups is not None else "signals"

    def add(self, name: str, pid: int) -> None:
        """A process the sandbox started (in its own process group), named as its cost line shows it."""
        self._pids[name] = pid
        if self.groups is not None:
            with contextlib.suppress(OSError):  # it exited already: nothing to freeze or count
                self.groups.add(name, pid)

    def cpu(self, name: str) -> CpuSample | None:
        if self.groups is not None:
            used = self.groups.cpu_us(name)
            if used is not None:
                return CpuSample(used[0] + used[1], used[0], used[1])
        pid = self._pids.get(name)
        return None if pid is None else _proc_cpu_us(pid)

    def freeze(self) -> None:
        if not self.enabled or self.frozen:
            return
        self.frozen = True
        self._set(True)

    def thaw(self) -> None:
        if not self.frozen:
            return
        self.frozen = False
        self._set(False)

    def _set(self, frozen: bool) -> None:
        if self.groups is not None:
            with contextlib.suppress(OSError):
                if self.groups.freeze(frozen):
                    return
        number = signal.SIGSTOP if frozen else signal.SIGCONT
        for pid in self._pids.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, number)

    def limit_cpu(self, memory_mb: int) -> str | None:
        """Cap the environment's CPU as Lambda would; None when done, else why it could not be."""
        if self.groups is None:
            return "no writable cgroup v2 hierarchy here"
        return self.groups.limit_cpu(memory_mb)

    def close(self) -> None:
        self.thaw()
        if self.groups is not None:
            self.groups.close()
