"""Optional dependencies (setup.cfg extras) and the one line that tells a user how to get a missing one.

A command that needs an extra checks for it before doing anything, so the user reads which ``pip install`` to
run instead of a ``ModuleNotFoundError`` traceback. ``importlib.util.find_spec`` only looks the modules up; it
imports nothing.
"""

from __future__ import annotations

import importlib.util

DISTRIBUTION = "afterglow-lambda"

# extra -> the top-level modules it brings
EXTRAS: dict[str, tuple[str, ...]] = {
    "sandbox": ("aiohttp", "awslambdaric"),
    "grpc": ("grpc",),
}


class MissingExtra(RuntimeError):
    """A command needs an extra that is not installed; the message is the line to show the user."""


def install_hint(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def missing_modules(extra: str) -> list[str]:
    """The extra's modules that cannot be found in this interpreter."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def require(extra: str, needed_by: str) -> None:
    """Raise ``MissingExtra`` naming the install command when any of ``extra``'s modules is missing."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(f"{needed_by} needs the {extra} extra ({', '.join(missing)} not installed): "
                           f"{install_hint(extra)}")
