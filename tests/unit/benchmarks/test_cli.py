"""``python -m benchmarks --help``: the help a user reads first."""

from __future__ import annotations

from pathlib import Path

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
    configs, _, _ = _select(parser, args)
    chosen = next(config for config in configs if config.name == "afterglow-flush-background-2000")
    assert chosen.env["AFTERGLOW_FLUSH"] == "background,2000"


def test_another_checkout_runs_beside_afterglow_as_afterglow_at_its_name(tmp_path: Path) -> None:
    (tmp_path / "afterglow").mkdir()
    (tmp_path / "afterglow" / "__main__.py").write_text("")
    parser = build_parser()
    args = parser.parse_args(["--configs", "afterglow", "otel-standard", "--tree", f"before={tmp_path}"])
    configs, _, trees = _select(parser, args)
    assert trees == {"before": tmp_path.resolve()}
    assert [config.name for config in configs] == ["bare", "afterglow", "afterglow@before", "otel-standard"]
    before = configs[2]
    assert before.layer == "afterglow@before" and before.handler == configs[1].handler and before.env == configs[1].env
    assert before.phases == configs[1].phases and str(tmp_path) in before.summary


@pytest.mark.parametrize(("tree", "configs", "complaint"), [
    ("before", ["afterglow"], "NAME=PATH"),
    ("a b=/", ["afterglow"], "NAME=PATH"),
    ("before=/", ["afterglow"], "not a checkout of afterglow"),
    ("before=.", ["otel-standard"], "beside afterglow"),
])
def test_a_tree_that_cannot_be_measured_is_refused(tree: str, configs: list[str], complaint: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["--configs", *configs, "--tree", tree])
    with pytest.raises(SystemExit):
        _select(parser, args)
    assert complaint in capsys.readouterr().err
