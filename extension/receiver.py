"""The Unix socket the function hands its spans to, and the thread that reads it.

One connection per function process (a new runtime after a re-init connects anew). Each connection has its
own ``extension.ring.FunctionStream``: the socket's frames and, from wire version 2, the frames of the ring the
function shares with HELLO, read at END, at DRAIN, when the connection closes and at ``sync``; DRAIN's and an
export pass's reads stop while the span buffer is full (``extension.backpressure``). A malformed frame
is counted and skipped; a bad header (wrong magic, an unknown wire version, unknown kind, a length over
``MAX_PAYLOAD``) poisons only that connection, which is closed. Whatever arrives, the thread keeps running.

The thread also serves the sockets other parts ``host`` here (the Telemetry API's listener): each thread waiting in
a frozen environment costs CPU at every freeze and thaw (about 30 us per thread and invocation here, measured with a
do-nothing extension), so the extension keeps as few as it can.

Access: the socket's directory is created 0700 and the socket 0600, so only the function's user can connect.
"""

from __future__ import annotations

import array
import contextlib
import os
import selectors
import socket
import stat
import threading

from extension.ring import READ_STEP, SHUTDOWN_READ_STEP, FunctionStream
from tracer import wire
from tracer.export.assembler import Assembler
from tracer.export.diagnostics import log
from tracer.export.frames import dispatch
from tracer.export.stats import Stats
from tracer.export.supervise import supervised

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from extension.backpressure import BackPressure


_READ_SIZE = 256 * 1024
# Function processes are few. Each connection's FrameReader keeps at most one partial frame between reads (under
# HEADER + MAX_PAYLOAD, 4 MiB, plus one read): all of them at once only if every process stopped in the middle of
# a maximal frame, which the tracer's frames (batches of about BATCH_LIMIT_BYTES) do not come near.
_MAX_CONNECTIONS = 16
_ANCILLARY_SIZE = socket.CMSG_SPACE(4 * array.array("i").itemsize)  # HELLO's ring descriptor (a few at most)
_told_previous_version = False  # one log line per process for functions with an older tracer


class SocketSetupError(OSError):
    """The socket cannot be bound; the extension reports it as an init error."""


def bind_socket(path: str) -> socket.socket:
    """Bind a listening Unix socket at ``path``: private directory, private socket, stale socket replaced."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        created = not os.path.isdir(directory)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.stat(directory)
        # Tighten our own directory (a leftover from an earlier environment, or umask-widened), never a shared
        # sticky one such as /tmp itself: there the socket's own 0600 mode is what keeps others out.
        if (created or info.st_uid == os.geteuid()) and not info.st_mode & stat.S_ISVTX:
            os.chmod(directory, 0o700)
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise SocketSetupError(f"{path} exists and is not a socket; refusing to replace it")
            os.unlink(path)  # a stale socket from an earlier extension process
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)  # the socket is born 0600: no window in which others could connect
        try:
            listener.bind(path)
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)
        listener.listen(_MAX_CONNECTIONS)
        listener.setblocking(False)
        return listener
    except SocketSetupError:
        raise
    except OSError as error:
        raise SocketSetupError(f"cannot bind the span socket {path}: {error}") from error


def received_descriptors(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors passed with SCM_RIGHTS in ``recvmsg``'s ancillary data."""
    descriptors: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            descriptors.extend(fds)
    return descriptors


def _spans_in(items: Iterable[Any]) -> int:
    return sum(len(item[1]) for item in items if not isinstance(item, wire.WireError) and item[0] == wire.SPANS)


class _Hosted:
    """Another part's socket served on the receiver's thread: ``on_readable`` when it has something."""

    __slots__ = ("on_readable",)

    def __init__(self, on_readable: Callable[[], None]) -> None:
        self.on_readable = on_readable


class _Halt:
    __slots__ = ("count", "done", "reason")

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.count = 0
        self.done = threading.Event()


class _Connection:
    __slots__ = ("id", "sock", "stream")

    def __init__(self, conn_id: int, sock: socket.socket, polled: bool) -> None:
        self.id = conn_id
        self.sock = sock
        self.stream = FunctionStream(polled)


class Receiver:
    """Accepts function connections and feeds decoded frames to the assembler, on one thread."""

    def __init__(self, listener: socket.socket, assembler: Assembler, stats: Stats, poll_rings: bool = False,
                 back_pressure: BackPressure | None = None) -> None:
        """``poll_rings``: the rings are read at ``sync`` (the background export's passes), so functions put END
        into them rather than on the socket and no invocation wakes this thread. ``back_pressure``: when a ring's
        reads stop, and the bound its function may wait for them."""
        self._listener = listener
        self._poll_rings = poll_rings
        self._back_pressure = back_pressure
        self._assembler = assembler
        self._stats = stats
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._connections: dict[int, _Connection] = {}
        self._closed: dict[int, _Connection] = {}  # closed, their rings not read to the end yet (back-pressure)
        self._next_id = 0
        self._lock = threading.Lock()
        self._sync_waiters: list[tuple[threading.Event, bool]] = []
        self._calls: list[tuple[Callable[[], None], threading.Event]] = []  # to run on the thread (``_on_thread``)
        self._on_failure: list[Callable[[], None]] = []  # the hosts' own, for when the thread stops for good
        self._halt: _Halt | None = None  # asked for, not done yet
        self._halted: list[_Connection] = []  # no longer read (SHUTDOWN): closed at ``stop``
        self._step = READ_STEP  # for new connections' streams
        self._counting = False  # SHUTDOWN: count what the rings hold unread, before reading on
        self._stopping = False
        self.failed = False  # the thread failed for good: spans are no longer received
        self._thread = threading.Thread(target=supervised("span receiver", self._run, self._give_up,
                                                          lambda: self._stopping),
                                        name="afterglow-receiver", daemon=True)

    def start(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()

    def sync(self, timeout_s: float = 0.5, complete: bool = True) -> bool:
        """Return once every byte already in the socket buffers and rings has been read and handed to the assembler;
        False when that took longer than ``timeout_s``. Not ``complete`` (an export pass's read): the rings only as
        far as back-pressure lets them be read. On the receiver's own thread (a hosted socket's handler): read now."""
        if not self._thread.is_alive():
            return True
        if threading.current_thread() is self._thread:
            self._read_everything(capped=not complete)
            return True
        done = threading.Event()
        with self._lock:
            self._sync_waiters.append((done, complete))
        os.write(self._wake_w, b"s")
        return done.wait(timeout_s)

    def host(self, sock: socket.socket, on_readable: Callable[[], None],
             on_failure: Callable[[], None] | None = None) -> bool:
        """Serve ``sock`` on this thread: ``on_readable`` runs here whenever it has something to read (it must not
        wait for this thread). ``on_failure``: told if the thread stops for good. False when it cannot (the thread
        is not running): the caller serves the socket itself."""
        hosted: list[bool] = []

        def register() -> None:
            self._selector.register(sock, selectors.EVENT_READ, _Hosted(on_readable))
            if on_failure is not None:
                self._on_failure.append(on_failure)
            hosted.append(True)

        if self.failed or not self._thread.is_alive():
            return False
        self._on_thread(register)
        return bool(hosted)

    def unhost(self, sock: socket.socket) -> None:
        """Stop serving ``sock`` (before it is closed: its descriptor's number may come back for another socket)."""
        def unregister() -> None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)

        self._on_thread(unregister)

    def _on_thread(self, call: Callable[[], None], timeout_s: float = 2.0) -> None:
        """Run ``call`` on the receiver's thread and wait for it, at most ``timeout_s`` (here when this is that
        thread, or it is not running): the selector's registrations and the connections are that thread's."""
        if threading.current_thread() is self._thread or not self._thread.is_alive():
            call()
            return
        done = threading.Event()
        with self._lock:
            self._calls.append((call, done))
        os.write(self._wake_w, b"c")
        done.wait(timeout_s)

    def shutting_down(self) -> None:
        """SHUTDOWN: read in short steps from now on, so that ``halt`` takes effect soon, and count what the rings
        hold unread before reading on, while there is time (``halt`` then only subtracts). Called before reading."""
        self._step = SHUTDOWN_READ_STEP
        for connection in [*self._connections.values(), *self._closed.values()]:
            connection.stream.step = SHUTDOWN_READ_STEP
        if self._thread.is_alive():
            self._counting = True
            os.write(self._wake_w, b"n")

    def halt(self, reason: str, timeout_s: float) -> int | None:
        """Stop reading what the functions hand over (SHUTDOWN has no time left to read and export it) and count the
        spans left unread, in every ring and socket, as dropped for ``reason``: read off the frames' headers, not
        decoded; and hand the assembler the open-span table of each function still in an invocation (its spans open
        when the runtime went). A read in progress stops at its next step (``shutting_down`` made them short). Returns
        the count, or None when the thread did not answer within ``timeout_s`` (what it still reads then reaches the
        buffer, and is counted there). A thread that failed for good counted what it held then (``receiver_failed``)."""
        if not self._thread.is_alive():
            return 0
        for connection in [*self._connections.values(), *self._closed.values()]:
            connection.stream.halt()  # now, from this thread: the read in progress stops at its next step
        request = _Halt(reason)
        self._halt = request
        os.write(self._wake_w, b"c")
        return request.count if request.done.wait(max(0.0, timeout_s)) else None

    def refresh_holds(self) -> None:
        """The collector started or stopped answering: store the new hold bound in every ring, from this thread."""
        if self._thread.is_alive():
            os.write(self._wake_w, b"h")

    def stop(self) -> None:
        self._stopping = True
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join(2.0)
        for connection in list(self._connections.values()):
            connection.sock.close()
            connection.stream.close()
        for connection in [*self._closed.values(), *self._halted]:
            connection.stream.close()
        self._connections.clear()
        self._closed.clear()
        self._halted.clear()
        self._listener.close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # --- the thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            ready = self._selector.select()  # a failure here escapes to ``supervised``: logged, restarted
            for key, _events in ready:
                try:
                    if key.data == "listener":
                        self._accept()
                    elif key.data == "wake":
                        self._on_wake()
                    elif isinstance(key.data, _Hosted):
                        key.data.on_readable()
                    else:
                        self._read(key.data)
                except Exception:  # never let one bad connection stop the receiver
                    log.exception("span receiver error (recovered)")
                    if isinstance(key.data, _Connection):
                        self._close(key.data)

    def _give_up(self) -> None:
        """The loop failed for good: read what the connections hold one last time, count its spans as dropped, and
        close everything, so that the function's tracer counts what it can no longer hand over (in its log)."""
        self.failed = True
        lost = 0
        for connection in [*self._connections.values(), *self._closed.values()]:
            with contextlib.suppress(Exception):
                for _ in range(64):  # bounded: a writer that never stops must not hold this up
                    data = connection.sock.recv(_READ_SIZE)
                    if not data:
                        break
                    lost += _spans_in(connection.stream.receive(data))
            with contextlib.suppress(Exception):
                lost += _spans_in(connection.stream.drain())  # written to its ring and announced nowhere
                connection.stream.close()
            with contextlib.suppress(OSError):
                connection.sock.close()
            with contextlib.suppress(Exception):
                self._assembler.disconnected(connection.id)
        self._connections.clear()
        self._closed.clear()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._stats.drop("receiver_failed", lost)
        log.error("the span receiver stopped for good: spans are no longer received in this environment; the %d "
                  "it still held are counted as receiver_failed, the function's tracer counts what it cannot hand "
                  "over", lost)
        with self._lock:
            waiters, self._sync_waiters = self._sync_waiters, []
            calls, self._calls = self._calls, []
        for done, _ in waiters:
            done.set()
        for _, called in calls:
            called.set()
        for tell in self._on_failure:
            with contextlib.suppress(Exception):
                tell()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if len(self._connections) >= _MAX_CONNECTIONS:
                log.warning("refusing a span connection: %d already open", len(self._connections))
                sock.close()
                continue
            sock.setblocking(False)
            self._next_id += 1
            connection = _Connection(self._next_id, sock, self._poll_rings)
            connection.stream.step = self._step
            # Only polled rings are read under back-pressure: there the export runs beside the function and makes
            # room; otherwise nothing exports until END, so a long invocation's spans go to the buffer as before.
            if self._back_pressure is not None and self._poll_rings:
                connection.stream.room = self._back_pressure.room
                connection.stream.hold(self._back_pressure.ring_hold_ms())
            self._connections[connection.id] = connection
            self._selector.register(sock, selectors.EVENT_READ, connection)
            self._stats.add("connections")
            self._assembler.connected(connection.id)

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        if self._counting:
            self._counting = False
            for connection in [*self._connections.values(), *self._closed.values()]:
                connection.stream.count_unread()
        with self._lock:
            waiters, self._sync_waiters = self._sync_waiters, []
            calls, self._calls = self._calls, []
        for call, called in calls:
            try:
                call()
            except Exception:
                log.exception("span receiver: a call on its thread failed (recovered)")
            called.set()
        if self._poll_rings and self._back_pressure is not None:  # whether the functions may wait for us now
            hold_ms = self._back_pressure.ring_hold_ms()
            for connection in list(self._connections.values()):
                connection.stream.hold(hold_ms)
        if waiters:
            self._read_everything(capped=not any(complete for _, complete in waiters))
        for done, _ in waiters:
            done.set()
        halt, self._halt = self._halt, None
        if halt is not None:
            self._count_unread(halt)

    def _count_unread(self, halt: _Halt) -> None:
        """Count what the connections hold unread as dropped, then read them no more (the assembler is not told they
        were lost: the caller finalises what is open)."""
        unread = 0
        for connection in [*self._connections.values(), *self._closed.values()]:
            connection.stream.halt()  # connected since ``halt`` was asked
            received = bytearray()
            if connection.id in self._connections:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(connection.sock)
                with contextlib.suppress(OSError):
                    for _ in range(64):  # bounded: a writer that never stops must not hold this up
                        data = connection.sock.recv(_READ_SIZE)
                        if not data:
                            break
                        received += data
                connection.sock.close()
            try:
                unread += connection.stream.unread_spans(bytes(received))
                if self._assembler.in_invocation(connection.id):  # the runtime is gone by now, not always noticed
                    self._unended(connection)  # the spans open in it: the assembler finalises them with it
            except Exception:  # never lose the count of the others
                log.exception("counting the spans left unread failed (recovered)")
            self._halted.append(connection)
        self._connections.clear()
        self._closed.clear()
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._listener)
        self._stats.drop(halt.reason, unread)
        halt.count = unread
        halt.done.set()

    def _read_everything(self, capped: bool) -> None:
        """Read what the sockets hold, then the rings (``capped``: as far as back-pressure lets them be read)."""
        for connection in list(self._connections.values()):
            for _ in range(64):  # bounded: a writer that never stops must not stall the barrier
                if not self._read(connection):
                    break
        for connection in list(self._connections.values()):
            self._deliver(connection, connection.stream.drain(capped))
        for connection in list(self._closed.values()):
            self._read_closed(connection, capped)

    def _read(self, connection: _Connection) -> bool:
        """Read once from ``connection``; False when nothing more is there now (or it closed)."""
        try:
            data, ancillary, _, _ = connection.sock.recvmsg(_READ_SIZE, _ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data, ancillary = b"", []
        descriptors = received_descriptors(ancillary) if ancillary else None
        if not data:
            for fd in descriptors or ():
                os.close(fd)
            self._close(connection)
            return False
        return self._deliver(connection, connection.stream.receive(data, descriptors))

    def _deliver(self, connection: _Connection, items: Iterable[tuple[int, Any] | wire.WireError]) -> bool:
        """Dispatch a connection's frames; False when it had to be closed."""
        for item in items:
            if isinstance(item, wire.WireError):
                if self._reject(connection, item):
                    return False
                continue
            kind = item[0]
            if kind == wire.HELLO and connection.stream.version == wire.PREVIOUS_VERSION:
                self._tell_previous_version(connection)
            elif kind == wire.END and len(self._connections) > 1:
                # Forked children of the function write their own rings and rarely say END: their spans leave
                # with the parent's invocation rather than wait for the child to exit.
                for other in list(self._connections.values()):
                    if other is not connection:
                        self._deliver(other, other.stream.drain())
            dispatch(self._assembler, connection.id, kind, item[1])
        return True

    def _tell_previous_version(self, connection: _Connection) -> None:
        global _told_previous_version
        if not _told_previous_version:
            _told_previous_version = True
            log.warning("function connection %d speaks wire version %d: its afterglow tracer is older than this "
                        "layer's (%d); accepted, with spans over the socket. Update the function's afterglow to hand "
                        "spans over through shared memory.", connection.id, wire.PREVIOUS_VERSION, wire.VERSION)

    def _reject(self, connection: _Connection, error: wire.WireError) -> bool:
        """Count a rejected frame; True when the connection had to be closed."""
        if not error.fatal:
            self._stats.add("malformed_frames")
            count = self._stats.malformed_frames
            if count <= 10 or count % 1000 == 0:  # a flood of bad frames must not become a flood of log lines
                log.warning("rejected a malformed frame from function connection %d: %s (%d so far)", connection.id,
                            error, count)
            return False
        self._stats.add("poisoned_connections")
        if error.reason == "version_mismatch":
            log.error("wire version mismatch on function connection %d (%s): the function's tracer and the "
                      "extension layer must come from the same afterglow release; closing it", connection.id, error)
        else:
            log.error("closing function connection %d after an unreadable frame header: %s", connection.id, error)
        self._close(connection)
        return True

    def _close(self, connection: _Connection) -> None:
        if self._connections.pop(connection.id, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()
        self._read_closed(connection, capped=self._poll_rings and self._back_pressure is not None)

    def _read_closed(self, connection: _Connection, capped: bool) -> None:
        """The function closed the connection or died: whatever it wrote to its ring is complete now (START and the
        spans that had ended, even after a SIGKILL or a segfault); read it before the assembler hears of the loss.
        ``capped``: as far as the span buffer has room; the rest at the next ``sync`` (the ring stays mapped)."""
        self._closed.pop(connection.id, None)
        done = False
        try:
            for item in connection.stream.drain(capped):  # read as it is iterated: before the stream closes
                if isinstance(item, wire.WireError):
                    self._stats.add("malformed_frames")
                    log.warning("rejected a frame in the ring of function connection %d: %s", connection.id, item)
                else:
                    dispatch(self._assembler, connection.id, item[0], item[1])
            ring = connection.stream.ring
            # Halted (SHUTDOWN): kept, so that what it still holds is counted.
            done = ring is None or (not ring.halted and (not capped or ring.unread <= 0))
            if done:  # the spans it had started and not ended: the handler's stack when it died
                self._unended(connection)
        finally:
            if done:
                connection.stream.close()
            else:
                self._closed[connection.id] = connection
        if done:
            self._assembler.disconnected(connection.id)

    def _unended(self, connection: _Connection) -> None:
        records, untracked = connection.stream.unended()
        if untracked:
            self._stats.drop("unended_untracked", untracked)
        if records:
            self._assembler.unended(connection.id, records)

