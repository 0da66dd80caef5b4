"""``afterglow run`` and ``afterglow sandbox`` end to end, as a user runs them (real processes)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = Path(__file__).parent / "example"
EXTENSION_SCRIPT = REPO / "tests" / "functional" / "sandbox" / "scripts" / "recording_extension.py"


def afterglow(*args: str, stdin: bytes | None = None, timeout: float = 90) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "afterglow", *args], cwd=REPO, input=stdin, capture_output=True,
                          timeout=timeout)


def _layer_with_extension(root: Path, name: str, **config: object) -> Path:
    layer = root / "layer"
    (layer / "extensions").mkdir(parents=True)
    (layer / "ext-config").mkdir()
    target = layer / "extensions" / name
    shutil.copy(EXTENSION_SCRIPT, target)
    os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR)
    (layer / "ext-config" / f"{name}.json").write_text(json.dumps({"record": str(root / "record.jsonl"), **config}))
    return layer


def test_run_prints_responses_and_lambda_log_lines(tmp_path: Path) -> None:
    layer = _layer_with_extension(tmp_path, "sidecar", shutdown_print="sidecar flushed 2 invocations")
    result = afterglow("run", "--task-root", str(EXAMPLE), "--handler", "app.handler", "--layer", str(layer),
                       "--event", str(EXAMPLE / "event.json"), "--repeat", "2")
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    responses = [json.loads(line) for line in out.splitlines()]
    assert responses == [{"statusCode": 200, "body": "hello, cli"}] * 2
    lines = err.splitlines()
    reports = [line for line in lines if line.startswith("REPORT RequestId: ")]
    assert len(reports) == 2
    assert "Init Duration: " in reports[0] and "Init Duration: " not in reports[1]
    assert all("Post-Runtime Extension Duration: " in report for report in reports)
    assert sum(line.startswith("START RequestId: ") for line in lines) == 2
    assert sum(line.startswith("END RequestId: ") for line in lines) == 2
    assert lines.count("greeting cli") == 2  # the function's own output, unprefixed
    assert "[sidecar] sidecar starting" in lines  # extension lines carry the extension's name
    # run waits for the extensions' SHUTDOWN work, so what they print at shutdown is shown
    assert lines[-1] == "[sidecar] sidecar flushed 2 invocations"


def test_run_prints_what_each_process_costs_and_a_summary(tmp_path: Path) -> None:
    layer = _layer_with_extension(tmp_path, "sidecar", events=["INVOKE"])
    result = afterglow("run", "--task-root", str(EXAMPLE), "--handler", "app.handler", "--layer", str(layer),
                       "--event", str(EXAMPLE / "event.json"), "--repeat", "3")
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 0, lines
    after_reports = [lines[index + 1] for index, line in enumerate(lines) if line.startswith("REPORT RequestId: ")]
    assert len(after_reports) == 3
    for line in after_reports:  # e.g. COST runtime 0.61 ms CPU 41 MB | sidecar 0.38 ms CPU 27 MB | ... | billed 3 ms
        assert re.fullmatch(r"COST runtime [\d.]+ ms CPU \d+ MB \| sidecar [\d.]+ ms CPU \d+ MB \| "
                            r"post-runtime [\d.]+ ms \| billed \d+ ms", line), line
    summary = lines.index("COST SUMMARY over 3 invocation(s)")
    assert [line.split(":")[0].strip() for line in lines[summary + 1 : summary + 5]] == [
        "runtime CPU", "sidecar CPU", "environment CPU", "billed"]
    assert all(re.search(r"mean [\d.]+ p50 [\d.]+ p99 [\d.]+ ms", line) for line in lines[summary + 1 : summary + 5])


def test_run_tail_waits_for_the_extensions_and_shows_the_log(tmp_path: Path) -> None:
    layer = _layer_with_extension(tmp_path, "sidecar", events=["INVOKE"], hold_ms=300)
    result = afterglow("run", "--task-root", str(EXAMPLE), "--handler", "app.handler", "--layer", str(layer),
                       "--event", str(EXAMPLE / "event.json"), "--tail")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    waited = re.search(r"the caller waited ([\d.]+) ms for the response and the log", err)
    assert waited is not None and float(waited.group(1)) >= 300
    shown = err[waited.end():]
    assert "START RequestId: " in shown and "greeting cli" in shown and "REPORT RequestId: " in shown


def test_run_exits_non_zero_when_an_invocation_fails(tmp_path: Path) -> None:
    result = afterglow("run", "--task-root", str(EXAMPLE), "--handler", "app.broken")
    err = result.stderr.decode()
    assert result.returncode == 1
    assert json.loads(result.stdout)["errorType"] == "RuntimeError"
    assert "[ERROR] RuntimeError: no greeting today" in err
    assert "\nTraceback (most recent call last):\n" in err  # the "\r"-joined record shown on separate lines
    assert "1 of 1 invocation(s) failed" in err


def test_run_reads_the_event_from_stdin_and_refuses_bad_input(tmp_path: Path) -> None:
    result = afterglow("run", "--task-root", str(EXAMPLE), "--handler", "app.handler", "--event", "-",
                       stdin=b'{"name": "stdin"}')
    assert result.returncode == 0
    assert json.loads(result.stdout)["body"] == "hello, stdin"
    bad = afterglow("run", "--task-root", str(EXAMPLE), "--handler", "app.handler", "--event", "-", stdin=b"{nope")
    assert bad.returncode == 2
    assert "not valid JSON" in bad.stderr.decode()
    missing = afterglow("run", "--task-root", str(tmp_path / "absent"), "--handler", "app.handler")
    assert missing.returncode == 2
    assert f"--task-root {tmp_path / 'absent'}: no such directory" in missing.stderr.decode()
    reserved = afterglow("run", "--task-root", str(EXAMPLE), "--handler", "app.handler", "--env", "_HANDLER=x")
    assert reserved.returncode == 2 and "reserved" in reserved.stderr.decode()


def test_sandbox_serves_the_rie_endpoint_until_interrupted(tmp_path: Path) -> None:
    server = subprocess.Popen(  # port 0: the sandbox binds a free port itself and says which
        [sys.executable, "-m", "afterglow", "sandbox", "--task-root", str(EXAMPLE), "--handler", "app.handler",
         "--port", "0", "--env", "GREETING=hi"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    announced = b""
    try:
        assert server.stderr is not None
        stderr = server.stderr.fileno()
        while b" at POST http://" not in announced or not announced.endswith(b"\n"):  # its first lines
            readable, _, _ = select.select([stderr], [], [], 60)
            chunk = os.read(stderr, 4096) if readable else b""
            assert chunk, f"no announcement within 60 s or it exited: {announced.decode()}"
            announced += chunk
        match = re.search(rb" at POST (http://127\.0\.0\.1:(\d+)\S*)", announced)
        assert match, announced.decode()
        url, port = match.group(1).decode(), int(match.group(2))
        request = urllib.request.Request(url, data=b'{"name": "curl"}', method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert answer == {"statusCode": 200, "body": "hello, curl"}
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0
    err = announced + err
    text = out.decode()
    assert "START RequestId: " in text and "END RequestId: " in text and "REPORT RequestId: " in text
    assert "greeting curl" in text
    assert f"127.0.0.1:{port}" in err.decode()
    own = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert f"(app.handler, {own}) at POST" in err.decode()  # the runtime it runs, by default the sandbox's own
