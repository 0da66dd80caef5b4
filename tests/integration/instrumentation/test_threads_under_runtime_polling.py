"""On python3.12 and later awslambdaric waits for each next event on a thread pool of its own: the threads
patch leaves those submissions alone, while the handler's own pool work still keeps the handler's span as its
parent.

The function records every work item a ``ThreadPoolExecutor`` queues (``concurrent.futures.thread._WorkItem``,
built inside ``submit`` after any wrapper has replaced the function): the module that submitted it and the
module of the function the pool will run. A wrapped submission runs afterglow's closure
(``instrumentation.threads``), not the function that was submitted.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]
RUNTIME = "python3.12"  # the first runtime whose awslambdaric polls on a thread
WRAPPED = "instrumentation.threads"  # where the closure a wrapped submission runs lives

FUNCTION = """
import sys
from concurrent import futures
from concurrent.futures import thread as pool_module

from opentelemetry import trace

from tracer import trace_handler

queued = []  # (submitting module, module of the function to run) of every work item, in order


class RecordedWorkItem(pool_module._WorkItem):
    def __init__(self, future, fn, args, kwargs):
        caller = sys._getframe(1)
        while caller.f_globals.get("__name__", "").startswith(("concurrent.futures", "instrumentation", "wrapt")):
            caller = caller.f_back
        queued.append((caller.f_globals.get("__name__"), getattr(fn, "__module__", None)))
        super().__init__(future, fn, args, kwargs)


pool_module._WorkItem = RecordedWorkItem
tracer = trace.get_tracer("pool-test")


def work(n):
    with tracer.start_as_current_span(f"work-{n}"):
        return n


@trace_handler
def handler(event, context):
    with futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(work, range(3)))
    seen = list(queued)
    queued.clear()
    return {"results": results, "queued": seen}
"""


@pytest.fixture(scope="module")
def layer(lambda_runtime: Callable[[str], Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    runtime = lambda_runtime(RUNTIME)  # skips where python3.12 is not installed
    output = tmp_path_factory.mktemp("layer") / "afterglow-layer.zip"
    result = subprocess.run(
        [sys.executable, "-m", "afterglow", "layer", "build", "--python", runtime.version, "--output", str(output)],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    return output


def test_runtime_polling_is_left_alone_while_user_pool_work_keeps_its_parent(
    layer: Path, tmp_path: Path, otlp_receiver: Any
) -> None:
    task = tmp_path / "function"
    task.mkdir()
    (task / "app.py").write_text(textwrap.dedent(FUNCTION))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}
    with Sandbox(task, "app.handler", layers=[layer], env=env, runtime=RUNTIME, timeout=20) as box:
        answers = [box.invoke({}).json() for _ in range(3)]
    assert [answer["results"] for answer in answers] == [[0, 1, 2]] * 3

    # From the second invocation on, each saw the runtime's poll for it (queued after the previous
    # response), then the handler's three tasks.
    for answer in answers[1:]:
        runtime_items = [runs for submitter, runs in answer["queued"] if submitter.startswith("awslambdaric")]
        user_items = [runs for submitter, runs in answer["queued"] if submitter == "app"]
        assert len(runtime_items) == 1 and len(answer["queued"]) == 4, answer["queued"]
        assert runtime_items[0] != WRAPPED, "the runtime's submission was wrapped"
        assert user_items == [WRAPPED] * 3, "the handler's submissions were not wrapped"

    spans = otlp_receiver.wait_for_spans(3 * 4, timeout=30)
    handlers = {span.span_id: span for span in spans if span.kind == 2}  # SERVER: one per invocation
    work = [span for span in spans if span.name.startswith("work-")]
    assert len(handlers) == 3 and len(work) == 9
    assert all(span.parent_span_id in handlers for span in work)
    for handler_id in handlers:
        assert sorted(span.name for span in work if span.parent_span_id == handler_id) == ["work-0", "work-1",
                                                                                           "work-2"]
