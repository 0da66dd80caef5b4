"""Run a module as ``python -m`` would, in an interpreter where some installed packages cannot be found.

How a user's environment without an optional extra looks to our code: ``import grpc`` raises
``ModuleNotFoundError`` and ``importlib.util.find_spec("grpc")`` finds nothing. A second virtual environment
without the extra would say the same at the cost of a full install per test run.
"""

from __future__ import annotations

import sys

_PROGRAM = '''
import importlib.abc
import runpy
import sys

HIDDEN = set({hidden!r})


class HideModules(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, HideModules())
sys.argv[0] = {module!r}
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
'''


def python_m_without(hidden: tuple[str, ...], module: str) -> list[str]:
    """The command line ``python -m module`` with ``hidden`` top-level packages made unfindable."""
    return [sys.executable, "-c", _PROGRAM.format(hidden=sorted(hidden), module=module)]
