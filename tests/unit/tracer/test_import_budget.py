"""Cold start is a feature: what importing and using the tracer loads, checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NEVER_ON_THE_DEFAULT_PATH = (
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "opentelemetry.proto",
    "google.protobuf",
    "wrapt",
    "botocore",
    "boto3",
    "requests",
    "urllib3",
    # trace_handler turns the library patches on as import hooks: a library's patch loads with the library
    "instrumentation.botocore",
    "instrumentation.requests",
    "instrumentation.urllib3",
    "instrumentation.http_client",
    "instrumentation.threads",
    "extension",
    "tracer.export",  # the export pipeline: only in fallback mode, with no extension listening
    "tracer._capture",  # payload capture, off unless AFTERGLOW_CAPTURE_PAYLOAD
)

PROGRAM = """
import json, os, socket, sys, tempfile
directory = tempfile.mkdtemp(prefix="ag-")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(directory + "/spans.sock")
listener.listen(4)  # connect succeeds without accept: the extension's side, as far as this test needs
os.environ["AFTERGLOW_SOCKET"] = directory + "/spans.sock"
stages = {}

from tracer import trace_handler
stages["import"] = sorted(sys.modules)

@trace_handler
def handler(event, context):
    from opentelemetry import trace
    with trace.get_tracer("app").start_as_current_span("work"):
        return {"statusCode": 200}

stages["decorate"] = sorted(sys.modules)

class Context:
    aws_request_id = "req-1"
    function_name = "f"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:f"

handler({"requestContext": {"http": {"method": "GET", "path": "/"}}, "rawPath": "/"}, Context())
stages["invoke"] = sorted(sys.modules)
print(json.dumps(stages))
"""


def _modules_by_stage(program: str, **extra_env: str) -> dict[str, list[str]]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", **extra_env}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def _loaded(modules: list[str], package: str) -> list[str]:
    return [name for name in modules if name == package or name.startswith(package + ".")]


# What the OpenTelemetry API loads by itself is the API's cost, not ours (older opentelemetry-api, 1.27 among them,
# imports `deprecated`, hence wrapt); whatever the installed API needs is taken off before counting.
API_ALONE = """
import json, sys
import opentelemetry.context, opentelemetry.propagators.textmap, opentelemetry.trace
print(json.dumps({"api": sorted(sys.modules)}))
"""


def test_importing_decorating_and_invoking_stay_off_heavy_packages() -> None:
    stages = _modules_by_stage(PROGRAM)
    api_alone = set(_modules_by_stage(API_ALONE)["api"])
    for stage, modules in stages.items():
        ours = [name for name in modules if name not in api_alone]
        heavy = {package: _loaded(ours, package) for package in NEVER_ON_THE_DEFAULT_PATH}
        assert not any(heavy.values()), f"{stage} loaded {({k: v for k, v in heavy.items() if v})}"
    assert "msgpack" in stages["decorate"] and "tracer.triggers" in stages["invoke"]
    # the patches are on from the decorator: hooks, and log correlation (logging is already there; no wrapt)
    assert not _loaded(stages["import"], "instrumentation")
    assert {"instrumentation._hooks", "instrumentation.log_correlation"} <= set(stages["decorate"])


def test_with_the_library_patches_off_the_decorator_does_not_import_instrumentation() -> None:
    stages = _modules_by_stage(PROGRAM, AFTERGLOW_INSTRUMENT="none")
    assert not any(_loaded(modules, "instrumentation") for modules in stages.values())


def test_what_the_extension_imports_from_tracer_is_tiny() -> None:
    program = "import sys, json, tracer, tracer.config, tracer.wire; print(json.dumps({'x': sorted(sys.modules)}))"
    modules = _modules_by_stage(program)["x"]
    assert not _loaded(modules, "opentelemetry")
    assert not [name for name in modules if name.startswith("tracer.") and name not in ("tracer.config", "tracer.wire")]
