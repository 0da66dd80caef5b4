"""The ``afterglow`` command as a user meets it first: its version, and what it says when an extra is missing."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import tracer
from tests.helpers.hidden_modules import python_m_without

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "hello"


def afterglow(*args: str, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(command or [sys.executable, "-m", "afterglow"]), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_version_is_the_one_declared_in_tracer_and_the_distributions() -> None:
    result = afterglow("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"afterglow {tracer.__version__}"
    assert metadata.version("afterglow-lambda") == tracer.__version__


@pytest.mark.parametrize("hidden", [("aiohttp",), ("awslambdaric",), ("aiohttp", "awslambdaric")])
@pytest.mark.parametrize("subcommand", ["run", "sandbox"])
def test_the_sandbox_commands_without_the_sandbox_extra_name_the_extra_in_one_line(
        subcommand: str, hidden: tuple[str, ...]) -> None:
    result = afterglow(subcommand, "--task-root", str(EXAMPLE), "--handler", "app.handler",
                       command=python_m_without(hidden, "afterglow"))
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"afterglow {subcommand} needs the sandbox extra ({', '.join(hidden)} not installed)")
    assert line.endswith("pip install 'afterglow-lambda[sandbox]'")

