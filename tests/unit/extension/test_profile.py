"""The extension's side of the invocation profile: /proc parsing, the per-invocation baseline, missing files."""

from __future__ import annotations

import threading
from pathlib import Path

from extension.profile import (
    NETWORK_RECEIVE,
    NETWORK_TRANSMIT,
    PEAK_RSS,
    RuntimeWatch,
    parse_io_field,
    parse_net_dev,
    parse_status_kb,
)

NET_DEV = (  # /proc/<pid>/net/dev, spacing squeezed
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls\n"
    "    lo: 713856104  975207    0    0    0     0          0         0 713856104  975207    0    0    0    0 0 0\n"
    "  eth0: {rx}   32299    0    0    0     0          0         0  {tx}   22072    0    0    0     0       0 0\n"
    "vinternal_1:  500 4 0 0 0 0 0 0  700 5 0 0 0 0 0 0\n"
)


def net_dev(rx: int, tx: int) -> str:
    return NET_DEV.format(rx=rx, tx=tx)


def status(hwm_kb: int) -> str:
    return f"Name:\tpython3\nVmPeak:\t  900000 kB\nVmHWM:\t  {hwm_kb} kB\nVmRSS:\t   13620 kB\n"


def io(wchar: int) -> str:
    return f"rchar: 1353168\nwchar: {wchar}\nsyscr: 135\nsyscw: 0\n"


def test_parsing_what_linux_writes() -> None:
    assert parse_net_dev(net_dev(1000, 2000)) == (1500, 2700)  # every interface but lo
    assert parse_net_dev("garbage\n\n  eth0: x y\n") == (0, 0)
    assert parse_status_kb(status(62224), "VmHWM") == 62224 * 1024
    assert parse_status_kb(status(1), "VmSwap") is None
    assert parse_io_field(io(77), "wchar") == 77 and parse_io_field("wchar: n/a", "wchar") is None


class FakeProc:
    """A /proc directory for one process, written by the test."""

    def __init__(self, root: Path, pid: int = 41) -> None:
        self.root, self.pid = root, pid
        self.dir = root / str(pid)
        (self.dir / "net").mkdir(parents=True)
        (self.dir / "clear_refs").write_text("")  # write-only in the real /proc: the test reads what was written
        self.set(rx=100, tx=200, hwm_kb=90_000, wchar=10)

    def set(self, rx: int | None = None, tx: int | None = None, hwm_kb: int | None = None,
            wchar: int | None = None) -> None:
        if rx is not None and tx is not None:
            (self.dir / "net" / "dev").write_text(net_dev(rx, tx))
        if hwm_kb is not None:
            (self.dir / "status").write_text(status(hwm_kb))
        if wchar is not None:
            (self.dir / "io").write_text(io(wchar))

    @property
    def cleared(self) -> str | None:
        """What the watch wrote to clear_refs since the last ``forget_clear``."""
        return (self.dir / "clear_refs").read_text() or None

    def forget_clear(self) -> None:
        (self.dir / "clear_refs").write_text("")


def test_an_invocation_gets_its_own_peak_and_traffic(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    watch = RuntimeWatch(proc=str(tmp_path))
    watch.begin("r1", proc.pid)
    assert proc.cleared == "5"  # the high-water mark is reset as the invocation starts
    proc.set(rx=1100, tx=1200, hwm_kb=30_000)
    assert watch.attributes("r1", proc.pid) == {PEAK_RSS: 30_000 * 1024, NETWORK_RECEIVE: 1000,
                                                 NETWORK_TRANSMIT: 1000}
    assert watch.attributes("r2", proc.pid) == {}  # not the invocation that began
    assert watch.attributes("r1", proc.pid + 1) == {}  # nor its process


def test_begin_is_once_per_invocation_and_process(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    watch = RuntimeWatch(proc=str(tmp_path))
    watch.begin("r1", proc.pid)  # at INVOKE
    proc.set(rx=600, tx=200)
    proc.forget_clear()
    watch.begin("r1", proc.pid)  # at START: the baseline stays the INVOKE's
    assert proc.cleared is None
    assert watch.attributes("r1", proc.pid)[NETWORK_RECEIVE] == 500


def test_the_checkpoint_before_an_invocation_is_its_baseline(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    watch = RuntimeWatch(proc=str(tmp_path))
    watch.checkpoint(proc.pid)  # the extension is done with the previous invocation; the runtime is idle
    assert proc.cleared == "5"
    proc.set(rx=700, tx=200, wchar=10)  # the next one has started (and fetched something) before INVOKE is read
    proc.forget_clear()
    watch.begin("r1", proc.pid)  # adopts the checkpoint: nothing is measured now
    assert proc.cleared is None
    assert watch.attributes("r1", proc.pid)[NETWORK_RECEIVE] == 600
    assert watch.wrote("r1", proc.pid) is False
    proc.set(wchar=11)
    assert watch.wrote("r1", proc.pid) is True
    assert watch.wrote("r2", proc.pid) is None and watch.wrote("r1", None) is None


def test_without_a_checkpoint_whether_it_wrote_is_unknown(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    watch = RuntimeWatch(proc=str(tmp_path))
    watch.checkpoint(proc.pid + 1)  # another process (the one before a cold start)
    watch.begin("r1", proc.pid)  # measured now: the handler may have printed already
    assert watch.wrote("r1", proc.pid) is None
    assert proc.cleared == "5" and watch.attributes("r1", proc.pid)[PEAK_RSS] == 90_000 * 1024


def test_without_the_profile_only_the_output_counter_is_read(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    watch = RuntimeWatch(profile=False, proc=str(tmp_path))
    watch.checkpoint(proc.pid)
    watch.begin("r1", proc.pid)
    assert proc.cleared is None and watch.attributes("r1", proc.pid) == {}
    proc.set(wchar=99)
    assert watch.wrote("r1", proc.pid) is True


def test_missing_files_leave_their_readings_out(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    (proc.dir / "net" / "dev").unlink()
    (proc.dir / "io").unlink()
    watch = RuntimeWatch(proc=str(tmp_path))
    watch.begin("r1", proc.pid)
    assert watch.attributes("r1", proc.pid) == {PEAK_RSS: 90_000 * 1024}
    assert watch.wrote("r1", proc.pid) is None  # unknown: the caller decides
    gone = RuntimeWatch(proc=str(tmp_path))
    gone.begin("r1", 999)  # no such process
    assert gone.attributes("r1", 999) == {} and gone.wrote("r1", 999) is None


def test_a_peak_that_could_not_be_reset_is_not_reported(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    (proc.dir / "clear_refs").unlink()
    (proc.dir / "clear_refs").mkdir()  # cannot be opened for writing
    watch = RuntimeWatch(proc=str(tmp_path))
    watch.begin("r1", proc.pid)
    assert PEAK_RSS not in watch.attributes("r1", proc.pid)  # a lifetime peak would mislead



class SlowNetDev(RuntimeWatch):
    """A /proc whose network counters take a while to read (a loaded machine), the first time."""

    def __init__(self, proc: str) -> None:
        super().__init__(proc=proc)
        self.reading_net = threading.Event()
        self.let_net_through = threading.Event()

    def _read(self, pid: int, name: str) -> str | None:
        if name == "net/dev" and not self.reading_net.is_set():
            self.reading_net.set()
            self.let_net_through.wait(10)
        return super()._read(pid, name)


def test_an_invocation_begun_from_two_threads_finds_its_baseline_complete(tmp_path: Path) -> None:
    # INVOKE (the main thread) and START (the span receiver) both begin the invocation; the receiver then reads the
    # invocation span's profile at once, and must not find a baseline the main thread is still measuring.
    proc = FakeProc(tmp_path)
    watch = SlowNetDev(str(tmp_path))
    read: list[dict[str, object]] = []

    def receiver() -> None:
        watch.begin("r1", proc.pid)
        read.append(watch.attributes("r1", proc.pid))

    main = threading.Thread(target=watch.begin, args=("r1", proc.pid))
    main.start()
    assert watch.reading_net.wait(10)
    spans = threading.Thread(target=receiver)
    spans.start()
    spans.join(0.5)  # time for a receiver that did not wait to read an incomplete baseline
    watch.let_net_through.set()
    main.join(10)
    spans.join(10)
    assert read == [{PEAK_RSS: 90_000 * 1024, NETWORK_RECEIVE: 0, NETWORK_TRANSMIT: 0}]
