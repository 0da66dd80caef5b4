"""``afterglow run`` / ``afterglow sandbox`` name a path that names nothing, as a usage error (exit 2), before any
sandbox starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "hello"


def afterglow(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afterglow", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


FUNCTION = ("--task-root", str(EXAMPLE), "--handler", "app.handler")


@pytest.mark.parametrize("command", ["run", "sandbox"])
@pytest.mark.parametrize(("args", "said"), [
    (("--layer", "x.zip"), "--layer x.zip: no such file or directory"),
    (("--layer", str(EXAMPLE), "--layer", "gone"), "--layer gone: no such file or directory"),
])  # fmt: skip
def test_a_missing_layer_is_named_as_missing(command: str, args: tuple[str, ...], said: str) -> None:
    result = afterglow(command, *FUNCTION, *args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"afterglow {command}: {said}\n")


def test_a_missing_event_file_is_named_as_missing(tmp_path: Path) -> None:
    result = afterglow("run", *FUNCTION, "--event", "x.json", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, "afterglow run: --event x.json: no such file\n")
    result = afterglow("run", *FUNCTION, "--event", str(tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"afterglow run: --event {tmp_path}: not a file\n")


@pytest.mark.parametrize("command", ["run", "sandbox"])
def test_a_missing_task_root_is_named_as_missing(command: str, tmp_path: Path) -> None:
    result = afterglow(command, "--task-root", "nowhere", "--handler", "app.handler", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"afterglow {command}: --task-root nowhere: no such directory\n")
    (tmp_path / "app.py").write_text("")
    result = afterglow(command, "--task-root", "app.py", "--handler", "app.handler", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"afterglow {command}: --task-root app.py: not a directory\n")
