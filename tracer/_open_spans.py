"""The open-span table: which spans have started and not ended yet, in memory the extension maps too.

A span's frame reaches the ring only as it ends, so the spans still open when the process dies (the handler's
stack at a segfault, a SIGKILL, ``os._exit``) would die with it. Each sampled span therefore takes a slot of this
table as it starts (ids, parent, start time, kind, trace flags, its name truncated to 78 bytes) and gives it back
as it ends, just before its frame goes into the ring, so a span is never in both. The table lives in the ring's
header page (``tracer.wire``, ``RING_OPEN_*``); the extension reads it only once the process is gone and exports
what it finds with status ERROR and ``afterglow.span.unended``.

Cost: a start packs one slot (one ``struct.pack_into``), an end stores one word; no lock, no system call, nothing
woken. Measured (``python -m benchmarks.micro.open_spans_cost``, DESIGN.md): about 2 us of CPU per span on a shared
test machine where a span with five attributes handed to the ring costs 9 to 15 us; the in-process fallback, which
no extension reads, turns the table off.

Threads and asyncio tasks take any free slot (``list.pop`` and ``append`` are atomic under the GIL), not the top of
a stack. More open spans than slots: the extra ones are counted in the header (open spans without a slot, which a
crash loses), never waited for.

Until the hand-off connects (spans at init) and while it has no extension, the table is private memory; connecting
copies it into the ring's header. A forked child starts a table of its own (a new generation: the spans it
inherited end without touching it), so it never writes into its parent's.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import TYPE_CHECKING

from tracer import wire

if TYPE_CHECKING:
    from tracer._span import LeanSpan

SLOTS = wire.RING_OPEN_SLOTS
_SLOT_BYTES = wire.RING_OPEN_SLOT.size
_SLOT_WORDS = wire.RING_OPEN_SLOT_WORDS
_FIRST = wire.RING_OPEN_OFFSET
_TAKEN_WORD = (_FIRST + _SLOT_BYTES) // 8 - 1  # the first slot's last word
_TAKEN = wire.RING_OPEN_TAKEN
_HEADER_BYTES = wire.RING_DATA_OFFSET
_pack_slot = wire.RING_OPEN_SLOT.pack_into
_INDEX_BITS = 8  # a slot token: generation << 8 | index
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_NO_SLOT = _INDEX_MASK  # the index of a span that found no free slot (counted, not in the table)

_live: weakref.WeakSet[OpenSpans] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for table in list(_live):
        table.forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class OpenSpans:
    """The function process's table; ``open`` as a span starts, ``close`` with its token as it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # only for what is rare: an overflow, attaching, a fork
        self._generation = 0  # the tokens of this table; a fork starts another
        self._disabled = False  # the in-process fallback: no extension reads a table
        self._trace: tuple[int, bytes] = (0, b"")  # the last trace id seen, and its bytes
        self._attached = False
        self._private()
        _live.add(self)

    def _private(self) -> None:
        """Back the table with private memory (nothing to read it until the hand-off connects)."""
        header = memoryview(bytearray(_HEADER_BYTES))
        self._bytes, self._words = header, header.cast("Q")
        self._free = list(range(SLOTS - 1, -1, -1))  # slot 0 first: the table's first cache lines stay warm
        self._untracked = 0
        self._attached = False

    @property
    def untracked(self) -> int:
        """Spans open now that found no free slot."""
        return self._untracked

    def open(self, span: LeanSpan) -> int | None:
        """Take a slot for ``span`` (started, sampled); returns the token its end gives back (None: no table)."""
        if self._disabled:
            return None
        try:
            index = self._free.pop()
        except IndexError:
            return self._overflow()
        # The ids as the wire has them, kept on the span for its record (``LeanSpan.to_record``): packing bytes is
        # cheaper than packing large ints, and the conversions move from the span's end to here rather than add up.
        trace = self._trace  # one tuple, replaced whole: another thread never sees half of it
        if trace[0] is not span._trace_id:  # a span's children share its trace id (the same int): convert it once
            trace_id = span._trace_id
            trace = self._trace = (trace_id, trace_id.to_bytes(16, "big"))
        span._trace_bytes = trace_bytes = trace[1]
        span._id_bytes = id_bytes = span._span_id.to_bytes(8, "big")
        try:
            _pack_slot(self._bytes, _FIRST + index * _SLOT_BYTES, id_bytes, trace_bytes, span._parent_id or 0,
                       span._start, span._kind._value_, span._flags, span._name.encode(), _TAKEN)
        except Exception:  # a view released under us (the ring went), a name not str, a lone surrogate in it
            return self._slow_open(span, index)
        return self._generation | index

    def _slow_open(self, span: LeanSpan, index: int) -> int:
        try:
            name = str(span._name).encode("utf-8", "replace")
            _pack_slot(self._bytes, _FIRST + index * _SLOT_BYTES, span._span_id.to_bytes(8, "big"),
                       span._trace_id.to_bytes(16, "big"), span._parent_id or 0, span._start, span._kind._value_,
                       span._flags, name, _TAKEN)
        except Exception:
            self._free.append(index)
            return self._overflow()
        return self._generation | index

    def close(self, token: int) -> None:
        """The span of ``token`` ended: free its slot (before its frame goes into the ring: never in both)."""
        if token & ~_INDEX_MASK != self._generation:
            return  # a span inherited from the parent process, or of a table before a fork
        index = token & _INDEX_MASK
        if index == _NO_SLOT:
            with self._lock:
                self._untracked -= 1
                self._store_untracked()
            return
        try:  # noqa: SIM105  # not contextlib.suppress: a context manager per span end costs more than this
            self._words[_TAKEN_WORD + index * _SLOT_WORDS] = 0
        except ValueError:  # the ring's view was released under us
            pass
        self._free.append(index)

    def attach(self, header: memoryview) -> None:
        """Move the table into a ring's header page (``header``: its first page, bytes), under the hand-off's lock."""
        with self._lock:
            old_bytes, old_words = self._bytes, self._words
            words = header.cast("Q")
            table = slice(_FIRST, _HEADER_BYTES)
            header[table] = old_bytes[table]
            self._bytes, self._words = header, words
            # A span that ended while the copy was made cleared its slot in the old memory only: clear it here too.
            for word in range(_TAKEN_WORD, _HEADER_BYTES // 8, _SLOT_WORDS):
                if not old_words[word] and words[word]:
                    words[word] = 0
            words[wire.RING_OPEN_SLOTS_WORD] = SLOTS
            self._attached = True
            self._store_untracked()

    def detach(self, abandon: bool = False) -> None:
        """The ring goes (closed or lost): keep the table in private memory until the next. ``abandon``: the
        process lives on without that ring, so tell its reader the table is no longer kept (it would read spans
        that are still running)."""
        with self._lock:
            if not self._attached:
                return
            old_bytes, old_words = self._bytes, self._words
            header = memoryview(bytearray(_HEADER_BYTES))
            table = slice(_FIRST, _HEADER_BYTES)
            try:
                header[table] = old_bytes[table]
                if abandon:
                    old_words[wire.RING_OPEN_SLOTS_WORD] = 0
            except ValueError:  # released already: the slots are lost, not the spans' ends
                pass
            self._bytes, self._words = header, header.cast("Q")
            self._attached = False
            old_words.release()  # ours, cast from the ring's header: the ring's memory can now be unmapped

    def disable(self) -> None:
        """No extension will ever read the table (the in-process fallback): spans stop taking slots."""
        self._disabled = True

    def forked(self) -> None:
        """In a forked child: a fresh table of a new generation, in private memory (the parent's ring is not ours)."""
        self._lock = threading.Lock()
        self._generation += 1 << _INDEX_BITS
        if self._attached:
            self._words.release()  # the parent's ring: the child unmaps its view of it
        self._private()

    def _overflow(self) -> int:
        with self._lock:
            self._untracked += 1
            self._store_untracked()
        return self._generation | _NO_SLOT

    def _store_untracked(self) -> None:
        with contextlib.suppress(ValueError):  # the ring's view was released under us
            self._words[wire.RING_OPEN_UNTRACKED_WORD] = self._untracked
