"""The invocation profile read from a real process's /proc: the peak is the invocation's own, output is seen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from extension.profile import PEAK_RSS, RuntimeWatch


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_real_process_peak_is_the_invocations_own() -> None:
    program = ("import sys\n"
               "for line in sys.stdin:\n"
               "    block = bytearray(int(line) * 1024 * 1024)\n"
               "    for i in range(0, len(block), 4096): block[i] = 1\n"
               "    del block\n"
               "    print('done', flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdin is not None and child.stdout is not None
        watch = RuntimeWatch()
        child.stdin.write("60\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"  # a 60 MB peak before the invocation began
        watch.checkpoint(child.pid)
        watch.begin("r1", child.pid)
        assert watch.wrote("r1", child.pid) is False
        child.stdin.write("20\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        peak_mb = watch.attributes("r1", child.pid)[PEAK_RSS] / 1024 / 1024
        assert 20 <= peak_mb < 60  # this invocation's 20 MB on top of the interpreter, not the earlier 60
        assert watch.wrote("r1", child.pid) is True  # it printed "done"
    finally:
        child.kill()
        child.wait(5)
