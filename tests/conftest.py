"""Fixtures shared by the whole suite.

``_swallowed_errors_fail`` turns afterglow's guard the other way (CONTRIBUTING.md): anything ``tracer._safe``
logged and swallowed during a test (in any thread) fails that test, so our bugs cannot hide behind the
protection users get. Tests that break the tracer on purpose opt out with ``@pytest.mark.tracer_may_fail``
and can inspect what was swallowed through the ``swallowed`` fixture.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The sandbox gives its processes a private /tmp, as Lambda does. Tests hand files to functions and
# extensions (recordings, markers) through their tmp_path, so that lives outside /tmp.
_SHARED_TEMP_PARENT = "/var/tmp"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tracer_may_fail: the test breaks the tracer on purpose; errors its guards swallow do not fail it"
    )
    if config.option.basetemp is None and os.access(_SHARED_TEMP_PARENT, os.W_OK):
        config.option.basetemp = tempfile.mkdtemp(prefix="agpt-", dir=_SHARED_TEMP_PARENT)
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.fixture(autouse=True)
def library_patches_removed() -> Iterator[None]:
    """``trace_handler`` turns the library patches on: none outlives the test whose handler made them."""
    yield
    import sys

    module = sys.modules.get("instrumentation")
    if module is not None:
        module.uninstrument()


@pytest.fixture(autouse=True)
def swallowed(request: pytest.FixtureRequest) -> Iterator[list[tuple[str, BaseException]]]:
    """What afterglow's guards swallowed during the test, as ``(what, error)``; fails the test unless opted out."""
    from tracer import _safe

    caught: list[tuple[str, BaseException]] = []
    previous = _safe.set_swallow_hook(lambda what, error: caught.append((what, error)))
    try:
        yield caught
    finally:
        _safe.set_swallow_hook(previous)
    if caught and request.node.get_closest_marker("tracer_may_fail") is None:
        details = "\n".join(
            f"--- while {what}:\n{''.join(traceback.format_exception(type(error), error, error.__traceback__))}"
            for what, error in caught
        )
        pytest.fail(f"afterglow swallowed {len(caught)} error(s) that a user would only see as a log line:\n{details}")


@pytest.fixture
def otlp_receiver() -> Iterator[Any]:
    """A running loopback OTLP/HTTP collector (``tests.helpers.otlp_receiver.OtlpReceiver``), stopped afterwards."""
    from tests.helpers.otlp_receiver import OtlpReceiver

    receiver = OtlpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop(hold_port=False)


@pytest.fixture
def otlp_grpc_receiver() -> Iterator[Any]:
    """A running loopback OTLP/gRPC collector (``OtlpGrpcReceiver``), stopped afterwards."""
    from tests.helpers.otlp_receiver import OtlpGrpcReceiver

    receiver = OtlpGrpcReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="session")
def lambda_runtime() -> Callable[[str], Any]:
    """``lambda_runtime("python3.12")``: that runtime as the sandbox will run it (``sandbox.runtimes.Runtime``), its
    awslambdaric installed once per session (and cached across runs in the user's cache); skips the test when no
    interpreter of that version is installed here."""
    from sandbox import runtimes

    resolved: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in resolved:
            if runtimes.find_interpreter(name) is None:
                pytest.skip(f"{name} is not installed here (no {name} on PATH or in pyenv's versions)")
            resolved[name] = runtimes.resolve(name)
        return resolved[name]

    return get
