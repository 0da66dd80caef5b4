"""The response hook under the real awslambdaric runtime loop (the installed version; the floor's in the matrix)."""

from __future__ import annotations

from pathlib import Path

from sandbox import Sandbox

FUNCTION = """
from tracer import _response_hook, trace_handler


@trace_handler
def handler(event, context):
    return {"in_runtime_invocation": _response_hook.HOOK.in_runtime_invocation}
"""


def test_the_runtime_clients_calls_pass_through_the_hook(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FUNCTION)
    with Sandbox(tmp_path, "app.handler", timeout=30) as box:
        # decorating at init installs the hook before the runtime's first `next`: every invocation went through it
        answers = [box.invoke({}).json(), box.invoke({}).json()]
        logs = "\n".join(line.text for line in box.logs)
    assert answers == [{"in_runtime_invocation": True}, {"in_runtime_invocation": True}]
    assert "cannot hook awslambdaric" not in logs
