"""One Telemetry API ``function`` record -> the parts of an OTLP log record (time, severity, body, ids).

What awslambdaric writes (its own source, and what it printed in the sandbox):

- ``logging`` in the text format: ``[LEVEL]\\t<ISO time>Z\\t<request id>\\t<message>``;
- ``logging`` with ``AWS_LAMBDA_LOG_FORMAT=JSON``: an object with ``timestamp``, ``level``, ``message``,
  ``requestId``, ``logger``, the error fields and any ``extra``; Lambda delivers it as an object, a local
  emulator as its text, both are read here;
- an unhandled error: ``[ERROR] Type: message`` and the traceback joined with ``\\r`` (one record; the ``\\r``
  become newlines in the body);
- ``print`` and anything else: the line as written, without severity.

Nothing here raises for odd input: a line that does not parse is a plain line.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

# OpenTelemetry severity numbers (logs data model): the first of each range.
SEVERITY = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "NOTICE": 10, "WARN": 13, "WARNING": 13, "ERROR": 17, "CRITICAL": 21,
            "FATAL": 21}
_TRACEBACK = "Traceback (most recent call last):"
_RUNTIME_WARNING = "LAMBDA_WARNING: "
_MAX_LEVEL_LENGTH = 10
_MAX_REQUEST_ID = 256
# JSON keys that become fields of the record rather than attributes.
_REQUEST_ID_KEYS = ("requestId", "function_request_id")
_CONSUMED = frozenset({"timestamp", "level", "message", "requestId", "function_request_id", "otelTraceID",
                       "otelSpanID", "otelTraceSampled", "errorType", "errorMessage", "stackTrace"})


class ParsedLine:
    """What a log line says about itself; None where it says nothing."""

    __slots__ = ("attributes", "body", "request_id", "severity_number", "severity_text", "span_id", "time_ns",
                 "trace_flags", "trace_id")

    def __init__(self, body: Any) -> None:
        self.body = body
        self.severity_text = ""
        self.severity_number = 0  # unspecified
        self.time_ns: int | None = None
        self.request_id: str | None = None
        self.attributes: dict[str, Any] = {}
        self.trace_id: bytes | None = None  # the span active when the line was logged (log correlation), if given
        self.span_id: bytes | None = None
        self.trace_flags = 0

    def level(self, name: str) -> None:
        upper = name.upper()
        self.severity_text = upper
        self.severity_number = SEVERITY.get(upper, 0)


_SECONDS: dict[str, int | None] = {}  # "YYYY-MM-DDTHH:MM:SS" -> its epoch nanoseconds (None: not a time)


def parse_time_ns(text: object) -> int | None:
    """Epoch nanoseconds from an ISO 8601 time (``Z``, ``+00:00``, ``+0000``, a comma before the fraction); naive
    times are UTC. None when it is not such a time."""
    if type(text) is str and len(text) == 24 and text[19] == "." and text[23] == "Z":
        # The Telemetry API's own form, "2026-12-03T13:27:54.682Z", on every event, many to a second: each second is
        # checked and parsed once, its milliseconds added (1.1 us here against 3.7 us); anything else, or a second
        # that is not a time, takes the general path.
        millis, key = text[20:23], text[:19]
        if millis.isdigit() and millis.isascii():
            second = _SECONDS.get(key)
            if second is None and key not in _SECONDS and (
                text[4] == "-" and text[7] == "-" and text[10] == "T" and text[13] == ":" and text[16] == ":"
                and text[17:19].isdigit() and text[17:19].isascii()
            ):
                if len(_SECONDS) > 64:
                    _SECONDS.clear()
                second = _SECONDS[key] = _general_time_ns(key + "Z")
            if second is not None:
                return second + int(millis) * 1_000_000
    if not isinstance(text, str) or not 10 <= len(text) <= 40 or not text[:4].isdigit():
        return None
    return _general_time_ns(text)


def _general_time_ns(text: str) -> int | None:
    import datetime

    value = text.strip().replace(",", ".")
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit() and value[-6] != ":":
        value = value[:-2] + ":" + value[-2:]  # +0000 -> +00:00 (Python 3.10's fromisoformat)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _request_id(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _MAX_REQUEST_ID and value != "None" and " " not in value:
        return value
    return None


def _hex_id(value: object, size: int) -> bytes | None:
    if not isinstance(value, str) or len(value) != size * 2:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if any(raw) else None


def attribute_value(value: Any) -> Any:
    """An OTLP attribute value: strings, numbers and booleans as they are, flat lists of one such type as they
    are, anything else as its JSON text."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list) and value and all(type(item) is type(value[0]) for item in value) and isinstance(
            value[0], (str, bool, int, float)):
        return value
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def _from_object(document: dict[str, Any]) -> ParsedLine:
    if "message" in document:
        body: Any = document["message"]
    elif document.get("errorType") or document.get("errorMessage"):
        body = ": ".join(str(document[key]) for key in ("errorType", "errorMessage") if document.get(key))
    else:
        body = {key: value for key, value in document.items() if key not in _CONSUMED}
    parsed = ParsedLine(body)
    level = document.get("level")
    if isinstance(level, str) and level:
        parsed.level(level)
    parsed.time_ns = parse_time_ns(document.get("timestamp"))
    for key in _REQUEST_ID_KEYS:
        parsed.request_id = parsed.request_id or _request_id(document.get(key))
    trace_id, span_id = _hex_id(document.get("otelTraceID"), 16), _hex_id(document.get("otelSpanID"), 8)
    if trace_id is not None and span_id is not None:
        parsed.trace_id, parsed.span_id = trace_id, span_id
        parsed.trace_flags = 1 if document.get("otelTraceSampled") is True else 0
    if document.get("errorType"):
        parsed.attributes["exception.type"] = str(document["errorType"])
    if document.get("errorMessage"):
        parsed.attributes["exception.message"] = str(document["errorMessage"])
    stack = document.get("stackTrace")
    if isinstance(stack, list) and stack:
        parsed.attributes["exception.stacktrace"] = "".join(str(frame) for frame in stack).rstrip("\n")
    if "message" in document:  # the rest of the object describes the line
        for key, value in document.items():
            if key not in _CONSUMED and value is not None:
                parsed.attributes[key] = attribute_value(value)
    return parsed


def _from_text(line: str) -> ParsedLine:
    if line.startswith(_RUNTIME_WARNING) and "\r[" in line:
        # awslambdaric 3.x writes its note about runtime updates and the unhandled error as one record
        parsed = _from_text(line.partition("\r")[2])
        parsed.body = line.replace("\r", "\n")
        return parsed
    if line.startswith("["):
        close = line.find("]", 1, _MAX_LEVEL_LENGTH + 2)
        level = line[1:close] if close > 0 else ""
        if level.upper() in SEVERITY:
            rest = line[close + 1:]
            if rest.startswith("\t"):
                fields = rest[1:].split("\t", 2)
                if len(fields) == 3:
                    when = parse_time_ns(fields[0])
                    if when is not None:
                        parsed = ParsedLine(fields[2].replace("\r", "\n"))
                        parsed.level(level)
                        parsed.time_ns = when
                        parsed.request_id = _request_id(fields[1])
                        return parsed
            parsed = ParsedLine(line.replace("\r", "\n"))
            parsed.level(level)
            if _TRACEBACK in line:  # awslambdaric's unhandled error: "[ERROR] Type: message\rTraceback ..."
                first = line.split("\r", 1)[0][close + 1:].strip()
                kind, sep, message = first.partition(": ")
                if kind and all(part.isidentifier() for part in kind.split(".")):
                    parsed.attributes["exception.type"] = kind
                    if sep:
                        parsed.attributes["exception.message"] = message
            return parsed
    if line.startswith("{") and line.endswith("}"):
        try:
            document = json.loads(line)
        except ValueError:
            document = None
        if isinstance(document, dict):
            return _from_object(document)
    return ParsedLine(line.replace("\r", "\n"))


def parse_line(record: Any) -> ParsedLine:
    """Read one ``function`` record: a string (text, or JSON text) or an object (the JSON log format)."""
    if isinstance(record, dict):
        return _from_object(record)
    if not isinstance(record, str):
        return ParsedLine(attribute_value(record))
    return _from_text(record.rstrip("\r\n"))
