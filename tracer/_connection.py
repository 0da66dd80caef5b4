"""The function's Unix socket to the extension: HELLO with the ring's descriptor, then END and DRAIN frames.

Spans never travel here (they are in the ring): a connection carries a handful of small frames per invocation,
so a write never meets a full socket unless the extension stopped reading altogether. Writes are non-blocking;
bytes the socket does not take wait (bounded) for the next write. Our own I/O runs with instrumentation
suppressed, so that it is never traced.
"""

from __future__ import annotations

import array
import contextlib
import errno
import socket

from opentelemetry import context as context_api
from opentelemetry.context import Context

from tracer._context_keys import SUPPRESS_INSTRUMENTATION_KEY

_CONNECT_TIMEOUT_S = 0.2
_MAX_UNSENT_BYTES = 64 * 1024  # a stuck extension: beyond this, frames are given up (and reported as lost)
_NO_SIGPIPE = getattr(socket, "MSG_NOSIGNAL", 0)  # a vanished reader is EPIPE, even where SIGPIPE is not ignored
_SUPPRESSED = Context({SUPPRESS_INSTRUMENTATION_KEY: True})


class ConnectionLost(OSError):
    """The extension is gone (or stuck beyond the bound): nothing more can be sent on this connection."""


class Connection:
    """One connection per function process (a forked child opens its own)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._unsent = b""

    @classmethod
    def open(cls, path: str, hello: bytes, ring_fd: int | None) -> Connection:
        """Connect and send HELLO, with ``ring_fd`` attached. Raises OSError when no extension listens."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        token = context_api.attach(_SUPPRESSED)
        try:
            sock.settimeout(_CONNECT_TIMEOUT_S)
            sock.connect(path)
            sock.setblocking(False)
            rights = [] if ring_fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [ring_fd]))]
            sent = sock.sendmsg([hello], rights, _NO_SIGPIPE)  # an empty socket takes a HELLO whole
        except OSError:
            sock.close()
            raise
        finally:
            context_api.detach(token)
        connection = cls(sock)
        connection._unsent = hello[sent:]
        return connection

    def send(self, frame: bytes) -> None:
        """Write ``frame`` (after anything unsent) without blocking. Raises ConnectionLost."""
        data = self._unsent + frame if self._unsent else frame
        token = context_api.attach(_SUPPRESSED)
        try:
            sent = self._sock.send(data, _NO_SIGPIPE)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            raise ConnectionLost(error.errno or errno.EPIPE, error.strerror or str(error)) from None
        finally:
            context_api.detach(token)
        self._unsent = data[sent:]
        if len(self._unsent) > _MAX_UNSENT_BYTES:
            raise ConnectionLost(errno.ENOBUFS, "the extension stopped reading")

    def finish(self, timeout_s: float) -> None:
        """Write what is still unsent, waiting at most ``timeout_s`` (at exit, not on the handler's path); close."""
        if self._unsent:
            token = context_api.attach(_SUPPRESSED)
            try:
                self._sock.settimeout(timeout_s)
                self._sock.sendall(self._unsent)
            except OSError:
                pass
            finally:
                context_api.detach(token)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()
