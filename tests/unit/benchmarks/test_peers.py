"""The peers part's plan: which peers a command line runs, and that every peer is pinned and complete."""

from __future__ import annotations

import re

import pytest

from benchmarks import cli
from benchmarks.configs import BASELINE
from benchmarks.layers import LAYER_FILES, PEER_CONSTRAINTS
from benchmarks.peers import (
    FULL_PEERS,
    PEER_LIST,
    PEERS_BY_NAME,
    QUICK_PEERS,
    PeersResults,
    baseline_configs,
    markdown,
    summary_table,
)
from benchmarks.runner import FUNCTION_DIR


def _peers(*argv: str) -> list[str]:
    parser = cli.build_parser()
    return [peer.config.name for peer in cli._peers_wanted(parser, parser.parse_args(argv))]


def test_a_full_or_quick_run_includes_every_peer_and_a_narrowed_one_none() -> None:
    assert _peers() == list(PEERS_BY_NAME)
    assert _peers("--quick") == list(PEERS_BY_NAME)
    assert _peers("--configs", "afterglow") == []
    assert _peers("--no-peers") == []
    assert _peers("--only", "peers", "--peers", "adot,datadog") == ["adot", "datadog"]
    assert _peers("--configs", "afterglow", "--peers", "powertools") == ["powertools"]


def test_an_unknown_peer_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SystemExit):
        _peers("--peers", "nosuchtracer")


def test_quick_measures_fewer_invocations_and_the_option_overrides() -> None:
    parser = cli.build_parser()
    assert cli._peers_plan(parser, parser.parse_args(["--quick"])) == QUICK_PEERS
    assert QUICK_PEERS.near < FULL_PEERS.near
    plan = cli._peers_plan(parser, parser.parse_args(["--peer-invocations", "30"]))
    assert (plan.near, plan.far) == (30, 10)


def test_every_peer_is_pinned_and_its_files_exist() -> None:
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)$", PEER_CONSTRAINTS.read_text(), flags=re.MULTILINE))
    for peer in PEER_LIST:
        for requirement in peer.requirements:
            assert requirement in pins, f"{peer.config.name}: {requirement} is not pinned in {PEER_CONSTRAINTS.name}"
        for _, source in peer.extra:
            assert (LAYER_FILES / source).exists()
        module = peer.config.handler.rpartition(".")[0]
        handler_env = peer.config.env.get("DD_LAMBDA_HANDLER", peer.config.handler)
        own = handler_env.rpartition(".")[0] if module.startswith("datadog_lambda") else module
        assert (FUNCTION_DIR / f"{own}.py").is_file()


def test_a_peer_on_another_runtime_is_measured_against_bare_on_that_runtime() -> None:
    lite = PEERS_BY_NAME["otel-lite"].config
    assert lite.runtime == "python3.12" and lite.baseline == f"{BASELINE}-python3.12"
    baselines = baseline_configs(PEER_LIST)
    assert {config.name: config.runtime for config in baselines} == {
        f"{BASELINE}-python3.10": "python3.10", f"{BASELINE}-python3.12": "python3.12"}
    assert all(not config.exports for config in baselines)
    assert PEERS_BY_NAME["adot"].config.baseline == BASELINE


def test_a_peer_that_could_not_run_has_a_row_saying_why() -> None:
    skipped = {"otel-lite": "no python3.12 interpreter on this machine (installed: python3.11)"}
    failed_row = {"config": "adot", "collector_delay_ms": 0.0, "failure": "the worker exited (status 1): boom", "n": 0}
    results = PeersResults(QUICK_PEERS, skipped=skipped, cold_errors={"adot": ["status error: Runtime.ExitError"]})
    results.table = summary_table([failed_row], [PEERS_BY_NAME["adot"].config], QUICK_PEERS, skipped)
    text = "\n".join(markdown(results, None))
    assert "| `adot` | default | could not run: the worker exited (status 1): boom |" in text
    assert "| `otel-lite` | - | could not run: no python3.12 interpreter on this machine" in text
    assert "- `adot`: status error: Runtime.ExitError" in text
