"""The afterglow layer built for another Python (`afterglow layer build --python 3.X`) traces the example function
in the sandbox under that runtime, its extension started by the layer's launcher on the runtime's interpreter,
as on Lambda."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox, runtimes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "hello"
OWN = f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def other_runtime(lambda_runtime: Callable[[str], Any]) -> Any:
    """python3.12 where it is installed and not the sandbox's own, else any other installed one."""
    others = [name for name in runtimes.installed() if name != OWN]
    if not others:
        pytest.skip(f"no Python 3.10-3.14 installed here besides the sandbox's own ({OWN})")
    return lambda_runtime("python3.12" if "python3.12" in others else others[-1])


@pytest.fixture(scope="module")
def layer_for_it(other_runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("layer") / "afterglow-layer.zip"
    result = subprocess.run(
        [sys.executable, "-m", "afterglow", "layer", "build", "--python", other_runtime.version, "--output",
         str(output)], cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    assert f"for Python {other_runtime.version}" in result.stdout
    return output


def test_the_layer_built_for_the_runtime_traces_the_function_there(other_runtime: Any, layer_for_it: Path) -> None:
    with Sandbox(EXAMPLE, "app.handler", layers=[layer_for_it], runtime=other_runtime.name, timeout=10) as box:
        invocation = box.invoke({"name": "afterglow"})
        assert invocation.status == 200, invocation.body
        assert invocation.json() == {"statusCode": 200, "body": "hello, afterglow"}
        invocation.report(timeout=60)
        extension_pid = box.extension_pids["afterglow"]
        extension_interpreter = os.path.realpath(f"/proc/{extension_pid}/exe")
        runtime_interpreter = os.path.realpath(f"/proc/{box.runtime_pid}/exe")
    expected = os.path.realpath(other_runtime.executable)
    assert (runtime_interpreter, extension_interpreter) == (expected, expected)
    output = "\n".join(line.text for line in box.logs)
    assert f"INIT_START Runtime Version: python:{other_runtime.version}." in output
    waterfall = output[output.index("· service hello · 2 spans"):]
    assert "└─ compose-greeting" in waterfall and "greeting.name=afterglow" in waterfall
    assert "greeted afterglow" in output
    assert "[afterglow] spans received=2 exported=2 dropped=0" in output  # the extension's self-report


def test_the_runtime_client_is_installed_once_then_reused(other_runtime: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    said: list[str] = []
    first = runtimes.runtime_client(other_runtime.name, other_runtime.executable, said.append)
    again = runtimes.runtime_client(other_runtime.name, other_runtime.executable, said.append)
    assert first == again == tmp_path / "afterglow" / "runtimes" / other_runtime.name / (
        f"awslambdaric-{runtimes.client_release()}")
    assert len(said) == 1 and said[0].startswith(f"sandbox: installing awslambdaric {runtimes.client_release()}")
    probe = "import awslambdaric, sys; print(awslambdaric.__file__)"
    found = subprocess.run([other_runtime.executable, "-c", probe], env={"PYTHONPATH": str(first)},
                           capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert found == str(first / "awslambdaric" / "__init__.py")
