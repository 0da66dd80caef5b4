"""Knowing when the runtime has posted the response, so END (and export) never comes before it.

The extension exports as soon as END arrives. If END left inside the handler, the export could start
while awslambdaric is still serialising and posting the response, competing with it for the CPU.
So, when the runtime is awslambdaric (Lambda's own Python runtime client, and the sandbox's), we wrap
its client's ``wait_next_invocation`` (an invocation from the runtime has begun) and
``post_invocation_result`` / ``post_invocation_error`` (its answer is out). Nothing is imported for this:
if awslambdaric has not been imported by the time the handler is decorated, we are not under it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from tracer._safe import swallowed

_MODULE = "awslambdaric.lambda_runtime_client"
_CLASS = "BaseLambdaRuntimeClient"
_MARK = "__afterglow_wrapped__"


class ResponseHook:
    """Whether the current invocation came from the runtime, and who to call once its answer is posted."""

    def __init__(self) -> None:
        self.in_runtime_invocation = False
        self.on_response: Callable[[], None] | None = None

    def _invocation_started(self) -> None:
        self.in_runtime_invocation = True

    def _response_posted(self) -> None:
        self.in_runtime_invocation = False
        callback = self.on_response
        if callback is not None:
            try:
                callback()
            except Exception as error:  # our code, running in the runtime's own loop: a log line at most
                swallowed("finishing the invocation after the response", error)


HOOK = ResponseHook()  # one per process, like the runtime client it watches


def _after_fork_in_child() -> None:
    HOOK.in_runtime_invocation = False  # a forked child is never the one the runtime dispatched to


os.register_at_fork(after_in_child=_after_fork_in_child)


def install() -> bool:
    """Wrap awslambdaric's client methods (once per process). False when awslambdaric is not running us."""
    hook = HOOK
    module = sys.modules.get(_MODULE)
    client = getattr(module, _CLASS, None)
    if client is None:
        return False
    try:
        _wrap(client, "wait_next_invocation", after=hook._invocation_started)
        _wrap(client, "post_invocation_result", after=hook._response_posted)
        _wrap(client, "post_invocation_error", after=hook._response_posted)
    except Exception as error:  # an awslambdaric we do not know: END simply leaves inside the handler
        swallowed("hooking awslambdaric's response", error)
        return False
    return True


def _wrap(owner: type, name: str, after: Callable[[], None]) -> None:
    original = getattr(owner, name)
    if getattr(original, _MARK, False):
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        finally:
            after()

    wrapper.__name__ = getattr(original, "__name__", name)
    wrapper.__doc__ = getattr(original, "__doc__", None)
    setattr(wrapper, _MARK, True)
    setattr(owner, name, wrapper)
