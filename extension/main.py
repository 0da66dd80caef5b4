"""The extension process: register with the Extensions API first, then compose the rest, run, exit.

Start-up is on the function's cold start twice over: Lambda starts the function's runtime only once every extension
has registered, and init ends only once every extension has asked for its first event. So this module registers
before anything else loads: what registering needs is a socket and the flush policy (which events to register for);
the parts (``extension.compose``: the loop, the span socket, the Telemetry API listener) load after it, while the
runtime starts, and the OTLP exporter in the background from the first INVOKE (``SinkLoader``). Measured
(DESIGN.md, "Start-up"): the median REPORT Init Duration of 30 fresh environments in the sandbox, 184 ms registering
after every import, 162 ms registering first.
"""

from __future__ import annotations

import os
import sys

from extension.lambda_api import ExtensionsApi, LambdaApiError
from tracer import config
from tracer.export.diagnostics import log
from tracer.export.flush import read_flush_policy
from tracer.export.otlp_config import read_otlp_settings

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import TextIO


def configure_logging(stream: TextIO | None = None) -> None:
    """This process's log lines go straight to stderr at ``AFTERGLOW_LOG_LEVEL`` (the self-report always shows)."""
    from tracer.export import diagnostics

    diagnostics.write_directly(config.read_str(config.AFTERGLOW_LOG_LEVEL, "WARNING"), stream)


# The cyclic garbage collector's first generation, collected after this many more container objects than were
# freed (Python's default: 700). Each Telemetry API delivery and each export pass allocate thousands, and a collection
# here cost about 0.2 ms however few objects it found: at 20 invocations a second with the default, the collector
# took about 30 us of this process's CPU per invocation, at 10000 about 8 us (``gc.callbacks``, 600 invocations).
GC_YOUNG_THRESHOLD = 10000


def main() -> int:
    import gc

    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])  # this process's own: the function's is untouched
    configure_logging()
    address = config.raw("AWS_LAMBDA_RUNTIME_API")
    if not address:
        log.error("start failed: AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda")
        return 1
    settings = read_otlp_settings()
    policy = read_flush_policy(printing=settings is None)
    api = ExtensionsApi(address)
    try:  # background export registers for SHUTDOWN only: nothing of ours follows each invocation
        api.register(("SHUTDOWN",) if policy.background else ("INVOKE", "SHUTDOWN"))
    except LambdaApiError as error:
        log.error("cannot register with the Extensions API: %s", error)
        return 1
    from extension.compose import Extension  # the rest loads now, beside the runtime's own start

    code = Extension.from_environment(api, settings, policy).run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait on exporter threads (gRPC): SHUTDOWN's deadline is absolute
