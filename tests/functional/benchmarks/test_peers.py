"""Each of the field's tracers runs in the sandbox as the benchmark sets it up and its spans reach the loopback
receiver that speaks its protocol: one cold and two warm invocations through the benchmark's own worker
(``benchmarks.steady_worker.run``), the layer installed from PyPI once and cached (``~/.cache/afterglow``).

What each tracer costs is the benchmark's business (``python -m benchmarks --only peers``); here only that it
runs, the handler's answer passes through, and every span the function made arrived, counted by the receiver.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks import steady_worker
from benchmarks.layers import LAYER_FILES, LayerError, peer_layer
from benchmarks.peers import PEER_LIST, Peer
from benchmarks.runner import FUNCTION_DIR, function_env
from benchmarks.services import receiver_files
from sandbox import runtimes

pytestmark = pytest.mark.timeout(400)  # a first run installs the layer from PyPI

SPANS = 10  # child spans per invocation, as the benchmark's steady load


def _layer(peer: Peer, workdir: Path) -> Path:
    runtime = peer.config.runtime
    if runtime is not None and runtimes.find_interpreter(runtime) is None:
        pytest.skip(f"{peer.config.name} needs the {runtime} runtime; this machine has no interpreter for it "
                    f"(installed: {', '.join(runtimes.installed())})")
    assert peer.config.layer is not None
    try:
        layer = peer_layer(peer.config.layer, peer.requirements, runtime, log=lambda message: None)
    except LayerError as error:
        pytest.fail(f"{peer.config.name}: {error}")
    extra = tuple((name, LAYER_FILES / source) for name, source in peer.extra)
    return replace(layer, extra=extra).linked(workdir)


def _run_once(peer: Peer, layer: Path) -> dict[str, Any]:
    layers = {peer.config.layer or "": layer}
    spec = {"config": peer.config.name, "task_root": str(FUNCTION_DIR), "handler": peer.config.handler,
            "layers": [str(layer)], "env": function_env(peer.config, layers), "collector_delay_ms": 0.0,
            "memory": 1024, "cpu_limit": False, "event": {"spans": SPANS, "log": True}, "warmup": 0,
            "rate_per_s": 0.0, "count": 1, "max_seconds": 60.0, "collector": peer.config.collector,
            "runtime": peer.config.runtime, "ca_dir": str(receiver_files())}
    protocol = io.StringIO()
    result = steady_worker.run(spec, protocol, io.StringIO("go\n"))
    assert '"ready": true' in protocol.getvalue()
    return result


@pytest.mark.parametrize("peer", PEER_LIST, ids=[peer.config.name for peer in PEER_LIST])
def test_the_peer_runs_and_every_span_reaches_its_receiver(peer: Peer, tmp_path: Path) -> None:
    result = _run_once(peer, _layer(peer, tmp_path))

    assert result["errors"] == 0, result["error_examples"]
    assert result["invocations_ok"] == 3  # the cold start, the first warm invocation, one measured
    assert result["children"] == 3 * SPANS  # the handler's answer came back unchanged
    made = result["children"] + result["invocations_ok"]  # the child spans and one per invocation
    received = result["collector"]
    assert received["rejected"] == 0
    assert received["distinct"] >= made, f"{peer.config.name}: {received['distinct']} of {made} spans arrived"
    assert received["received"] == received["distinct"]  # nothing delivered twice


def test_only_peers_writes_the_peers_report_beside_afterglow_and_nothing_else(tmp_path: Path) -> None:
    """``python -m benchmarks --only peers``, as a user reruns that part alone: one peer, a handful of invocations."""
    command = [sys.executable, "-m", "benchmarks", "--only", "peers", "--quick", "--peers", "powertools",
               "--peer-invocations", "3", "--cost-warmup", "0", "--output-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=FUNCTION_DIR.parents[1], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"

    assert sorted(path.name for path in tmp_path.iterdir()) == ["peers.json", "peers.md", "peers.png"]
    table = {entry["config"]: entry for entry in json.loads((tmp_path / "peers.json").read_text())["peers"]["table"]}
    assert set(table) == {"afterglow", "powertools"}
    for entry in table.values():
        assert entry["failure"] is None
        assert entry["n"] == 3 and entry["n_far"] in (None, 1)
        assert entry["spans_received"] >= entry["spans_created"] > 0 and entry["lost"] == 0
        assert entry["cold_starts"] == 1 and entry["added_init_ms"] is not None
    text = (tmp_path / "peers.md").read_text()
    assert "| `powertools` | default | 3 / - |" in text and "| `afterglow` | default | 3 / 1 |" in text
