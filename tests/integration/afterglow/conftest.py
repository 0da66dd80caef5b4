"""The layer as users get it: `afterglow layer build` for this machine, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from afterglow.layer import build_layer, this_machine


@pytest.fixture(scope="session")
def built_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("layer") / "afterglow-layer.zip"
    build_layer(output, this_machine(), log=lambda message: None)
    return output
