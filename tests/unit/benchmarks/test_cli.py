"""``python -m benchmarks --help``: the help a user reads first."""

from __future__ import annotations

import pytest

from benchmarks.cli import _select, build_parser


def test_the_help_renders_and_names_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--cost-invocations" in text and "30% of N" in text
    assert "--only" in text


def test_a_flush_policy_with_an_interval_is_measured_as_written() -> None:
    parser = build_parser()
    args = parser.parse_args(["--configs", "afterglow-flush-background-2000", "--flush-policies", "background,2000",
                              "--no-peers", "--no-latency"])
    configs, _ = _select(parser, args)
    chosen = next(config for config in configs if config.name == "afterglow-flush-background-2000")
    assert chosen.env["AFTERGLOW_FLUSH"] == "background,2000"
