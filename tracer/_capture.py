"""Payload capture: the event and the response as JSON text on the invocation span, secrets masked.

Off unless ``AFTERGLOW_CAPTURE_PAYLOAD`` is true; when off this module is never imported. Values under keys
that match the mask pattern (case-insensitive, anywhere in the key, at any depth) become ``"****"``. Strings
are looked into as well: a string holding a JSON object or array (an API Gateway ``body``, an SQS message)
is masked as JSON, and ``key=value`` pairs (query strings, form bodies, cookies) are masked by key. The text
stops growing at the attribute value limit and ends with a truncation marker, so a huge event costs at most
one limit's worth of work. Anything JSON has no form for (bytes, dates, decimals, objects, cycles) is
written as text; capturing can never fail the handler.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

DEFAULT_MASK = "password|passwd|passphrase|secret|token|key|authorization|credential|cookie"
MASKED = "****"
TRUNCATED = "...[truncated]"
_MASKED_JSON = f'"{MASKED}"'
_MAX_DEPTH = 32
# key=value pairs in a string: query strings, form bodies, cookie headers
_PAIR = re.compile(r"([\w.\-\[\]]{1,200})=([^&;\s]*)")
# "key": value pairs in a string that is not (complete) JSON, e.g. one cut at the limit; an unclosed string
# value runs to the end, so a cut never leaves part of a secret behind
_JSON_PAIR = re.compile(r'"((?:[^"\\]|\\.){1,200})"(\s*:\s*)("(?:[^"\\]|\\.)*"?|[-+\w.]+)')


class _Full(Exception):
    """The text reached the limit: stop walking."""


class _Text:
    __slots__ = ("budget", "masked", "parts", "size")

    def __init__(self, budget: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.budget = budget
        self.masked = 0

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > self.budget:
            raise _Full

    def left(self) -> int:
        return self.budget - self.size


class PayloadCapture:
    """Turns an event or a response into masked, bounded JSON text (one instance per process)."""

    __slots__ = ("limit", "mask")

    def __init__(self, mask: re.Pattern[str], limit: int) -> None:
        self.mask = mask
        self.limit = limit

    @classmethod
    def from_pattern(cls, pattern: str | None, limit: int) -> PayloadCapture:
        """``pattern`` None means the default; a pattern that does not compile raises ``re.error``."""
        return cls(re.compile(pattern or DEFAULT_MASK, re.IGNORECASE), limit)

    def text(self, value: object) -> str:
        """The masked JSON text of ``value``, at most ``limit`` characters. Never raises."""
        out = _Text(self.limit)
        try:
            self._value(value, out, 0, set())
        except _Full:
            pass
        except Exception as error:  # a mapping changed while we read it, a broken __str__ or __iter__
            return f"[not captured: {type(error).__name__}]"[: self.limit]
        text = "".join(out.parts)
        if len(text) <= self.limit:
            return text
        if self.limit <= len(TRUNCATED):
            return text[: self.limit]
        return text[: self.limit - len(TRUNCATED)] + TRUNCATED

    # --- the walk -------------------------------------------------------------------------------

    def _value(self, value: object, out: _Text, depth: int, open_ids: set[int]) -> None:
        if value is None:
            out.put("null")
        elif value is True or value is False:
            out.put("true" if value else "false")
        elif isinstance(value, str):
            out.put(encode_basestring(self._masked_string(value, out, depth)))
        elif isinstance(value, int):
            out.put(int.__repr__(value))
        elif isinstance(value, float):
            out.put(float.__repr__(value) if math.isfinite(value) else encode_basestring(repr(value)))
        elif isinstance(value, (Mapping, list, tuple, set, frozenset)):
            if depth >= _MAX_DEPTH:
                out.put('"[too deep]"')
            elif id(value) in open_ids:
                out.put('"[cycle]"')
            else:
                open_ids.add(id(value))
                if isinstance(value, Mapping):
                    self._mapping(value, out, depth, open_ids)
                else:
                    self._sequence(value, out, depth, open_ids)
                open_ids.discard(id(value))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            text = bytes(value[: out.left() * 4 + 4]).decode("utf-8", "backslashreplace")
            out.put(encode_basestring(self._masked_string(text, out, depth)))
        else:  # what JSON has no type for: decimals and dates by value, the rest by ``str``
            text = _as_text(value)
            if type(value).__name__ == "Decimal" and _is_number(text):
                out.put(text)
            else:
                out.put(encode_basestring(self._masked_string(text, out, depth)))

    def _mapping(self, value: Mapping[Any, Any], out: _Text, depth: int, open_ids: set[int]) -> None:
        out.put("{")
        mask = self.mask
        first = True
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            out.put(encode_basestring(name) + ":" if first else "," + encode_basestring(name) + ":")
            first = False
            if mask.search(name):
                out.masked += 1
                out.put(_MASKED_JSON)
            else:
                self._value(item, out, depth + 1, open_ids)
        out.put("}")

    def _sequence(self, value: Any, out: _Text, depth: int, open_ids: set[int]) -> None:
        out.put("[")
        first = True
        for item in value:
            if not first:
                out.put(",")
            first = False
            self._value(item, out, depth + 1, open_ids)
        out.put("]")

    def _masked_string(self, text: str, out: _Text, depth: int) -> str:
        """``text`` with the secrets inside it masked; only what can still fit is looked at."""
        room = out.left() + 256
        if len(text) > room:
            text = text[:room]  # the rest would be cut anyway
        elif text and depth < _MAX_DEPTH and text[0] in "{[" and text[-1] in "}]":
            inner = self._json_in_string(text, room, depth)
            if inner is not None:
                return inner
        if "=" in text:
            text = _PAIR.sub(self._mask_pair, text)
        if '"' in text and ":" in text:
            text = _JSON_PAIR.sub(self._mask_json_pair, text)
        return text

    def _json_in_string(self, text: str, room: int, depth: int) -> str | None:
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        if not isinstance(parsed, (dict, list)):
            return None
        inner = _Text(room)
        with contextlib.suppress(_Full):
            self._value(parsed, inner, depth + 1, set())
        return "".join(inner.parts) if inner.masked else text  # untouched when there was nothing to hide

    def _mask_pair(self, match: re.Match[str]) -> str:
        return f"{match.group(1)}={MASKED}" if self.mask.search(match.group(1)) else match.group(0)

    def _mask_json_pair(self, match: re.Match[str]) -> str:
        if not self.mask.search(match.group(1)):
            return match.group(0)
        return f'"{match.group(1)}"{match.group(2)}{_MASKED_JSON}'


def _as_text(value: object) -> str:
    isoformat = getattr(value, "isoformat", None)
    try:
        return str(isoformat()) if callable(isoformat) else str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
