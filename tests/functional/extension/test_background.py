"""The default flush, ``background``: the extension never holds the environment, exports while it runs, and
drains everything at SHUTDOWN."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tests.functional.extension.fake_platform import ExtensionProcess, FakePlatform, FunctionProcess
from tests.helpers.otlp_receiver import OtlpReceiver

Spawn = Callable[..., ExtensionProcess]


def _background(collector: OtlpReceiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "AFTERGLOW_FLUSH": "background", **extra}


def test_registers_for_shutdown_only_and_subscribes_to_nothing_without_logs(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    spawn(platform, _background(otlp_receiver, AFTERGLOW_LOGS="false"))
    (register,) = platform.of_kind("register")
    assert register[2]["events"] == ["SHUTDOWN"]  # Lambda never waits for it after a response
    assert platform.of_kind("subscribe") == []  # nothing to follow: not even a delivery a second


@pytest.mark.parametrize(("setting", "buffer_ms"), [
    ({}, 1000),  # by default
    ({"OTEL_BSP_SCHEDULE_DELAY": "1500"}, 1500),
    ({"AFTERGLOW_FLUSH": "background,0"}, 25),  # within what Lambda accepts
    ({"AFTERGLOW_FLUSH": "background,600000"}, 30000),
])
def test_log_lines_are_delivered_as_often_as_the_export_goes(platform: FakePlatform, spawn: Spawn,
                                                             otlp_receiver: OtlpReceiver, setting: dict[str, str],
                                                             buffer_ms: int) -> None:
    """One Telemetry API delivery per export interval: sooner, its lines would only wait for the pass."""
    extension = spawn(platform, _background(otlp_receiver, **setting))
    (subscribe,) = platform.of_kind("subscribe")
    assert subscribe[2]["body"]["buffering"]["timeoutMs"] == buffer_ms
    platform.shutdown()
    assert extension.wait() == 0


def test_spans_leave_while_the_environment_runs_without_any_invoke_event(
        platform: FakePlatform, spawn: Spawn, otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, _background(otlp_receiver, AFTERGLOW_FLUSH="background,100"))
    function = FunctionProcess(extension.socket_path)
    sent = [span for number in range(3) for span in function.invocation(f"request-{number}")]
    received = otlp_receiver.wait_for_spans(len(sent), timeout=20)
    assert sorted(span.span_id for span in received) == sorted(span[1].hex() for span in sent)
    assert len(platform.of_kind("next")) == 1  # still waiting on its first event/next: never woken, never held
    platform.shutdown()
    assert extension.wait() == 0
    assert f"spans received={len(sent)} exported={len(sent)} dropped=0" in extension.stderr


def _all_left_at_shutdown(platform: FakePlatform, spawn: Spawn, collector: OtlpReceiver, invocations: int,
                          children: int, **extra: str) -> list[int]:
    """Invocations while the export interval is out of reach, then SHUTDOWN: every span arrives, each once. Returns
    the spans each request carried."""
    extension = spawn(platform, _background(collector, AFTERGLOW_FLUSH="background,600000", **extra))
    function = FunctionProcess(extension.socket_path)
    sent = [span for number in range(invocations)
            for span in function.invocation(f"request-{number}", children=children)]
    platform.shutdown()
    assert extension.wait() == 0
    assert sorted(collector.span_ids()) == sorted(span[1].hex() for span in sent)
    return [request.spans for request in collector.requests]


def test_what_is_left_leaves_at_shutdown_once(platform: FakePlatform, spawn: Spawn,
                                              otlp_receiver: OtlpReceiver) -> None:
    requests = _all_left_at_shutdown(platform, spawn, otlp_receiver, invocations=5, children=4)
    assert len(requests) == 1  # the interval never came: one request, at SHUTDOWN


def test_a_burst_past_high_water_leaves_before_the_interval(platform: FakePlatform, spawn: Spawn,
                                                            otlp_receiver: OtlpReceiver) -> None:
    extension = spawn(platform, _background(otlp_receiver, AFTERGLOW_FLUSH="background,600000",
                                            AFTERGLOW_MAX_BUFFERED_SPANS="400"))
    function = FunctionProcess(extension.socket_path)
    sent = [span for number in range(12) for span in function.invocation(f"request-{number}")]
    otlp_receiver.wait_for_spans(100, timeout=20)  # a quarter of the bound: no need to wait for the interval
    platform.shutdown()
    assert extension.wait() == 0
    assert sorted(otlp_receiver.span_ids()) == sorted(span[1].hex() for span in sent)


def test_a_request_carries_at_most_otel_bsp_max_export_batch_size_spans(platform: FakePlatform, spawn: Spawn,
                                                                         otlp_receiver: OtlpReceiver) -> None:
    requests = _all_left_at_shutdown(platform, spawn, otlp_receiver, invocations=5, children=4,
                                     OTEL_BSP_MAX_EXPORT_BATCH_SIZE="7")
    assert requests == [7, 7, 7, 4]


def test_by_default_a_backlog_leaves_in_requests_larger_than_the_sdks_512(platform: FakePlatform, spawn: Spawn,
                                                                          otlp_receiver: OtlpReceiver) -> None:
    requests = _all_left_at_shutdown(platform, spawn, otlp_receiver, invocations=3, children=399)
    assert requests == [1_200]  # one round trip, not three


def test_shutdown_during_a_pass_waiting_on_a_collector_that_does_not_answer_ends_within_its_deadline(
        platform: FakePlatform, spawn: Spawn) -> None:
    """A request in flight to a collector that does not answer (its timeout, 10 s by default, is longer than
    SHUTDOWN's 2 s) holds nothing up: the process ends, and what the request carried is counted, not silently
    lost."""
    collector = OtlpReceiver(delay_s=30.0).start()
    arrived = threading.Event()
    collector.on_arrival = arrived.set
    try:
        extension = spawn(platform, _background(collector, AFTERGLOW_FLUSH="background,100"))
        function = FunctionProcess(extension.socket_path)
        sent = function.invocation("request-0")
        assert arrived.wait(20)  # the pass's request is in flight
        platform.shutdown(budget_s=2.0)
        assert extension.wait(timeout=8) == 0
    finally:
        collector.stop(hold_port=False)
    assert f"spans received={len(sent)} exported=0 dropped={len(sent)}" in extension.stderr
    assert f"shutdown_in_flight={len(sent)}" in extension.stderr
