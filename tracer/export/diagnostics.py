"""afterglow's own log lines, without importing ``logging`` into the extension process.

``logging`` (with ``re``, ``traceback``, ``string``...) costs ~10 ms of a start-up budget of 50 ms. The extension
process calls ``write_directly()`` once, and lines go straight to stderr as ``[afterglow] LEVEL message`` (the
self-report as ``[afterglow] spans received=...``). In any
other process (the in-process exporter inside a function, the test suite), lines go through the standard
``logging`` module under the ``afterglow.extension`` logger, so the host's logging configuration applies.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, TextIO

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_NAMES = {value: name for name, value in LEVELS.items()}


class _Direct:
    def __init__(self, level: int, stream: TextIO | None) -> None:
        self.level = level
        self.stream = stream


_direct: _Direct | None = None


def write_directly(level_name: str, stream: TextIO | None = None) -> None:
    """Send log lines straight to ``stream`` (stderr) at ``level_name`` and above; unknown names mean WARNING."""
    global _direct
    _direct = _Direct(LEVELS.get(level_name.upper(), 30), stream)


class Log:
    """The few methods of ``logging.Logger`` the extension uses, with lazy %-formatting."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _emit(self, level: int, message: str, args: tuple[Any, ...], with_traceback: bool = False,
              always: bool = False) -> None:
        direct = _direct
        if direct is None:
            import logging

            logging.getLogger(self.name).log(level, message, *args, exc_info=with_traceback)
            return
        if level < direct.level and not always:
            return
        text = message % args if args else message
        if with_traceback:
            import traceback

            text += "\n" + traceback.format_exc().rstrip()
        # one prefix, here: CloudWatch shows an extension's lines as they are, among the function's
        line = f"[afterglow] {text}" if always else f"[afterglow] {_NAMES.get(level, level)} {text}"
        stream = direct.stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def debug(self, message: str, *args: Any) -> None:
        self._emit(10, message, args)

    def info(self, message: str, *args: Any) -> None:
        self._emit(20, message, args)

    def warning(self, message: str, *args: Any) -> None:
        self._emit(30, message, args)

    def error(self, message: str, *args: Any) -> None:
        self._emit(40, message, args)

    def exception(self, message: str, *args: Any) -> None:
        self._emit(40, message, args, with_traceback=True)

    def report(self, message: str, *args: Any) -> None:
        """The self-report line: always written when writing directly, at INFO through ``logging``."""
        self._emit(20, message, args, always=True)


log = Log("afterglow.extension")
