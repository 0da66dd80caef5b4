"""The entry handler of zero-code tracing (``AWS_LAMBDA_EXEC_WRAPPER=/opt/afterglow-instrument``).

The wrapper script moved the user's handler to ``AFTERGLOW_HANDLER`` and pointed the runtime here.
At import (the function's init) we check that the user's code does not shadow our packages, turn on
library instrumentation (import hooks only: nothing is imported for it), load the user's handler
exactly as the runtime would, and wrap it with ``trace_handler`` unless the user already did.

Load failures surface as the runtime's own init errors (``Runtime.ImportModuleError``,
``Runtime.HandlerNotFound``, ``Runtime.UserCodeSyntaxError``, ``Runtime.MalformedHandlerName``) with
the user's traceback, because we ask the runtime's own loader (awslambdaric) to do the loading.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

HANDLER_VARIABLE = "AFTERGLOW_HANDLER"
OUR_PACKAGES = ("tracer", "instrumentation")


class ShadowedPackageError(ImportError):
    """A module in the function's code hides one of afterglow's packages."""


def _check_not_shadowed() -> None:
    layer_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in OUR_PACKAGES:
        spec = importlib.util.find_spec(name)
        origin = getattr(spec, "origin", None) or ""
        locations = list(getattr(spec, "submodule_search_locations", None) or [])
        found_at = origin if origin and origin != "namespace" else (locations[0] if locations else "")
        if spec is None or not os.path.abspath(found_at).startswith(layer_root + os.sep):
            raise ShadowedPackageError(
                f"afterglow cannot trace this function: the module '{name}' found at '{found_at or 'nowhere'}' "
                f"hides afterglow's '{name}' package (expected under '{layer_root}'). "
                f"Rename your '{name}' module or package, or remove AWS_LAMBDA_EXEC_WRAPPER."
            )


def _load_user_handler(handler: str) -> Callable[..., Any]:
    try:
        from awslambdaric.bootstrap import _get_handler
    except ImportError:  # not under awslambdaric: load it the same way, with plain errors
        return _load_plainly(handler)
    loaded: Callable[..., Any] = _get_handler(handler)
    return loaded


def _load_plainly(handler: str) -> Callable[..., Any]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    module = importlib.import_module(module_name.replace("/", "."))
    loaded: Callable[..., Any] = getattr(module, function_name)
    return loaded


def _build() -> Callable[..., Any]:
    user_handler_name = os.environ.get(HANDLER_VARIABLE, "")
    if not user_handler_name:
        raise ValueError(
            f"{HANDLER_VARIABLE} is not set: afterglow.wrapper_bootstrap.handler must be reached through the "
            "afterglow-instrument wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/afterglow-instrument)"
        )
    _check_not_shadowed()
    import instrumentation
    import tracer

    instrumentation.instrument()
    user_handler = _load_user_handler(user_handler_name)
    if tracer.is_traced(user_handler):
        return user_handler
    return tracer.trace_handler(user_handler)


handler = _build()
