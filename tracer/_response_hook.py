"""Knowing when the runtime has posted the response, so END (and export) never comes before it.

The extension exports as soon as END arrives. If END left inside the handler, the export could start
while awslambdaric is still serialising and posting the response, competing with it for the CPU.
So, when the runtime is awslambdaric (Lambda's own Python runtime client, and the sandbox's), we wrap
its client's ``wait_next_invocation`` (an invocation from the runtime has begun) and
``post_invocation_result`` / ``post_invocation_error`` (its answer is out). Nothing is imported for this:
if awslambdaric has not been imported by the time the handler is decorated, we are not under it.

awslambdaric 4 defines the three methods on ``BaseLambdaRuntimeClient`` (shared by its single and
multi-concurrent clients); 3.x has only ``LambdaRuntimeClient``. An awslambdaric with neither costs one
warning line: END then leaves when the handler returns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from tracer._safe import swallowed, warn_once

_MODULE = "awslambdaric.lambda_runtime_client"
_CLASSES = ("BaseLambdaRuntimeClient", "LambdaRuntimeClient")  # the first that has the methods, base class first
_METHODS = ("wait_next_invocation", "post_invocation_result", "post_invocation_error")
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
    if module is None:
        return False
    client = _client_class(module)
    if client is None:
        _cannot_hook(f"no {' or '.join(_CLASSES)} with {', '.join(_METHODS)}")
        return False
    try:
        _wrap(client, "wait_next_invocation", after=hook._invocation_started)
        _wrap(client, "post_invocation_result", after=hook._response_posted)
        _wrap(client, "post_invocation_error", after=hook._response_posted)
    except Exception as error:  # an awslambdaric we do not know: END simply leaves inside the handler
        swallowed("hooking awslambdaric's response", error)
        _cannot_hook(f"{type(error).__name__}: {error}")
        return False
    return True


def _client_class(module: object) -> type | None:
    for name in _CLASSES:
        candidate = getattr(module, name, None)
        if isinstance(candidate, type) and all(callable(getattr(candidate, method, None)) for method in _METHODS):
            return candidate
    return None


def _cannot_hook(reason: str) -> None:
    version = getattr(sys.modules.get("awslambdaric"), "__version__", "?")
    warn_once("response_hook", "afterglow: cannot hook awslambdaric %s (%s): END leaves when the handler returns, "
              "so the export may compete with the runtime's posting of the response", version, reason)


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
