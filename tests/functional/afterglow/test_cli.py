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



HELPS = {
    (): ["run", "sandbox", "layer", "examples:", "afterglow layer build --output", "--version"],
    ("run",): ["Invoke a function in the local Lambda sandbox", "example:", "--event examples/hello/event.json",
               "function timeout (default: 3)", "memory size (default: 128)", "invoke N times (default: 1)",
               "(default: {})"],
    ("sandbox",): ["Serve a function in the local Lambda sandbox", "example:", "curl -XPOST",
                   "port of the invoke endpoint (default: 9000)", "function timeout (default: 3)"],
    ("layer",): ["Build the afterglow Lambda layer", "example:", "build"],
    ("layer", "build"): ["Write the layer zip", "example:", "--arch arm64", "(default: afterglow-layer.zip)",
                         "(default: this interpreter's, {python})", "(default: this machine's, {arch})"],
}


@pytest.mark.parametrize("command", list(HELPS), ids=lambda command: " ".join(command) or "afterglow")
def test_every_command_explains_itself_in_plain_text_with_an_example_and_its_defaults(command: tuple[str, ...]
                                                                                      ) -> None:
    from afterglow.layer import this_machine

    here = this_machine()
    result = afterglow(*command, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # as read, whatever the terminal's width wrapped
    for expected in HELPS[command]:
        assert expected.replace("{python}", here.python).replace("{arch}", here.arch) in text, expected
    for markup in ("``", ":func:", ":class:", ".. ", "`"):  # reStructuredText and Markdown stay in the docs
        assert markup not in result.stdout, markup


def test_the_internal_extension_command_is_left_out_of_the_help_but_still_runs() -> None:
    listed = afterglow("--help").stdout.split("commands:")[1].split("examples:")[0]
    assert [line.split()[0] for line in listed.splitlines()[2:] if line.strip()] == ["run", "sandbox", "layer"]
    result = subprocess.run([sys.executable, "-m", "afterglow", "extension"], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1  # outside Lambda it says why and stops
    assert "AWS_LAMBDA_RUNTIME_API is not set" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [(), ("deploy",), ("run", "--handler", "app.handler"), ("run", "--memory", "lots"),
                                  ("layer",), ("layer", "build", "--python", "2.7"),
                                  ("layer", "build", "--arch", "sparc")])
def test_usage_errors_exit_with_2_and_say_what_is_wrong(args: tuple[str, ...]) -> None:
    result = afterglow(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert "afterglow" in result.stderr and "Traceback" not in result.stderr
