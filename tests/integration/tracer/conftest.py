"""Fixtures of the tracer's sandbox tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[3] / "afterglow" / "layer_files" / "extensions" / "afterglow"


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    """The shipped launcher; the packages come from this checkout (installed in the runtime's environment)."""
    root = tmp_path / "layer"
    (root / "extensions").mkdir(parents=True)
    shutil.copy2(LAUNCHER, root / "extensions" / "afterglow")
    return root
