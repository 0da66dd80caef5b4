"""The awslambdaric hook that holds END until the runtime posted the response (tracer/_response_hook.py).

Against the awslambdaric installed here (the dependency matrix runs it on the floor's 3.0 and on the newest);
the sandbox test in tests/functional/tracer runs the real runtime loop.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from tracer import _response_hook as hook

    assert hook.install() is False, "nothing to hook before awslambdaric is imported"
    import awslambdaric.lambda_runtime_client as client

    calls = []

    class Client(client.LambdaRuntimeClient):
        def __init__(self):
            pass

    def fake(name, outcome):
        def method(self, *args, **kwargs):
            calls.append(name)
            if outcome is not None:
                raise outcome
            return name
        return method

    def owner(name):  # the class in the runtime client's hierarchy that defines the method, whichever it is
        return next(cls for cls in client.LambdaRuntimeClient.__mro__ if name in vars(cls))

    owner("wait_next_invocation").wait_next_invocation = fake("next", None)
    owner("post_invocation_result").post_invocation_result = fake("result", None)
    owner("post_invocation_error").post_invocation_error = fake("error", RuntimeError("platform said 500"))
    assert hook.install() and hook.install(), "idempotent"
    hook.HOOK.on_response = lambda: calls.append("on_response")

    runtime = Client()
    assert runtime.wait_next_invocation() == "next" and hook.HOOK.in_runtime_invocation
    assert runtime.post_invocation_result("id", {}, "application/json") == "result"
    assert not hook.HOOK.in_runtime_invocation
    runtime.wait_next_invocation()
    try:
        runtime.post_invocation_error("id", {}, None)
    except RuntimeError as error:
        assert str(error) == "platform said 500"  # the runtime's own error passes through unchanged
    else:
        raise AssertionError("the error vanished")
    print(",".join(calls))
    """
)


def test_the_hook_wraps_once_marks_runtime_invocations_and_fires_after_each_post() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    # wrapped once: each original ran once, and our callback came after each post, even a failed one
    assert result.stdout.strip() == "next,result,on_response,next,error,on_response"


UNKNOWN_CLIENT = textwrap.dedent(
    """
    import logging, sys, types
    logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
    from tracer import _response_hook as hook

    # an awslambdaric whose runtime client we do not know
    sys.modules["awslambdaric.lambda_runtime_client"] = types.ModuleType("awslambdaric.lambda_runtime_client")
    assert hook.install() is False and hook.install() is False
    """
)


def test_an_unknown_runtime_client_costs_one_warning_that_says_what_is_lost() -> None:
    result = subprocess.run([sys.executable, "-c", UNKNOWN_CLIENT], capture_output=True, text=True, check=False,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("WARNING afterglow: cannot hook awslambdaric")
    assert "END leaves when the handler returns" in line
