"""Spans made in thread-pool workers and asyncio tasks keep the handler's span as their parent."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

import requests
from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api

import instrumentation


def test_thread_pool_work_keeps_the_submitters_parent(tracing: Any, http_server: Any) -> None:
    tracer = tracing.tracer()
    worker_threads: set[str] = set()

    def work(n: int) -> int:
        worker_threads.add(threading.current_thread().name)
        with tracer.start_as_current_span(f"work-{n}"):
            return requests.get(f"{http_server.url}/{n}", timeout=5).status_code

    with tracer.start_as_current_span("handler") as handler, ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(work, range(6))) == [200] * 6
    assert threading.current_thread().name not in worker_threads

    spans = tracing.spans()
    by_id = {span.span_id: span for span in spans}
    handler_id = handler.get_span_context().span_id
    work_spans = [span for span in spans if span.name.startswith("work-")]
    assert len(work_spans) == 6 and all(span.parent_id == handler_id for span in work_spans)
    http_spans = [span for span in spans if span.name == "GET"]
    assert len(http_spans) == 6
    assert all(by_id[span.parent_id].name.startswith("work-") for span in http_spans)


def test_without_the_patch_pool_work_loses_its_parent(tracing: Any) -> None:
    # The control: plain ThreadPoolExecutor workers do not see the submitter's context.
    instrumentation.uninstrument()
    tracer = tracing.tracer()
    with tracer.start_as_current_span("handler"), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: tracer.start_span("orphan").end()).result()
    orphan = next(span for span in tracing.spans() if span.name == "orphan")
    assert orphan.parent_id is None


def test_pool_workers_do_not_leak_one_tasks_context_into_the_next(tracing: Any) -> None:
    tracer = tracing.tracer()
    seen: list[object] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        with tracer.start_as_current_span("first"):
            pool.submit(lambda: None).result()
        pool.submit(lambda: seen.append(otel_context.get_current().get("current-span-key"))).result()
    assert seen == [None]


USER_VARIABLE: ContextVar[str] = ContextVar("user_variable", default="unset")


def _user_variable_in_workers() -> tuple[str, str]:
    """What a worker sees of the submitter's user context variable, and what a second task sees of the first's."""
    token = USER_VARIABLE.set("submitter")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_worker = pool.submit(USER_VARIABLE.get).result()
            pool.submit(USER_VARIABLE.set, "first task").result()
            after_first_task = pool.submit(USER_VARIABLE.get).result()
    finally:
        USER_VARIABLE.reset(token)
    return in_worker, after_first_task


def test_only_opentelemetrys_context_travels_the_users_variables_behave_as_without_afterglow(tracing: Any) -> None:
    tracer = tracing.tracer()
    instrumentation.uninstrument()
    without = _user_variable_in_workers()
    instrumentation.instrument()
    with tracer.start_as_current_span("handler") as handler:
        patched = _user_variable_in_workers()
        with ThreadPoolExecutor(max_workers=1) as pool:
            parent = pool.submit(lambda: trace_api.get_current_span().get_span_context().span_id).result()
    assert patched == without
    assert parent == handler.get_span_context().span_id  # while the span still reaches the worker


def test_asyncio_tasks_keep_their_parent(tracing: Any) -> None:
    tracer = tracing.tracer()

    async def step(n: int) -> None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span(f"step-{n}"):
            await asyncio.sleep(0)

    async def handler() -> int:
        with tracer.start_as_current_span("handler") as span:
            await asyncio.gather(*(asyncio.create_task(step(n)) for n in range(4)))
            await asyncio.get_running_loop().run_in_executor(None, lambda: tracer.start_span("in-executor").end())
            return int(span.get_span_context().span_id)

    handler_id = asyncio.run(handler())
    steps = [span for span in tracing.spans() if span.name.startswith("step-")]
    assert len(steps) == 4 and all(span.parent_id == handler_id for span in steps)
    # run_in_executor submits to a ThreadPoolExecutor: the patch carries the context there too.
    executor_span = next(span for span in tracing.spans() if span.name == "in-executor")
    assert executor_span.parent_id == handler_id


def test_thread_patch_instruments_once_and_uninstruments_cleanly(tracing: Any) -> None:
    import wrapt

    from instrumentation import _registry

    instrumentation.instrument()
    patch = _registry.instrumentor("threads")
    assert patch is not None
    patch.instrument()  # type: ignore[attr-defined]
    submit = ThreadPoolExecutor.__dict__["submit"]
    assert isinstance(submit, wrapt.FunctionWrapper)
    assert not isinstance(submit.__wrapped__, wrapt.FunctionWrapper), "wrapped twice"
    instrumentation.uninstrument()
    assert ThreadPoolExecutor.__dict__["submit"] is submit.__wrapped__


def test_suppressed_submissions_run_in_the_workers_own_context(tracing: Any) -> None:
    tracer = tracing.tracer()
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        with tracer.start_as_current_span("handler"), ThreadPoolExecutor(max_workers=1) as pool:
            seen = pool.submit(lambda: otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY)).result()
    finally:
        otel_context.detach(token)
    assert seen is None, "the submitter's context did not travel"


def test_the_runtimes_own_submissions_run_in_the_workers_own_context(tracing: Any) -> None:
    # awslambdaric (python3.12+) submits its wait for the next event from its client module: that work is the
    # runtime's, and no context of the function's may travel with it.
    tracer = tracing.tracer()
    runtime_module: dict[str, Any] = {"__name__": "awslambdaric.lambda_runtime_client"}
    exec("def wait_next(pool, fn):\n    return pool.submit(fn).result()\n", runtime_module)
    current_span_id = lambda: trace_api.get_current_span().get_span_context().span_id  # noqa: E731
    with tracer.start_as_current_span("handler") as handler, ThreadPoolExecutor(max_workers=1) as pool:
        in_runtime_work = runtime_module["wait_next"](pool, current_span_id)
        in_user_work = pool.submit(current_span_id).result()
    assert in_runtime_work == 0  # no span: the worker's own, empty context
    assert in_user_work == handler.get_span_context().span_id
