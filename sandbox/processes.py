"""Processes of an execution environment (the runtime, each extension), with their output captured.

Output is read line by line from one pipe carrying both stdout and stderr, without threads: the pipe and
a pidfd for the exit are watched by the event loop. ``drain()`` reads whatever is already in the pipe,
so the platform can emit a process's lines before the platform event that follows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence

MAX_LINE = 256 * 1024  # CloudWatch splits longer events; so do we
_READ_SIZE = 64 * 1024


def describe_exit(returncode: int) -> str:
    """Go's wording, which Lambda's error messages use: 'exit status 1', 'signal: killed'."""
    if returncode >= 0:
        return f"exit status {returncode}"
    names = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGSEGV: "segmentation fault",
             signal.SIGABRT: "aborted", signal.SIGINT: "interrupt"}
    number = -returncode
    return f"signal: {names.get(signal.Signals(number), signal.Signals(number).name)}"


class Child:
    """One process in its own process group; ``exited`` resolves to its return code."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: str,
        on_line: Callable[[str], None],
        on_exit: Callable[[Child], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_line = on_line
        self._on_exit = on_exit
        self._partial = b""
        # own session: Ctrl-C in a terminal must reach the sandbox only, which then shuts down in order
        self.process = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )
        self.pid = self.process.pid
        self.exited: asyncio.Future[int] = self._loop.create_future()
        assert self.process.stdout is not None
        self._out: int | None = self.process.stdout.fileno()
        os.set_blocking(self._out, False)
        self._loop.add_reader(self._out, self._read_available)
        self._pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            self._pidfd = os.pidfd_open(self.pid)
            self._loop.add_reader(self._pidfd, self._reap)
        else:  # no pidfd (not Linux): a thread waits and hands the exit back to the loop
            threading.Thread(target=self._wait_in_thread, daemon=True).start()

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    # --- output --------------------------------------------------------------------------------

    def _read_available(self) -> None:
        while self._out is not None:
            try:
                chunk = os.read(self._out, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._close_output()
                return
            self._feed(chunk)

    def drain(self) -> None:
        """Emit every complete line already written by the process (call before a platform event)."""
        self._read_available()

    def _feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        while len(self._partial) > MAX_LINE:
            lines.append(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
        for line in lines:
            self._emit(line)

    def _emit(self, raw: bytes) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        # awslambdaric joins a traceback's lines with "\r": it stays one record, as in CloudWatch
        self._on_line(raw.decode("utf-8", errors="replace"))

    def _close_output(self) -> None:
        if self._out is None:
            return
        self._loop.remove_reader(self._out)
        if self._partial:
            self._emit(self._partial)
            self._partial = b""
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._out = None

    # --- exit ----------------------------------------------------------------------------------

    def _reap(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._finish(self.process.wait())

    def _wait_in_thread(self) -> None:
        code = self.process.wait()
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            self._loop.call_soon_threadsafe(self._finish, code)

    def _finish(self, code: int) -> None:
        if self.exited.done():
            return
        self.drain()  # a child that inherited the pipe may keep it open: read what is there, not to EOF
        self.exited.set_result(code)
        self._on_exit(self)

    # --- control -------------------------------------------------------------------------------

    def terminate(self) -> None:
        """SIGTERM to the process itself, as Lambda sends it to the runtime."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the whole process group, so helpers the process started die with it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    async def wait(self, timeout: float) -> bool:
        """True if the process exited within ``timeout`` seconds."""
        if self.exited.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), timeout=max(0.0, timeout))
        except asyncio.TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Stop watching; read what is left. Call after the process is gone."""
        self._read_available()
        self._close_output()
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
