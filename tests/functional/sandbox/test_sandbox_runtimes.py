"""Lambda's runtime setting: the function runs on the Python it names (any of python3.10 to python3.14 installed
here), with the execution environment, INIT_START line and ``python3`` on PATH of that runtime."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox, runtimes

FUNCTIONS = Path(__file__).parent / "functions"
REPO = Path(__file__).resolve().parents[3]
OWN = f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def other(lambda_runtime: Callable[[str], Any]) -> str:
    """An installed runtime other than the sandbox's own, its runtime client installed."""
    name = next((name for name in runtimes.installed() if name != OWN), None)
    if name is None:
        pytest.skip(f"no Python 3.10-3.14 installed here besides the sandbox's own ({OWN})")
    lambda_runtime(name)
    return name


@pytest.mark.parametrize("name", runtimes.SUPPORTED)
def test_the_function_runs_on_the_runtime_it_names(name: str, lambda_runtime: Callable[[str], Any]) -> None:
    lambda_runtime(name)
    with Sandbox(FUNCTIONS, "handlers.runtime", runtime=name) as box:
        invocation = box.invoke({})
        assert invocation.status == 200, invocation.body
        seen = invocation.json()
        init_start = [line.text for line in box.logs if line.text.startswith("INIT_START")]
        init_event = next(event["record"] for event in box.events if event["type"] == "platform.initStart")
    version = name.removeprefix("python")
    assert ".".join(map(str, seen["version_info"][:2])) == version
    assert seen["execution_env"] == f"AWS_Lambda_{name}"
    assert seen["python3_on_path"] == version, "extensions' launchers run python3 from PATH: the runtime's"
    assert init_start and init_start[0].startswith(f"INIT_START Runtime Version: python:{version}.")
    assert init_event["runtimeVersion"].startswith(f"python:{version}.")
    if name != OWN:  # a managed runtime's own awslambdaric, beside bootstrap.py
        assert seen["awslambdaric"] == f"{seen['runtime_dir']}/awslambdaric"


def test_without_a_runtime_the_sandboxs_own_interpreter_runs_the_function() -> None:
    with Sandbox(FUNCTIONS, "handlers.runtime") as box:
        seen = box.invoke({}).json()
    assert seen["version_info"][:3] == list(sys.version_info[:3])
    assert seen["execution_env"] == f"AWS_Lambda_{OWN}"
    assert box.runtime.name == OWN


@pytest.mark.parametrize("name", ["python3.9", "python3", "nodejs20.x", "3.12", ""])
def test_a_name_that_is_not_a_lambda_python_runtime_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"is not a Lambda Python runtime \(python3\.10, .*, python3\.14\); "
                                         rf"installed here: .*{OWN}"):
        Sandbox(FUNCTIONS, "handlers.runtime", runtime=name)


@pytest.fixture
def no_other_interpreters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A machine with no Python but the sandbox's own: nothing on PATH, an empty pyenv."""
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    runtimes.find_interpreter.cache_clear()
    runtimes._pyenv_root.cache_clear()
    yield
    monkeypatch.undo()
    runtimes.find_interpreter.cache_clear()
    runtimes._pyenv_root.cache_clear()


def test_a_runtime_not_installed_is_refused_naming_what_is(no_other_interpreters: None) -> None:
    missing = next(name for name in runtimes.SUPPORTED if name != OWN)
    with pytest.raises(ValueError) as caught:
        Sandbox(FUNCTIONS, "handlers.runtime", runtime=missing)
    message = str(caught.value)
    assert message.startswith(f"runtime {missing}: no {missing} interpreter on PATH or in pyenv's versions")
    assert message.endswith(f"installed here: {OWN}")


def afterglow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afterglow", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


def test_run_takes_the_runtime_and_says_what_is_installed_when_it_cannot(other: str) -> None:
    function = ("--task-root", str(FUNCTIONS), "--handler", "handlers.runtime")
    result = afterglow("run", *function, "--runtime", other)
    assert result.returncode == 0, result.stderr
    assert f'"execution_env": "AWS_Lambda_{other}"' in result.stdout
    assert f"INIT_START Runtime Version: python:{other.removeprefix('python')}." in result.stderr

    result = afterglow("run", *function, "--runtime", "python3.9")
    assert result.returncode == 2
    assert result.stderr.startswith("afterglow run: runtime 'python3.9' is not a Lambda Python runtime")
    assert f"installed here: {', '.join(runtimes.installed())}" in result.stderr


@pytest.mark.parametrize("command", ["run", "sandbox"])
def test_the_help_explains_the_runtime_option(command: str) -> None:
    result = afterglow(command, "--help")
    assert result.returncode == 0
    assert "--runtime python3.X" in result.stdout and "python3.10 to python3.14" in " ".join(result.stdout.split())


def test_an_interpreter_that_cannot_install_the_runtime_client_is_an_error_saying_why(
        other: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    interpreter = runtimes.find_interpreter(other)
    assert interpreter is not None
    subprocess.run([interpreter, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True, timeout=60)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    said: list[str] = []
    with pytest.raises(OSError, match=r"-m pip install awslambdaric==.* failed: .*No module named pip"):
        runtimes.runtime_client(other, str(tmp_path / "bare" / "bin" / "python3"), said.append)
    release = runtimes.client_release()
    folder = tmp_path / "cache" / "afterglow" / "runtimes" / other
    assert said == [f"sandbox: installing awslambdaric {release} for {other} into {folder / f'awslambdaric-{release}'} "
                    "(once)"]
    assert [entry.name for entry in folder.iterdir()] == [".lock"], "nothing half there"


def test_without_lambdas_paths_the_runtime_client_is_in_the_sandboxs_runtime_directory(other: str) -> None:
    with Sandbox(FUNCTIONS, "handlers.runtime", runtime=other, lambda_paths=False) as box:
        seen = box.invoke({}).json()
    assert seen["execution_env"] == f"AWS_Lambda_{other}"
    assert seen["python3_on_path"] == other.removeprefix("python")
    assert seen["awslambdaric"] == f"{seen['runtime_dir']}/awslambdaric" and seen["runtime_dir"] != "/var/runtime"
