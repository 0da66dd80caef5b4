"""Zero-code tracing with the built layer zip: AWS_LAMBDA_EXEC_WRAPPER=/opt/afterglow-instrument, awslambdaric,
the real extension, a loopback collector."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.slow

WRAPPER = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/afterglow-instrument"}

UNDECORATED = """
from opentelemetry import propagate, trace

tracer = trace.get_tracer("orders")


def handler(event, context):
    with tracer.start_as_current_span("price-order") as span:
        span.set_attribute("order.items", len(event.get("items", [])))
        carrier = {}
        propagate.inject(carrier)  # OTel's own propagators, configured by the wrapper's OTEL_PROPAGATORS
    return {"total": 42, "headers": sorted(carrier)}
"""

DECORATED = """
from tracer import trace_handler


@trace_handler
def handler(event, context):
    return "traced once"
"""


@pytest.fixture
def function(tmp_path: Path) -> Callable[..., Path]:
    def write(**modules: str) -> Path:
        root = tmp_path / "task"
        root.mkdir(exist_ok=True)
        for name, source in modules.items():
            path = root / f"{name.replace('.', '/')}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return root

    return write


def _invoke_once(task_root: Path, handler: str, layer: Path, env: dict[str, str], event: Any = None) -> Any:
    with Sandbox(task_root, handler, layers=[layer], env={**WRAPPER, **env}, function_name="orders") as box:
        return box.invoke(event if event is not None else {})


def test_an_undecorated_handler_is_traced_and_exported(
    function: Callable[..., Path], built_layer: Path, otlp_receiver: Any
) -> None:
    task_root = function(app=UNDECORATED)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}
    with Sandbox(task_root, "app.handler", layers=[built_layer], env={**WRAPPER, **env}, function_name="orders") as box:
        first = box.invoke({"items": [1, 2, 3]})
        second = box.invoke({"items": []})
    spans = otlp_receiver.wait_for_spans(4, timeout=20)

    assert first.function_error is None, first.body
    assert first.json() == {"total": 42, "headers": ["X-Amzn-Trace-Id", "traceparent"]}
    assert second.json()["total"] == 42
    roots = [span for span in spans if span.parent_span_id in (None, b"", "")]
    assert len(roots) == 2
    assert {root.name for root in roots} == {"orders"}
    assert sorted(root.attributes["faas.coldstart"] for root in roots) == [False, True]
    assert {root.attributes["faas.invocation_id"] for root in roots} == {first.request_id, second.request_id}
    children = [span for span in spans if span.name == "price-order"]
    assert sorted(child.attributes["order.items"] for child in children) == [0, 3]
    for child in children:
        (parent,) = [root for root in roots if root.span_id == child.parent_span_id]
        assert parent.trace_id == child.trace_id
    assert {span.resource["service.name"] for span in spans} == {"orders"}  # the wrapper's default


def test_a_decorated_handler_under_the_wrapper_gets_one_invocation_span(
    function: Callable[..., Path], built_layer: Path, otlp_receiver: Any
) -> None:
    task_root = function(app=DECORATED)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "OTEL_SERVICE_NAME": "billing"}
    with Sandbox(task_root, "app.handler", layers=[built_layer], env={**WRAPPER, **env}) as box:
        results = [box.invoke({}).json() for _ in range(3)]
    spans = otlp_receiver.wait_for_spans(3, timeout=20)
    assert results == ["traced once"] * 3
    assert len(otlp_receiver.spans) == 3, [span.name for span in otlp_receiver.spans]
    assert {span.resource["service.name"] for span in spans} == {"billing"}  # the user's setting wins


def test_a_handler_in_a_subdirectory_loads_as_the_runtime_would(
    function: Callable[..., Path], built_layer: Path, otlp_receiver: Any
) -> None:
    task_root = function(**{"src.orders.app": UNDECORATED})
    invocation = _invoke_once(task_root, "src/orders/app.handler", built_layer,
                              {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint})
    assert invocation.json()["total"] == 42
    assert len(otlp_receiver.wait_for_spans(2, timeout=20)) == 2


@pytest.mark.parametrize(
    ("modules", "handler", "error_type", "message"),
    [
        ({"app": DECORATED}, "missing.handler", "Runtime.ImportModuleError", "Unable to import module 'missing'"),
        ({"app": DECORATED}, "app.nowhere", "Runtime.HandlerNotFound", "Handler 'nowhere' missing on module 'app'"),
        ({"app": "def handler(event, context)\n    return 1\n"}, "app.handler", "Runtime.UserCodeSyntaxError",
         "Syntax error in module 'app'"),
        ({"app": "import not_installed_anywhere\n"}, "app.handler", "Runtime.ImportModuleError",
         "No module named 'not_installed_anywhere'"),
    ],
)
def test_load_failures_surface_as_the_runtimes_own_init_errors(
    function: Callable[..., Path], built_layer: Path, modules: dict[str, str], handler: str, error_type: str,
    message: str,
) -> None:
    invocation = _invoke_once(function(**modules), handler, built_layer, {})
    assert invocation.function_error == "Unhandled"
    body = invocation.json()
    assert body["errorType"] == error_type
    assert message in body["errorMessage"]


@pytest.mark.parametrize("shadow", ["tracer", "instrumentation"])
def test_a_user_module_shadowing_our_package_is_a_clear_init_error(
    function: Callable[..., Path], built_layer: Path, shadow: str
) -> None:
    task_root = function(app=DECORATED.replace("from tracer import trace_handler", "").replace("@trace_handler", ""),
                         **{shadow: "VALUE = 'mine'\n"})
    with Sandbox(task_root, "app.handler", layers=[built_layer], env=WRAPPER, function_name="orders") as box:
        body = box.invoke({}).json()
        seen_root = "/var/task" if box.lambda_paths else str(task_root)  # where the function finds its code
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert f"the module '{shadow}' found at '{seen_root}/{shadow}.py' hides afterglow's '{shadow}' package" in (
        body["errorMessage"])
