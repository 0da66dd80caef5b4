"""Reading a function's span ring (wire version 2): the frames it wrote into memory shared with this process.

The function passes the ring's descriptor with HELLO (SCM_RIGHTS); the layout is ``tracer.wire``'s. A
``FunctionStream`` turns what one connection delivers (socket bytes, passed descriptors) into frames in the
order the function made them: the ring's frames up to the position an END or DRAIN names come before that END
(DRAIN itself is only that signal); ``drain()`` reads whatever the function has written so far, for when the
connection closed (the process died) or the extension must decide whether an invocation is over. Consecutive
SPANS frames from the ring are decoded together, so the assembler sees batches. A connection of wire version 1 (an older
tracer) has no ring: its frames pass through as they are.

Reading is bounded by the ring's capacity and every frame is validated as on the socket; a ring whose header or
frames make no sense is given up (counted, logged), never trusted. A ring's frames are copied and decoded a
``READ_STEP`` at a time as the caller iterates, so a burst never exists in this process whole. The pages of a
large read are handed back to the kernel (``MADV_REMOVE``), so a ring that saw a burst does not keep its memory;
small invocations start on the ring's first pages (the function skips ahead once everything has been read), which
stay.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading

from tracer import wire
from tracer.export.diagnostics import log

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

    Item = tuple[int, Any] | wire.WireError

RELEASE_BYTES = 256 * 1024  # a read at least this large hands its pages back to the kernel
# The most of a ring copied and decoded at once. A burst (up to the whole ring) reaches the assembler and the buffer's
# bounds a step at a time, instead of existing three times over (copy, frame bodies, decoded spans) at the peak.
READ_STEP = 256 * 1024
# At SHUTDOWN: a read stops within a step of being told to (``halt``). A step of 256 KiB (about 1,000 spans) took
# 0.4 s to decode at 128 MB's CPU share, a third of SHUTDOWN's time; 32 KiB takes about 50 ms there.
SHUTDOWN_READ_STEP = 32 * 1024
_MAX_DESCRIPTORS = 4  # passed descriptors kept until HELLO takes its ring's
_NO_SPAN_ID, _NO_TRACE_ID = bytes(8), bytes(16)

_fence_lock = threading.Lock()
_fence_lock.acquire()


def _fence() -> None:
    """A full memory barrier (a release-acquire pair), as ``tracer._ring.fence``: on arm64 the written position
    must not be read before the bytes below it, nor the read position stored before those bytes were copied."""
    _fence_lock.release()
    _fence_lock.acquire()


class RingError(ValueError):
    """A ring that cannot be read (bad header, impossible positions): given up."""


class RingReader:
    """This process's view of one function's ring; it alone stores the read position."""

    def __init__(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size <= wire.RING_DATA_OFFSET:
            raise RingError(f"a ring of {size} bytes")
        self._map = mmap.mmap(fd, size)  # shared and writable: the read position is ours to store
        self._words = memoryview(self._map)[: wire.RING_DATA_OFFSET].cast("Q")
        self._data = memoryview(self._map)[wire.RING_DATA_OFFSET :]
        capacity = int(self._words[wire.RING_CAPACITY_WORD])
        if self._words[wire.RING_MAGIC_WORD] != wire.RING_MAGIC or capacity & (capacity - 1) or (
            wire.RING_DATA_OFFSET + capacity != size
        ):
            self.close()
            raise RingError("not an afterglow span ring")
        self.capacity = capacity
        self._mask = capacity - 1
        self._read = int(self._words[wire.RING_READ_WORD])
        self._hold_ms = 0
        self.halted = False  # SHUTDOWN has no time left to read: nothing more is read (stored by any thread)

    @property
    def unread(self) -> int:
        return int(self._words[wire.RING_WRITTEN_WORD]) - self._read

    def set_polled(self) -> None:
        """This ring is read on the extension's own schedule, not when END comes over the socket: the function
        puts END into the ring too, waking nothing."""
        self._words[wire.RING_POLLED_WORD] = 1

    def set_hold(self, hold_ms: int) -> None:
        """How long the function may wait after a response for this side to read its ring below its hold mark
        (``extension.backpressure``); 0: never."""
        if hold_ms != self._hold_ms:
            self._hold_ms = hold_ms
            self._words[wire.RING_HOLD_MS_WORD] = hold_ms

    def unended(self) -> tuple[list[list[Any]], int]:
        """The function's open-span table (``tracer._open_spans``), for once its process is gone: the spans that had
        started and not ended, as open span records (``end_ns`` 0, no attributes), and how many more were open
        without a slot. An older tracer's ring has no table (its slot count is 0): nothing."""
        words = self._words
        slots = min(int(words[wire.RING_OPEN_SLOTS_WORD]), wire.RING_OPEN_SLOTS)
        untracked = int(words[wire.RING_OPEN_UNTRACKED_WORD]) if slots else 0
        records: list[list[Any]] = []
        unpack, size, header = wire.RING_OPEN_SLOT.unpack_from, wire.RING_OPEN_SLOT.size, self._map
        for index in range(slots):
            span_id, trace_id, parent_id, start, kind, flags, name, taken = unpack(
                header, wire.RING_OPEN_OFFSET + index * size)
            if taken != wire.RING_OPEN_TAKEN or span_id == _NO_SPAN_ID or trace_id == _NO_TRACE_ID or start <= 0 or (
                kind > 4
            ):
                continue  # free, or being written when the process died
            records.append([
                trace_id, span_id, parent_id.to_bytes(8, "big") if parent_id else None,
                name.rstrip(b"\0").decode("utf-8", "ignore"),  # "ignore": a character cut by the truncation
                kind, start, 0, None, None, None, 0, None, "", None, flags, None, [0, 0, 0],
            ])
        return records, min(untracked, 1 << 32)

    def read_to(self, position: int | None = None) -> bytes:
        """The bytes from the read position up to ``position`` (None: all written so far), then marked read."""
        return b"".join(self.read_steps(position))

    def read_steps(self, position: int | None = None, step: int | None = None, room: Callable[[], bool] | None = None,
                   passed_ok: bool = False) -> list[bytes] | Iterator[bytes]:
        """The bytes from the read position up to ``position`` (None: all written so far), in chunks of at most
        ``step`` bytes (None: one chunk) that end on page boundaries; each is marked read before it is handed out,
        so the function may write into its room while the next is decoded. What fits in one step is read now and
        comes as a list; more comes as the iterator is advanced. ``room``: asked before each chunk; False stops the
        read there (the rest stays in the ring for a later read). ``passed_ok``: a ``position`` already read past
        (a DRAIN a later read overtook) reads nothing. Raises RingError, before reading anything, when the positions
        make no sense."""
        if self.halted:
            return []
        written = self._written()
        end = written if position is None else position
        start = self._read
        if passed_ok and end < start:
            return []
        if not start <= end <= min(written, start + self.capacity):
            raise RingError(f"impossible ring positions: read {start}, to {end}, written {written}")
        if end == start or (room is not None and not room()):
            return []
        release = end - start >= RELEASE_BYTES
        if step is None or end - start <= step:  # the usual case (an invocation's few spans): one chunk
            return [self._take(start, end, release)]
        return self._steps(start, end, step, release, room)

    def _written(self) -> int:
        """The position written so far (and the read position past the function's last skip, if it skipped)."""
        written = int(self._words[wire.RING_WRITTEN_WORD])
        if wire.RING_NEEDS_FENCE:
            _fence()
        skip_from, skip_to = int(self._words[wire.RING_SKIP_FROM_WORD]), int(self._words[wire.RING_SKIP_TO_WORD])
        if skip_from == self._read < skip_to <= written and skip_to - skip_from <= self.capacity and (
            not skip_to & self._mask
        ):  # the function skipped to a lap's start once we had read everything: nothing in between
            self._read = skip_to
        return written

    def unread_bytes(self, since: int | None = None) -> tuple[bytes, int]:
        """A copy of what the function wrote and this side has not read (from ``since``, a frame's start written
        later than the read position, if given), and the position written: to count, not decode (nothing is
        marked read)."""
        written = self._written()
        start = self._read if since is None else max(since, self._read)
        if not self._read <= written <= self._read + self.capacity or start > written:
            raise RingError(f"impossible ring positions: read {self._read}, from {start}, written {written}")
        return wire.ring_bytes(self._data, start, written), written

    def _steps(self, start: int, end: int, step: int, release: bool,
               room: Callable[[], bool] | None) -> Iterator[bytes]:
        page = mmap.PAGESIZE
        first = True
        while start < end:
            if self.halted or (not first and room is not None and not room()):  # the first step's room was asked
                return
            first = False
            stop = min(end, max((start + step) // page * page, start + page))  # whole pages, each freed with its step
            yield self._take(start, stop, release)
            start = stop

    def _take(self, start: int, stop: int, release: bool) -> bytes:
        """A copy of the bytes from ``start`` to ``stop``, then marked read (their room the function's again)."""
        chunk = wire.ring_bytes(self._data, start, stop)
        self._read = stop
        if release:
            self._release(start, stop)
        if wire.RING_NEEDS_FENCE:
            _fence()  # the bytes are copied before the function may reuse their room
        self._words[wire.RING_READ_WORD] = stop
        return chunk

    def _release(self, start: int, end: int) -> None:
        """Hand back to the kernel the pages of a large read: only those wholly inside it, whose every byte was
        just read. (A page read earlier may already hold newer frames: the function may write there as soon as
        the read position passed it.)"""
        page = mmap.PAGESIZE
        first, stop = -(-start // page) * page, end // page * page
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a file system without holes: kept
            while first < stop:
                offset = first & self._mask
                length = min(stop - first, self.capacity - offset)
                self._map.madvise(mmap.MADV_REMOVE, wire.RING_DATA_OFFSET + offset, length)
                first += length

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._words.release()
            self._data.release()
            self._map.close()


class _RingUpTo:
    """In a socket read's frames: the ring's frames up to ``position`` (END's or DRAIN's) belong here, to be read
    when the result gets there (``items``: already positioned, a burst read a step at a time; ``drain``: DRAIN's,
    which back-pressure may cut short)."""

    __slots__ = ("drain", "items", "position", "ring")

    def __init__(self, ring: RingReader | None, position: int, drain: bool,
                 items: Iterator[Item] | None = None) -> None:
        self.ring = ring
        self.position = position
        self.drain = drain
        self.items = items


class FunctionStream:
    """One function connection's frames, from the socket and from its ring, in the order they were made."""

    def __init__(self, polled: bool = False) -> None:
        self.polled = polled  # we read the ring on our own schedule: tell the function END may go there too
        self._socket = wire.FrameReader()
        self._ring_frames = wire.FrameReader(wire.VERSION)
        self.ring: RingReader | None = None
        self._descriptors: list[int] = []
        # Back-pressure (``extension.backpressure``): asked before each step of a DRAIN's or a capped drain's read;
        # END's reads are never cut short (END comes after its frames). ``hold_ms``: the bound stored in the ring.
        self.room: Callable[[], bool] | None = None
        self.hold_ms = 0
        self.step = READ_STEP  # the most of the ring copied and decoded at once
        # SHUTDOWN (``count_unread``): the ring's spans not read yet, less those decoded since; and the position
        # written when they were counted.
        self._unread: int | None = None
        self._counted_to = 0

    @property
    def version(self) -> int | None:
        return self._socket.version

    def receive(self, data: bytes, descriptors: list[int] | None = None) -> Iterable[Item]:
        """Socket bytes (and the descriptors that came with them) in; frames and rejections out. The socket's
        frames are decoded (and a HELLO's ring attached) now, and so are the ring's when they fit in one
        ``READ_STEP`` (an invocation's few spans); a longer stretch of the ring (a burst) is read a step at a time
        as the result is iterated, and so is everything after it: iterate the result before the next call."""
        for fd in descriptors or ():
            if len(self._descriptors) < _MAX_DESCRIPTORS:  # a HELLO brings one; more is not ours to keep
                self._descriptors.append(fd)
            else:
                with contextlib.suppress(OSError):
                    os.close(fd)
        plan: list[Item | _RingUpTo] = []
        lazy = False  # once a stretch of the ring waits to be read, so does every later one (their order)
        for item in self._socket.frames(data):
            if isinstance(item, wire.WireError):
                plan.append(item)
                continue
            kind, payload = item
            if kind == wire.HELLO:
                error = self._attach(payload)
                if error is not None:
                    plan.append(error)
                plan.append(item)
                continue
            if kind == wire.DRAIN:
                position = payload[0]
            elif kind == wire.END and len(payload) == 4:
                position = payload[3]
            else:
                plan.append(item)
                continue
            drain = kind == wire.DRAIN
            if lazy:
                plan.append(_RingUpTo(self.ring, position, drain))
            else:
                items = self._from_ring(self.ring, position, drain)
                if isinstance(items, list):
                    plan.extend(items)
                else:
                    lazy = True
                    plan.append(_RingUpTo(self.ring, position, drain, items))
            if kind == wire.END:
                plan.append(item)
        return self._expand(plan) if lazy else plan  # type: ignore[return-value]  # not lazy: no _RingUpTo

    def drain(self, capped: bool = False) -> Iterable[Item]:
        """Frames the function wrote to its ring and announced nowhere yet (it died, or is being waited on); a
        burst is read as the result is iterated. ``capped``: only while ``room`` says so (an export pass's read)."""
        return self._from_ring(self.ring, None, capped)

    def halt(self) -> None:
        """Read nothing more from the ring (SHUTDOWN has no time left): a read in progress stops at its next step.
        Safe from any thread."""
        if self.ring is not None:
            self.ring.halted = True

    def count_unread(self) -> None:
        """SHUTDOWN: count the spans in the ring not read yet, off the frames' headers (about 0.65 us a frame), while
        there is time; from then on each span decoded is taken off the count, so that ``unread_spans`` costs nothing
        when there is none left. Call on the reading thread, before it reads on."""
        ring = self.ring
        if ring is None or self._unread is not None:
            return
        try:
            data, written = ring.unread_bytes()
        except RingError as error:
            log.warning("cannot count what is left in a function's ring: %s", error)
            return
        self._unread = wire.count_spans(self._ring_frames.partial + data)
        self._counted_to = written

    def unread_spans(self, socket_bytes: bytes = b"") -> int:
        """The spans handed over and not read (to count as dropped once ``halt`` stopped the reading): in the
        socket's partial frame and ``socket_bytes`` (received, not decoded), and in the ring: those ``count_unread``
        found, less those decoded since, plus any written after it. Call on the reading thread."""
        count = wire.count_spans(self._socket.partial + socket_bytes)
        ring = self.ring
        if ring is None:
            return count
        if self._unread is None:
            self.count_unread()
            if self._unread is None:
                return count
        try:
            data, _ = ring.unread_bytes(since=self._counted_to)  # written after the count (nothing, normally)
            later = wire.count_spans(data)
        except RingError as error:
            log.warning("cannot count what is left in a function's ring: %s", error)
            later = 0
        return count + max(0, self._unread + later)

    def unended(self) -> tuple[list[list[Any]], int]:
        """The spans the function had started and not ended (its open-span table), and how many more it could not
        list; for when its process is gone (``RingReader.unended``)."""
        if self.ring is None:
            return [], 0
        try:
            return self.ring.unended()
        except (ValueError, OverflowError):  # a view released under us
            return [], 0

    def hold(self, hold_ms: int) -> None:
        """Store the bound the function may wait for us in its ring (now, and in a ring HELLO attaches later)."""
        self.hold_ms = hold_ms
        if self.ring is not None:
            self.ring.set_hold(hold_ms)

    def _expand(self, plan: list[Item | _RingUpTo]) -> Iterator[Item]:
        for entry in plan:
            if isinstance(entry, _RingUpTo):
                yield from entry.items if entry.items is not None else self._from_ring(entry.ring, entry.position,
                                                                                       entry.drain)
            else:
                yield entry

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None
        self._close_descriptors()

    def _attach(self, hello: dict[str, Any]) -> wire.WireError | None:
        if not hello.get("ring"):
            return None
        if not self._descriptors:
            return wire.WireError("no_ring", "HELLO announced a ring but no descriptor came with it")
        fd = self._descriptors.pop(0)
        self._close_descriptors()  # anything else that came along is not ours to keep
        try:
            ring = RingReader(fd)
        except (OSError, ValueError) as error:
            return wire.WireError("bad_ring", str(error))
        finally:
            os.close(fd)  # the mapping holds its own reference
        if ring.capacity != hello["ring"]:
            ring.close()
            return wire.WireError("bad_ring", f"HELLO says {hello['ring']} bytes, the ring has {ring.capacity}")
        if self.ring is not None:
            self.ring.close()
        self.ring = ring
        if self.polled:
            ring.set_polled()
        ring.set_hold(self.hold_ms)
        return None

    def _from_ring(self, ring: RingReader | None, position: int | None,
                   capped: bool = False) -> list[Item] | Iterator[Item]:
        """The ring's frames up to ``position`` (None: all written): a list when they fit in one step, else an
        iterator that reads and decodes a step at a time. ``capped``: a DRAIN's or a pass's read, which stops where
        ``room`` says (the rest waits in the ring) and reads nothing up to a position already passed."""
        if ring is None:
            return [wire.WireError("no_ring", f"a ring position ({position}) on a connection without a ring")] if (
                position) else []
        if ring is not self.ring:  # closed (given up) or replaced by a second HELLO since the frame came
            return []
        try:
            chunks = ring.read_steps(position, self.step, self.room if capped else None, passed_ok=capped)
        except RingError as error:
            self.close()
            return [wire.WireError("bad_ring", str(error))]
        if isinstance(chunks, list):
            out: list[Item] = []
            for data in chunks:
                self._decode(data, out)
            return out
        return self._decode_steps(chunks)

    def _decode_steps(self, chunks: Iterator[bytes]) -> Iterator[Item]:
        for data in chunks:
            out: list[Item] = []
            ok = self._decode(data, out)
            yield from out
            if not ok:
                return

    def _decode(self, data: bytes, out: list[Item]) -> bool:
        """Append the frames in ``data`` (or their rejections) to ``out``; False once the ring is given up."""
        for item in self._ring_frames.frames(data, merge_spans=True):
            if isinstance(item, wire.WireError):
                if item.fatal:  # the ring's frames make no sense: stop reading it
                    self.close()
                    out.append(wire.WireError("bad_ring", str(item)))
                    return False
                out.append(item)
            elif item[0] not in wire.RING_KINDS:
                out.append(wire.WireError("malformed", f"{wire.KINDS[item[0]]} in the ring"))
            else:
                if self._unread is not None and item[0] == wire.SPANS:
                    self._unread -= len(item[1])
                out.append(item)
        return True

    def _close_descriptors(self) -> None:
        for fd in self._descriptors:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._descriptors.clear()
