"""``python -m benchmarks --help``: the help a user reads first."""

from __future__ import annotations

import pytest

from benchmarks.cli import build_parser


def test_the_help_renders_and_names_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--cost-invocations" in text and "30% of N" in text
    assert "--only" in text
