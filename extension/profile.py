"""What the extension reads about the runtime process in ``/proc`` during an invocation (the pid comes in HELLO).

- Peak resident memory: the process's high-water mark is reset (``clear_refs``, "5", Linux 4.0+) before the
  invocation; its ``VmHWM`` when the invocation span arrives is the invocation's peak.
- Network bytes in and out: ``/proc/<pid>/net/dev`` deltas over every interface but ``lo``. The counters belong
  to the process's network namespace, which on Lambda is the execution environment's own: the function's
  traffic plus whatever the extensions send meanwhile (with ``AFTERGLOW_FLUSH=end`` this one sends nothing
  while the function runs).
- Bytes written (``/proc/<pid>/io`` ``wchar``): ``write()`` calls to stdout, stderr, pipes and files, not
  ``send()`` on sockets (the tracer's hand-off, HTTP clients). Zero means the invocation printed nothing, so
  there are no log lines worth waiting for.

When: at the ``checkpoint`` the extension takes just before it asks for the next event, while the runtime is idle
(at INVOKE the runtime may already be running the handler: the extension's event and the runtime's are released
together). A process without a checkpoint (a cold start) is baselined at INVOKE or START instead: good enough
for the profile, but its "wrote anything" is then unknown, so the extension waits for the lines.

These reads cost the extension a few tens of microseconds and the function nothing. A file that cannot be read
(another kernel, no permission, the process gone) leaves that reading out, once logged.
"""

from __future__ import annotations

import os
import threading

from tracer.export.diagnostics import log

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

PEAK_RSS = "process.memory.peak_rss"
NETWORK_RECEIVE = "process.network.io.receive"
NETWORK_TRANSMIT = "process.network.io.transmit"


def parse_net_dev(text: str) -> tuple[int, int]:
    """(received, transmitted) bytes summed over every interface but the loopback."""
    received = transmitted = 0
    for line in text.splitlines()[2:]:
        name, sep, counters = line.partition(":")
        fields = counters.split()
        if not sep or name.strip() == "lo" or len(fields) < 9 or not (fields[0].isdigit() and fields[8].isdigit()):
            continue
        received += int(fields[0])
        transmitted += int(fields[8])
    return received, transmitted


def parse_status_kb(text: str, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``), in bytes."""
    for line in text.splitlines():
        if line.startswith(field + ":"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else None
    return None


def parse_io_field(text: str, field: str) -> int | None:
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


class _Baseline:
    __slots__ = ("net", "peak_reset", "pid", "request_id", "settled", "written")

    def __init__(self, request_id: str | None, pid: int) -> None:
        self.request_id = request_id  # None: a checkpoint, for whichever invocation comes next
        self.pid = pid
        self.settled = request_id is None  # taken while the runtime was idle
        self.peak_reset = False
        self.net: tuple[int, int] | None = None
        self.written: int | None = None


class RuntimeWatch:
    """Per invocation: ``begin`` when it starts (INVOKE with a known pid, else START), ``attributes`` for its
    invocation span, ``wrote`` to know whether it printed anything; ``checkpoint`` when it is over, for the next.
    One invocation at a time, as on Lambda."""

    def __init__(self, profile: bool = True, proc: str = "/proc") -> None:
        self.profile = profile
        self._proc = proc
        self._lock = threading.Lock()
        self._current: _Baseline | None = None
        self._unreadable: set[str] = set()

    def _read(self, pid: int, name: str) -> str | None:
        # Raw file descriptors: a third of what open() costs here (these files are under 4 KiB).
        try:
            descriptor = os.open(f"{self._proc}/{pid}/{name}", os.O_RDONLY)
            try:
                return os.read(descriptor, 65536).decode("latin-1")
            finally:
                os.close(descriptor)
        except OSError as error:
            self._once(name, error)
            return None

    def _once(self, name: str, error: Exception) -> None:
        if name not in self._unreadable:
            self._unreadable.add(name)
            log.info("cannot use /proc/<runtime pid>/%s (%s): the invocation profile goes without it", name, error)

    def checkpoint(self, pid: int) -> None:
        """The extension is done with an invocation of ``pid`` and goes to wait for the next: baseline it now."""
        baseline = _Baseline(None, pid)
        self._measure(baseline)
        with self._lock:
            self._current = baseline

    def begin(self, request_id: str, pid: int) -> None:
        """The invocation starts in process ``pid``: adopt the checkpoint, else reset its peak and note its counters
        now. Once per invocation and pid."""
        with self._lock:
            current = self._current
            if current is not None and current.pid == pid and current.request_id in (None, request_id):
                current.request_id = request_id
                return
            # Measured before it is published: INVOKE (main thread) and START (receiver) both begin an invocation,
            # and the one that adopts the baseline must find it complete.
            baseline = _Baseline(request_id, pid)
            self._measure(baseline)
            self._current = baseline

    def _measure(self, baseline: _Baseline) -> None:
        pid = baseline.pid
        io = self._read(pid, "io")
        baseline.written = parse_io_field(io, "wchar") if io is not None else None
        if not self.profile:
            return
        self._reset_peak(baseline)
        net = self._read(pid, "net/dev")
        baseline.net = parse_net_dev(net) if net is not None else None

    def _reset_peak(self, baseline: _Baseline) -> None:
        try:
            descriptor = os.open(f"{self._proc}/{baseline.pid}/clear_refs", os.O_WRONLY)
            try:
                os.write(descriptor, b"5")
            finally:
                os.close(descriptor)
            baseline.peak_reset = True
        except OSError as error:
            self._once("clear_refs", error)

    def _baseline(self, request_id: str, pid: int) -> _Baseline | None:
        current = self._current
        return current if current is not None and current.request_id == request_id and current.pid == pid else None

    def attributes(self, request_id: str, pid: int) -> dict[str, Any]:
        """The profile attributes for the invocation span, read now (the span has just ended)."""
        return self._attributes(request_id, pid)[0]

    def _attributes(self, request_id: str, pid: int) -> tuple[dict[str, Any], tuple[int, int] | None]:
        baseline = self._baseline(request_id, pid)
        if baseline is None or not self.profile:
            return {}, None
        attributes: dict[str, Any] = {}
        if baseline.peak_reset:
            status = self._read(pid, "status")
            peak = parse_status_kb(status, "VmHWM") if status is not None else None
            if peak is not None:
                attributes[PEAK_RSS] = peak
        counters = None
        if baseline.net is not None:
            net = self._read(pid, "net/dev")
            if net is not None:
                counters = parse_net_dev(net)
                attributes[NETWORK_RECEIVE] = max(0, counters[0] - baseline.net[0])
                attributes[NETWORK_TRANSMIT] = max(0, counters[1] - baseline.net[1])
        return attributes, counters

    def wrote(self, request_id: str, pid: int | None) -> bool | None:
        """Did the invocation ``write()`` anything? None when unknown (no checkpoint before it began)."""
        baseline = self._baseline(request_id, pid) if pid is not None else None
        if baseline is None or baseline.written is None or not baseline.settled:
            return None
        io = self._read(baseline.pid, "io")
        now = parse_io_field(io, "wchar") if io is not None else None
        return None if now is None else now > baseline.written
