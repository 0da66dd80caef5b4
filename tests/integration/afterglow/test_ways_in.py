"""The other ways in (docs/ways-in.md): a container image's /opt, pip installs, and the deployment snippets."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "examples" / "deploy"

HANDLER = """
from tracer import trace_handler


@trace_handler
def handler(event, context):
    return {"ok": True}
"""


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT))
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_is_afterglow_lambda_with_its_data_files_and_builds_without_setuptools_warnings(
        tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps",
                             "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "absent from the `packages` configuration" not in output
    assert "SetuptoolsDeprecationWarning" not in output and "BuildBackendWarning" not in output
    (built,) = tmp_path.glob("*.whl")
    assert built.name.startswith("afterglow_lambda-")
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
    assert {"afterglow/layer_files/afterglow-instrument", "afterglow/layer_files/extensions/afterglow",
            "sandbox/managed_runtime/bootstrap.sh", "sandbox/managed_runtime/bootstrap.py",
            "tracer/py.typed", "instrumentation/py.typed"} <= names
    assert not any(name.startswith(("tests/", "benchmarks/", "examples/")) or "__pycache__" in name for name in names)
    assert any(name.startswith("afterglow_lambda-") and name.endswith("/LICENSE") for name in names)


def _task_root(tmp_path: Path, source: str) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "app.py").write_text(textwrap.dedent(source))
    return root


def _executables_in(layer: Path) -> set[str]:
    with zipfile.ZipFile(layer) as archive:
        return {info.filename for info in archive.infolist() if (info.external_attr >> 16) & 0o111}


def test_the_dockerfile_steps_give_a_working_opt(tmp_path: Path, built_layer: Path, otlp_receiver: Any) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    chmodded = set(re.findall(r"/opt/(\S+)", dockerfile.split("chmod 755", 1)[1].split("&&", 1)[0]))
    assert chmodded == _executables_in(built_layer), "the Dockerfile must restore every executable bit"

    opt = tmp_path / "opt"
    _run(sys.executable, "-m", "zipfile", "-e", str(built_layer), str(opt))  # as the Dockerfile's RUN line
    for name in chmodded:
        (opt / name).chmod(0o755)
    env = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/afterglow-instrument",
           "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}
    task_root = _task_root(tmp_path, "def handler(event, context):\n    return 'plain'\n")
    with Sandbox(task_root, "app.handler", layers=[opt], env=env) as box:
        assert box.invoke({}).json() == "plain"
    (span,) = otlp_receiver.wait_for_spans(1, timeout=20)
    assert span.attributes["faas.coldstart"] is True


def test_pip_install_into_opt_python_with_the_launcher(tmp_path: Path, wheel: Path, otlp_receiver: Any) -> None:
    """A container image built with pip instead of the layer zip: pip install --target /opt/python, then the
    two scripts the package ships copied to where Lambda looks for them."""
    opt = tmp_path / "opt"
    _run(sys.executable, "-m", "pip", "install", "--quiet", "--target", str(opt / "python"), str(wheel))
    shipped = opt / "python" / "afterglow" / "layer_files"
    (opt / "extensions").mkdir()
    shutil.copy2(shipped / "extensions" / "afterglow", opt / "extensions" / "afterglow")
    shutil.copy2(shipped / "afterglow-instrument", opt / "afterglow-instrument")
    task_root = _task_root(tmp_path, HANDLER)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}
    with Sandbox(task_root, "app.handler", layers=[opt], env=env) as box:
        assert box.invoke({}).json() == {"ok": True}
    spans = otlp_receiver.wait_for_spans(1, timeout=20)
    assert len(spans) == 1
    extension_lines = "\n".join(line.text for line in box.logs if line.source == "extension")
    function_lines = "\n".join(line.text for line in box.logs if line.source == "function")
    assert "spans received=1 exported=1" in extension_lines  # the extension's self-report at SHUTDOWN
    assert "exporting in-process" not in function_lines


def test_pip_install_into_the_deployment_package_exports_in_process(
    tmp_path: Path, wheel: Path, otlp_receiver: Any
) -> None:
    """No layer, no extension: the decorator still works and exports at the end of each invocation."""
    task_root = _task_root(tmp_path, HANDLER)
    _run(sys.executable, "-m", "pip", "install", "--quiet", "--target", str(task_root), str(wheel))
    with Sandbox(task_root, "app.handler", env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint}) as box:
        assert box.invoke({}).json() == {"ok": True}
        spans = otlp_receiver.wait_for_spans(1, timeout=20)
        function_lines = "\n".join(line.text for line in box.logs if line.source == "function")
    assert len(spans) == 1
    assert "no extension listening" in function_lines and "exporting in-process" in function_lines


@pytest.mark.parametrize("snippet", ["template.yaml", "main.tf", "cdk_stack.py", "Dockerfile"])
def test_deployment_snippets_point_at_the_layers_wrapper(snippet: str, built_layer: Path) -> None:
    text = (DEPLOY / snippet).read_text()
    wrappers = set(re.findall(r"AWS_LAMBDA_EXEC_WRAPPER\W+(/opt/[\w-]+)", text))
    assert wrappers == {"/opt/afterglow-instrument"}
    assert "afterglow-instrument" in _executables_in(built_layer)
    assert "afterglow-layer.zip" in text
