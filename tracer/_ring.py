"""The ring: frames written into memory the function shares with the extension.

A span is handed over once its frame is in the ring, with no system call: the memory belongs to a file (a
memfd, else an unlinked temporary file) whose descriptor the extension receives with HELLO, so what is written
here survives the function's process, whatever kills it. The layout is ``tracer.wire``'s (``RING_*``).

One writer (the function process, under its hand-off's lock) stores the written position after each whole
frame; one reader (the extension, or the in-process fallback) stores the read position after each read. Each
side only reads the other's position. A write that would pass the read position fails: the caller counts it.

Memory order: on arm64 another core may see the written position before the frame's bytes unless a barrier
sits between them. Python has no barrier of its own, so ``fence()`` releases and re-acquires a lock (a
release-acquire pair of atomic operations in the C library). x86 keeps stores in order (and the interpreter
cannot reorder the separate C calls that write the bytes and the position), so there the fence is skipped.

Cost (``benchmarks/micro/test_span.py``): a put is a header, a copy and a position store, ~0.4 us.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import threading
from typing import Any

import msgpack

from tracer import wire

DEFAULT_CAPACITY = 8 * 1024 * 1024  # spans the extension has not read yet (a burst), beyond which they are counted
NEEDS_FENCE = wire.RING_NEEDS_FENCE
_SPAN_HEADER = struct.Struct("!2sBBIB")  # a SPANS frame of one span: the frame header and the array's first byte
_ONE_ELEMENT_ARRAY = 0x91
MAX_HOLD_MS = 60_000  # whatever the ring's header says, no wait for the extension is longer than this
NO_ROOM, TOO_BIG = 1 << 62, (1 << 62) + 1  # what put_span answers instead of the bytes unread: above any mark
# Module globals rather than attribute lookups: put_span is the hand-off's hot path.
_pack_span_header = _SPAN_HEADER.pack_into
_MAGIC, _VERSION, _SPANS, _MAX_PAYLOAD, _WRITTEN = wire.MAGIC, wire.VERSION, wire.SPANS, wire.MAX_PAYLOAD, (
    wire.RING_WRITTEN_WORD)

_fence_lock = threading.Lock()
_fence_lock.acquire()


def fence() -> None:
    """A full memory barrier between the stores before it and the stores after it (see the module's doc)."""
    _fence_lock.release()
    _fence_lock.acquire()


def _after_fork_in_child() -> None:
    global _fence_lock
    _fence_lock = threading.Lock()  # a parent thread may have been between release and acquire
    _fence_lock.acquire()


os.register_at_fork(after_in_child=_after_fork_in_child)


def count_frames(frames: bytes, kind: int) -> int:
    """How many frames of ``kind`` a run of whole frames holds (to count what a lost reader never took)."""
    position, count = 0, 0
    while position + 8 <= len(frames):
        _, _, frame_kind, length = wire.HEADER.unpack_from(frames, position)
        count += frame_kind == kind
        position += 8 + length
    return count


def _shared_file(size: int) -> int | None:
    """A descriptor of ``size`` bytes another process can map: a memfd, else an unlinked file in TMPDIR."""
    try:
        fd = os.memfd_create("afterglow-ring", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # not Linux, or a kernel without memfd
        try:
            import tempfile

            with tempfile.TemporaryFile() as handle:  # unlinked already (O_TMPFILE where available)
                fd = os.dup(handle.fileno())
            os.set_inheritable(fd, False)
        except OSError:
            return None
    try:
        os.ftruncate(fd, size)
    except OSError:
        os.close(fd)
        return None
    return fd


class Ring:
    """The function's side of the ring: ``put`` frames, ``take`` them back (the in-process fallback's reading)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError(f"the ring's capacity must be a power of two, not {capacity}")
        size = wire.RING_DATA_OFFSET + capacity
        self.capacity = capacity
        self.fd = _shared_file(size)  # None: private memory, which only the in-process fallback can read
        self._map = mmap.mmap(self.fd if self.fd is not None else -1, size)
        self.header = memoryview(self._map)[: wire.RING_DATA_OFFSET]  # its bytes, for the open-span table
        self._words = self.header.cast("Q")
        self._data = memoryview(self._map)[wire.RING_DATA_OFFSET :]
        self._words[wire.RING_CAPACITY_WORD] = capacity
        self._words[wire.RING_MAGIC_WORD] = wire.RING_MAGIC
        self._mask = capacity - 1
        self.written = 0  # bytes ever written (only this process writes it)
        self.seen_read = 0  # the reader's position when last looked at: it only grows, so room is at least this
        self._skip_from = self._skip_to = 0  # the last skip to a lap's start (a reader there continues from _to)
        self._header = wire.HEADER
        self._packer = msgpack.Packer(use_bin_type=True)

    @property
    def read(self) -> int:
        """The reader's position now (and remembered as ``seen_read``); at a skip's start, its end."""
        read = int(self._words[wire.RING_READ_WORD])
        if read == self._skip_from:
            read = self._skip_to
        self.seen_read = read
        return read

    def rewind(self) -> None:
        """Everything written has been read: let the next frame start on the ring's first page again.

        Small invocations then keep using the same few pages, which stay in memory (no page fault) while the
        reader hands back the pages of a burst (see ``extension.ring``).
        """
        written = self.written
        if not written & self._mask or self.read != written:
            return
        self._skip_from, self._skip_to = written, written - (written & self._mask) + self.capacity
        self._words[wire.RING_SKIP_FROM_WORD] = self._skip_from
        self._words[wire.RING_SKIP_TO_WORD] = self._skip_to
        if NEEDS_FENCE:
            fence()  # the skip before the position that says it happened
        self.written = self.seen_read = self._skip_to
        self._words[_WRITTEN] = self._skip_to

    @property
    def polled(self) -> bool:
        """The extension reads this ring on its own schedule: END may go here instead of over the socket."""
        return bool(self._words[wire.RING_POLLED_WORD])

    @property
    def hold_ms(self) -> int:
        """How long the extension lets us wait, after a response, for it to read below the high-water mark (0: never;
        an older extension never says)."""
        return min(int(self._words[wire.RING_HOLD_MS_WORD]), MAX_HOLD_MS)

    @property
    def unread(self) -> int:
        """Bytes written that the reader has not taken yet."""
        return self.written - self.read

    def put_span(self, record: list[Any]) -> int:
        """Write a SPANS frame of one span record. Returns the bytes the reader has not taken yet (as last seen),
        or NO_ROOM when it has not made room for this one, or TOO_BIG when it is larger than a frame may be.
        Raises what msgpack raises for a record it cannot encode.

        The hand-off's hot path, hence written out rather than through ``put``.
        """
        try:
            body = self._packer.pack(record)
        except Exception:
            self._packer.reset()
            raise
        size = len(body) + 9
        if size > _MAX_PAYLOAD:
            return TOO_BIG
        written = self.written
        capacity = self.capacity
        if size > capacity - written + self.seen_read and size > capacity - written + self.read:
            return NO_ROOM
        offset = written & self._mask
        if offset + size <= capacity:
            data = self._data
            _pack_span_header(data, offset, _MAGIC, _VERSION, _SPANS, size - 8, _ONE_ELEMENT_ARRAY)
            data[offset + 9 : offset + size] = body
        else:
            self._wrap(offset, _SPAN_HEADER.pack(_MAGIC, _VERSION, _SPANS, size - 8, _ONE_ELEMENT_ARRAY) + body)
        if NEEDS_FENCE:
            fence()  # the frame's bytes before the position that publishes them
        self.written = written = written + size
        self._words[_WRITTEN] = written
        return written - self.seen_read

    def put(self, kind: int, payload: Any) -> bool | None:
        """Write one frame of ``payload`` (as ``put_span`` answers)."""
        try:
            body = self._packer.pack(payload)
        except Exception:
            self._packer.reset()
            raise
        size = len(body) + 8
        if len(body) > wire.MAX_PAYLOAD:
            return None
        written = self.written
        if size > self.capacity - written + self.read:
            return False
        offset = written & self._mask
        if offset + size <= self.capacity:
            self._header.pack_into(self._data, offset, wire.MAGIC, wire.VERSION, kind, size - 8)
            self._data[offset + 8 : offset + size] = body
        else:
            self._wrap(offset, self._header.pack(wire.MAGIC, wire.VERSION, kind, size - 8) + body)
        if NEEDS_FENCE:
            fence()
        self.written = written = written + size
        self._words[wire.RING_WRITTEN_WORD] = written
        return True

    def _wrap(self, offset: int, frame: bytes) -> None:
        """A frame that runs past the end continues at the start."""
        first = self.capacity - offset
        self._data[offset:] = frame[:first]
        self._data[: len(frame) - first] = frame[first:]

    def take(self) -> bytes:
        """Everything written and not read yet, marked read (for a reader in this same process)."""
        end = self.written
        chunk = wire.ring_bytes(self._data, self.read, end)
        self._words[wire.RING_READ_WORD] = self.seen_read = end
        return chunk

    def unread_since(self, position: int) -> bytes:
        """A copy of the frames from ``position`` (or the reader's position, if later) to the end, as written."""
        return wire.ring_bytes(self._data, min(max(self.read, position), self.written), self.written)

    def put_frames(self, frames: bytes) -> bool:
        """Write whole frames as they are (carried over from another ring); False when they do not fit."""
        size, written = len(frames), self.written
        if size > self.capacity - written + self.read:
            return False
        offset = written & self._mask
        if offset + size <= self.capacity:
            self._data[offset : offset + size] = frames
        else:
            self._wrap(offset, frames)
        if NEEDS_FENCE:
            fence()
        self.written = written = written + size
        self._words[_WRITTEN] = written
        return True

    def close(self) -> None:
        """Unmap and close this process's view; the extension's own descriptor keeps the memory alive."""
        with contextlib.suppress(Exception):
            self._words.release()
            self.header.release()
            self._data.release()
            self._map.close()
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
