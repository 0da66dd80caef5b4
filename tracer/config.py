"""Every environment variable afterglow reads, in one place.

Each variable is declared once below with its default and a one-line doc; the README's configuration
table is checked against this list by a unit test. Components resolve what they need once, at init,
through the ``read_*`` helpers: a bad value warns once and falls back to the default, it never raises.

This module is imported by the function side *and* by the extension, so it imports nothing heavy.
"""

from __future__ import annotations

import os
import sys


class Var:
    """One variable. A plain class, not a dataclass: the extension imports this module before its first
    ``event/next``, and ``dataclasses`` (with ``inspect``) and ``logging`` cost it ~10 ms of a 50 ms budget."""

    __slots__ = ("default", "doc", "name", "read_by")

    def __init__(self, name: str, default: str, doc: str, read_by: str) -> None:
        self.name = name
        self.default = default
        self.doc = doc
        self.read_by = read_by  # "function", "extension" or "both"

    def __repr__(self) -> str:
        return f"Var({self.name!r}, default={self.default!r}, read_by={self.read_by!r})"


def _tmpdir() -> str:
    # Lambda's /tmp is private to one environment; honouring TMPDIR lets parallel local sandboxes
    # keep their sockets apart the same way.
    return os.environ.get("TMPDIR") or "/tmp"


# --- afterglow's own variables -----------------------------------------------------------------

AFTERGLOW_SOCKET = "AFTERGLOW_SOCKET"
AFTERGLOW_FLUSH = "AFTERGLOW_FLUSH"
AFTERGLOW_FLUSH_BUDGET_MS = "AFTERGLOW_FLUSH_BUDGET_MS"
AFTERGLOW_MAX_BUFFERED_SPANS = "AFTERGLOW_MAX_BUFFERED_SPANS"
AFTERGLOW_TRACE_PARENT = "AFTERGLOW_TRACE_PARENT"
AFTERGLOW_LOG_LEVEL = "AFTERGLOW_LOG_LEVEL"
AFTERGLOW_HANDLER = "AFTERGLOW_HANDLER"
AFTERGLOW_INSTRUMENT = "AFTERGLOW_INSTRUMENT"
AFTERGLOW_DISABLE = "AFTERGLOW_DISABLE"
AFTERGLOW_LOG_CORRELATION = "AFTERGLOW_LOG_CORRELATION"
AFTERGLOW_CAPTURE_PAYLOAD = "AFTERGLOW_CAPTURE_PAYLOAD"
AFTERGLOW_CAPTURE_MASK = "AFTERGLOW_CAPTURE_MASK"
AFTERGLOW_LOGS = "AFTERGLOW_LOGS"
AFTERGLOW_MAX_BUFFERED_LOGS = "AFTERGLOW_MAX_BUFFERED_LOGS"
AFTERGLOW_MAX_BUFFERED_BYTES = "AFTERGLOW_MAX_BUFFERED_BYTES"
AFTERGLOW_MAX_BUFFERED_LOG_BYTES = "AFTERGLOW_MAX_BUFFERED_LOG_BYTES"
AFTERGLOW_PROFILE = "AFTERGLOW_PROFILE"
AFTERGLOW_OPEN_SPANS = "AFTERGLOW_OPEN_SPANS"
OTEL_LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"
OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
OTEL_BSP_SCHEDULE_DELAY = "OTEL_BSP_SCHEDULE_DELAY"

VARS: tuple[Var, ...] = (
    Var(AFTERGLOW_SOCKET, "$TMPDIR/afterglow/spans.sock",
        "Unix socket the function hands finished spans to; the extension binds it.", "both"),
    Var(AFTERGLOW_FLUSH, "background (end when printing waterfalls)",
        "`background`: the extension never holds the environment after a response (it registers for SHUTDOWN "
        "only); export while invocations run, at most every OTEL_BSP_SCHEDULE_DELAY (`background,<ms>`: every "
        "<ms>, e.g. `background,5000`), and at SHUTDOWN. `end`: export after each response, before the extension's "
        "next (fresher, billed); `periodic,<ms>`: the same, at most every <ms>.",
        "extension"),
    Var(AFTERGLOW_FLUSH_BUDGET_MS, "250",
        "Longest an export may hold the environment after a response; unsent spans stay buffered. With `background`: "
        "longest the function waits after a response for an extension that is behind (back-pressure, billed).",
        "extension"),
    Var(AFTERGLOW_MAX_BUFFERED_SPANS, "20000",
        "Spans the extension keeps while the collector is slow or down; the oldest are dropped and counted.",
        "extension"),
    Var(AFTERGLOW_MAX_BUFFERED_BYTES, "4194304",
        "About the bytes of spans (their estimated encoded size) the extension keeps while the collector is slow or "
        "down, whichever of this and AFTERGLOW_MAX_BUFFERED_SPANS comes first; the oldest are dropped and counted.",
        "extension"),
    Var(AFTERGLOW_TRACE_PARENT, "tracecontext",
        "Where the invocation span finds its parent, in order: `tracecontext` (event headers), `xray` (Lambda's "
        "X-Ray segment, which is otherwise a link: an OTLP backend never receives it), or `none`.", "function"),
    Var(AFTERGLOW_LOG_LEVEL, "WARNING", "Level of afterglow's own log lines (function and extension).", "both"),
    Var(AFTERGLOW_HANDLER, "set by afterglow-instrument",
        "The user's handler, kept by the zero-code wrapper, which points `_HANDLER` at afterglow's entry handler.",
        "function"),
    Var(AFTERGLOW_INSTRUMENT, "all",
        "Libraries to instrument, comma-separated: `botocore`, `http.client`, `urllib3`, `requests`, `logging`, "
        "`threads`; or `all`; or `none` (no patches, also none from `trace_handler`).", "function"),
    Var(AFTERGLOW_DISABLE, "", "Libraries not to instrument, comma-separated (wins over AFTERGLOW_INSTRUMENT).",
        "function"),
    Var(AFTERGLOW_LOG_CORRELATION, "true",
        "`false` keeps trace and span ids out of `logging` records (same as `logging` in AFTERGLOW_DISABLE).",
        "function"),
    Var(AFTERGLOW_CAPTURE_PAYLOAD, "false",
        "`true` records the event and the response as JSON text on the invocation span "
        "(`faas.invocation.event`, `faas.invocation.response`), secrets masked, truncated to the value limit.",
        "function"),
    Var(AFTERGLOW_CAPTURE_MASK, "the built-in pattern",
        "Regular expression, searched case-insensitively in each payload key, for the values to mask; the built-in "
        "one matches password, passwd, passphrase, secret, token, key, authorization, credential, cookie.", "function"),
    Var(AFTERGLOW_LOGS, "deferred (true when printing waterfalls)",
        "The extension exports the function's log lines and each invocation's platform report as OTLP log records. "
        "`deferred`: an invocation's lines leave with the next flush (the Telemetry API delivers them 25 ms or "
        "more late, so waiting would be billed); `true`: wait for them, within the flush budget; `false`: no logs.",
        "extension"),
    Var(AFTERGLOW_MAX_BUFFERED_LOGS, "10000",
        "Log records the extension keeps while the collector is slow or down; the oldest are dropped and counted.",
        "extension"),
    Var(AFTERGLOW_MAX_BUFFERED_LOG_BYTES, "2097152",
        "About the bytes of log records the extension keeps (its own budget, apart from the spans'), whichever of "
        "this and AFTERGLOW_MAX_BUFFERED_LOGS comes first; the oldest are dropped and counted.", "extension"),
    Var(AFTERGLOW_PROFILE, "true",
        "`false` leaves out the invocation profile on the invocation span: CPU time, and with "
        "`AFTERGLOW_FLUSH=end` peak resident memory and network bytes.", "both"),
    Var(AFTERGLOW_OPEN_SPANS, "true",
        "Each span takes a slot in memory the extension reads as it starts, so that spans still open when the "
        "function's process dies (a crash, a timeout, an out-of-memory kill) are exported too, status ERROR, "
        "`afterglow.span.unended`; `false` saves the slot's cost (about 5 us of CPU per span).", "function"),
    Var("_X_AMZN_TRACE_ID", "set by Lambda per invocation",
        "X-Ray trace header; with `Sampled=1`, a link of the invocation span (attribute `aws.xray.lambda_segment`), "
        "or its parent when `xray` is in AFTERGLOW_TRACE_PARENT.", "function"),
    Var("AWS_REGION", "set by Lambda",
        "Resource `cloud.region` when the invoked function ARN does not name the region.", "function"),
    Var("AWS_LAMBDA_RUNTIME_API", "set by Lambda",
        "`host:port` of the Runtime, Extensions and Telemetry APIs; the extension registers there.", "extension"),
    # --- OpenTelemetry's standard variables that afterglow honours --------------------------------
    Var("OTEL_SDK_DISABLED", "false", "`true` turns tracing off entirely; the handler runs untouched.", "both"),
    Var("OTEL_SERVICE_NAME", "the function name", "Resource `service.name`.", "both"),
    Var("OTEL_RESOURCE_ATTRIBUTES", "", "Extra resource attributes, `key=value,key2=value2`.", "both"),
    Var("OTEL_PROPAGATORS", "tracecontext,baggage (tracecontext,baggage,xray under afterglow-instrument)",
        "Propagators for OpenTelemetry's own `opentelemetry.propagate` (contrib instrumentations).", "function"),
    Var("OTEL_TRACES_SAMPLER", "parentbased_always_on", "Sampler, as in the OpenTelemetry SDK.", "function"),
    Var("OTEL_TRACES_SAMPLER_ARG", "", "Sampler argument (ratio for the `traceidratio` samplers).", "function"),
    Var("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8192",
        "Longest attribute string kept; longer values are truncated, not dropped.", "function"),
    Var("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "", "Span-specific override of the value length limit.",
        "function"),
    Var("OTEL_ATTRIBUTE_COUNT_LIMIT", "128", "Most attributes kept per span, event or link.", "function"),
    Var("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "", "Span-specific override of the attribute count limit.", "function"),
    Var("OTEL_SPAN_EVENT_COUNT_LIMIT", "128", "Most events kept per span.", "function"),
    Var("OTEL_SPAN_LINK_COUNT_LIMIT", "128", "Most links kept per span.", "function"),
    Var("OTEL_EXPORTER_OTLP_ENDPOINT", "unset: print traces to the extension's log",
        "OTLP base endpoint, `http(s)://host:port[/path]` (`/v1/traces` is appended for http/protobuf), or "
        "`host:port`; `https` (or no scheme) means TLS. A value that is not a URL stops the export: one line at "
        "start, drops counted.", "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "Full OTLP traces endpoint, used as is.", "extension"),
    Var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "`http/protobuf` or `grpc`.", "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "", "Traces-specific override of the protocol.", "extension"),
    Var("OTEL_EXPORTER_OTLP_HEADERS", "", "Headers sent to the collector, `k=v,k2=v2`; values are never logged.",
        "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "", "Traces-specific headers.", "extension"),
    Var("OTEL_EXPORTER_OTLP_COMPRESSION", "none", "`gzip` or `none`.", "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "", "Traces-specific compression.", "extension"),
    Var("OTEL_EXPORTER_OTLP_TIMEOUT", "10000", "Per-request timeout in ms (capped by the flush budget).",
        "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "", "Traces-specific timeout in ms.", "extension"),
    Var(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "4096",
        "Most spans in one export request (at most 2 MiB holds too). Not the SDK's 512: a backlog leaves at one "
        "round trip per request, so a distant collector would cap how fast a burst can leave.", "both"),
    Var(OTEL_BSP_SCHEDULE_DELAY, "1000",
        "With `AFTERGLOW_FLUSH=background`: the longest spans and log lines wait for their export, in ms, while "
        "invocations keep coming. Longer costs the extension less CPU per invocation (about a fifth less at 5000) "
        "but makes each export pass larger, which at a small memory size's CPU share stretches the invocations it "
        "overlaps; not the SDK's 5000 for that reason.", "extension"),
    Var("OTEL_EXPORTER_OTLP_INSECURE", "false",
        "`true`: no TLS for an endpoint without a scheme (`host:port`); an `http://` endpoint never uses TLS, an "
        "`https://` one always does.", "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "", "Traces-specific override of the insecure flag.", "extension"),
    Var("OTEL_EXPORTER_OTLP_CERTIFICATE", "the system's CAs",
        "PEM file of the CA(s) that verify the collector's certificate (http/protobuf and grpc).", "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "", "Traces-specific CA file.", "extension"),
    Var("OTEL_EXPORTER_OTLP_CLIENT_KEY", "",
        "PEM file of the private key for mutual TLS (with OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE).", "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "", "Traces-specific client key file.", "extension"),
    Var("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "",
        "PEM file of the client certificate (chain) for mutual TLS. A certificate or key file that cannot be read "
        "stops the export of its signals: one line at start, drops counted.", "extension"),
    Var("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "", "Traces-specific client certificate file.",
        "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "",
        "Full OTLP logs endpoint, used as is (else the base endpoint plus `/v1/logs`).", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "", "Logs-specific override of the protocol.", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "", "Logs-specific headers.", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "", "Logs-specific compression.", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "", "Logs-specific timeout in ms.", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "", "Logs-specific override of the insecure flag.", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "", "Logs-specific CA file.", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "", "Logs-specific client key file.", "extension"),
    Var("OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE", "", "Logs-specific client certificate file.", "extension"),
    Var(OTEL_LOGS_EXPORTER, "otlp",
        "`otlp`: export log records (see AFTERGLOW_LOGS); `none`: no logs (same as AFTERGLOW_LOGS=false). A collector "
        "that answers it has no logs endpoint (HTTP 404, 405, 415, 501; gRPC UNIMPLEMENTED) stops the export of logs "
        "with one line; `none` avoids it.", "extension"),
)

_BY_NAME = {var.name: var for var in VARS}
_warned: set[str] = set()


def _warn_once(name: str, raw: str, fallback: object) -> None:
    if name not in _warned:
        _warned.add(name)
        import logging  # only for a bad value: keeps logging out of the extension's start-up

        logger = logging.getLogger("afterglow.config")
        logger.warning("ignoring %s=%r: not a valid value; using %r", name, raw, fallback)


# os.environ's own mapping (encoded keys and values), read directly for variables looked up on every invocation:
# ``os.environ.get`` of an unset variable raises and catches two KeyErrors, ~25 us with the caches cold. Only for
# the standard os.environ (a test may swap in another mapping) on POSIX, whose keys are encoded as below.
_STANDARD_ENVIRON = os.name == "posix" and isinstance(getattr(os.environ, "_data", None), dict)
_ENVIRON_TYPE = type(os.environ) if _STANDARD_ENVIRON else None
_FS_ENCODING = sys.getfilesystemencoding()  # os.environ's own encoding of keys and values


def _environ_get(name: str) -> str | None:
    environ = os.environ
    if type(environ) is _ENVIRON_TYPE:
        value = environ._data.get(name.encode(_FS_ENCODING, "surrogateescape"))  # type: ignore[attr-defined]
        return value.decode(_FS_ENCODING, "surrogateescape") if type(value) is bytes else None
    return environ.get(name)


def raw(name: str) -> str | None:
    """The variable's value, or None when unset or blank."""
    if name not in _BY_NAME:
        raise KeyError(f"{name} is not declared in tracer.config.VARS")
    value = _environ_get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def read_str(name: str, default: str) -> str:
    return raw(name) or default


def read_int(name: str, default: int, minimum: int = 0) -> int:
    value = raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        _warn_once(name, value, default)
        return default
    if number < minimum:
        _warn_once(name, value, default)
        return default
    return number


def read_bool(name: str, default: bool) -> bool:
    value = raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    _warn_once(name, value, default)
    return default


def read_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list, lower-cased, blanks removed."""
    value = raw(name)
    if value is None:
        return default
    return tuple(item.strip().lower() for item in value.split(",") if item.strip())


def socket_path() -> str:
    return raw(AFTERGLOW_SOCKET) or os.path.join(_tmpdir(), "afterglow", "spans.sock")


def markdown_table() -> str:
    """The README's configuration table, generated from VARS (`python -m tracer.config`)."""
    rows = ["| Variable | Default | Read by | What it does |", "|---|---|---|---|"]
    for var in VARS:
        default = f"`{var.default}`" if var.default and " " not in var.default else (var.default or "unset")
        rows.append(f"| `{var.name}` | {default} | {var.read_by} | {var.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
