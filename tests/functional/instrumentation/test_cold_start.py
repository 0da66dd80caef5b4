"""Cold start, in fresh interpreters: instrumenting imports no library (and not wrapt) until the function does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("botocore", "boto3", "requests", "urllib3", "wrapt")
# botocore's own functions carry __wrapped__ (functools.wraps); ours are wrapt's wrappers.
PATCHED_HELPER = "def patched(function):\n    import wrapt\n    return isinstance(function, wrapt.FunctionWrapper)\n"


def run(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned here."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AFTERGLOW_", "OTEL_"))}
    environment.update(env)
    completed = subprocess.run(
        [sys.executable, "-c", PATCHED_HELPER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_and_instrumenting_loads_none_of_the_libraries() -> None:
    result = run(
        f"""
        import json, sys
        import opentelemetry.trace, opentelemetry.context  # what the API loads by itself is the API's cost
        api_alone = set(sys.modules)
        import tracer, instrumentation
        after_import = [name for name in {HEAVY!r} if name in sys.modules and name not in api_alone]
        instrumentation.instrument()
        after_instrument = [name for name in {HEAVY!r} if name in sys.modules and name not in api_alone]
        print(json.dumps({{"import": after_import, "instrument": after_instrument}}))
        """
    )
    # (older opentelemetry-api, 1.27 among them, imports `deprecated` and so wrapt: not ours to avoid)
    assert result == {"import": [], "instrument": []}


def test_a_library_is_patched_when_the_function_imports_it() -> None:
    result = run(
        """
        import json, sys
        import instrumentation
        instrumentation.instrument()
        import boto3, requests, urllib3, botocore.client
        print(json.dumps({
            "wrapt": "wrapt" in sys.modules,
            "botocore": patched(botocore.client.BaseClient.__dict__["_make_api_call"]),
            "requests": patched(requests.sessions.Session.__dict__["send"]),
            "urllib3": patched(urllib3.connectionpool.HTTPConnectionPool.__dict__["urlopen"]),
        }))
        """
    )
    assert result == {"wrapt": True, "botocore": True, "requests": True, "urllib3": True}


def test_libraries_imported_before_instrument_are_patched_too() -> None:
    result = run(
        """
        import json
        import boto3, requests, botocore.client
        import instrumentation
        instrumentation.instrument()
        print(json.dumps({
            "botocore": patched(botocore.client.BaseClient.__dict__["_make_api_call"]),
            "requests": patched(requests.sessions.Session.__dict__["send"]),
        }))
        """
    )
    assert result == {"botocore": True, "requests": True}


PATCHED = """
import json, logging
import instrumentation
instrumentation.instrument()
import requests, urllib3, botocore.client, http.client
from concurrent.futures import ThreadPoolExecutor
print(json.dumps({
    "botocore": patched(botocore.client.BaseClient.__dict__["_make_api_call"]),
    "requests": patched(requests.sessions.Session.__dict__["send"]),
    "urllib3": patched(urllib3.connectionpool.HTTPConnectionPool.__dict__["urlopen"]),
    "http.client": patched(http.client.HTTPConnection.__dict__["request"]),
    "threads": patched(ThreadPoolExecutor.__dict__["submit"]),
    "logging": getattr(logging.getLogRecordFactory(), "_afterglow", False),
}))
"""
EVERYTHING = dict.fromkeys(("botocore", "requests", "urllib3", "http.client", "threads", "logging"), True)
NOTHING = dict.fromkeys(EVERYTHING, False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, EVERYTHING),
        ({"AFTERGLOW_INSTRUMENT": "all"}, EVERYTHING),
        ({"AFTERGLOW_INSTRUMENT": "requests, Botocore"}, {**NOTHING, "requests": True, "botocore": True}),
        ({"AFTERGLOW_DISABLE": "requests,http.client"}, {**EVERYTHING, "requests": False, "http.client": False}),
        ({"AFTERGLOW_LOG_CORRELATION": "false"}, {**EVERYTHING, "logging": False}),
        ({"OTEL_SDK_DISABLED": "true"}, NOTHING),
        ({"AFTERGLOW_INSTRUMENT": "none"}, NOTHING),
    ],
)  # fmt: skip
def test_libraries_are_selected_by_environment(env: dict[str, str], expected: dict[str, bool]) -> None:
    assert run(PATCHED, **env) == expected


DECORATED = PATCHED.replace("import instrumentation\ninstrumentation.instrument()\n", """
import sys
import opentelemetry.trace  # what the API brings itself (before 1.3x, wrapt through its Deprecated dependency)

LIBRARIES = ("botocore", "requests", "urllib3", "wrapt")
api_brought = {name for name in LIBRARIES if name in sys.modules}
from tracer import trace_handler

@trace_handler
def handler(event, context):
    return event

before = [name for name in LIBRARIES if name in sys.modules and name not in api_brought]
assert not before, before
""")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, EVERYTHING),
        ({"AFTERGLOW_DISABLE": "botocore"}, {**EVERYTHING, "botocore": False}),
        ({"AFTERGLOW_INSTRUMENT": "none"}, NOTHING),
    ],
)  # fmt: skip
def test_decorating_a_handler_turns_the_patches_on_without_importing_a_library(
        env: dict[str, str], expected: dict[str, bool]) -> None:
    assert DECORATED != PATCHED
    assert run(DECORATED, **env) == expected


def test_unknown_library_names_are_reported_not_fatal() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging, instrumentation; logging.basicConfig(); instrumentation.instrument(['requests', 'flask'])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0
    assert "ignoring unknown libraries flask" in completed.stderr
