"""The lifecycle loop against a fake Extensions/Telemetry API: what it tells its listeners, and in which order.

A listener added here, without a line of the loop changed, hears every event; the events it registers for follow
from whether a listener follows invocations.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extension.lambda_api import ExtensionsApi
from extension.lifecycle import Invocation, InvocationTracker, Lifecycle, Listener, Shutdown
from tests.functional.extension.fake_platform import FakePlatform
from tracer.export.assembler import Assembler, Outcome
from tracer.export.buffer import SpanBuffer
from tracer.export.stats import Stats


class Recorder(Listener):
    def __init__(self, name: str, heard: list[tuple[str, str, Any]], follows: bool) -> None:
        self.name = name
        self.heard = heard
        self.follows_invocations = follows
        self.telemetry_types = ("platform",) if follows else ()
        self.invoked_event = threading.Event()

    def _hear(self, event: str, detail: Any = None) -> None:
        self.heard.append((self.name, event, detail))

    def start(self, registration: dict[str, Any]) -> None:
        self._hear("start", registration.get("functionName"))

    def ready(self, telemetry_active: bool) -> None:
        self._hear("ready", telemetry_active)

    def invoked(self, invocation: Invocation) -> None:
        self._hear("invoked", invocation.request_id)
        self.invoked_event.set()

    def invocation_over(self, invocation: Invocation) -> None:
        self._hear("invocation_over", (invocation.request_id, invocation.outcome, invocation.until > invocation.over))

    def idle(self, invocation: Invocation) -> None:
        self._hear("idle", invocation.request_id)

    def shutting_down(self, shutdown: Shutdown) -> None:
        self._hear("shutting_down", shutdown.reason)

    def exiting(self, shutdown: Shutdown) -> None:
        self._hear("exiting", shutdown.drop_reason)

    def stop(self) -> None:
        self._hear("stop")


class Running:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.lifecycle.run()


@pytest.fixture
def run(platform: FakePlatform, tmp_path: Path) -> Iterator[Any]:
    started: list[Running] = []

    def start(*listeners: Listener) -> Running:
        stats = Stats()
        assembler = Assembler(SpanBuffer(100, stats), stats)
        tracker = InvocationTracker(str(tmp_path / "afterglow" / "spans.sock"), assembler, stats)
        running = Running(Lifecycle(ExtensionsApi(platform.address), tracker, [*listeners, tracker], budget_s=0.1))
        started.append(running)
        platform.wait_for("next", 1)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            platform.shutdown(budget_s=0.5)
        running.thread.join(10)
        assert not running.thread.is_alive()


def test_every_listener_hears_each_event_in_the_order_given(platform: FakePlatform, run: Any) -> None:
    heard: list[tuple[str, str, Any]] = []
    first, second = Recorder("first", heard, follows=True), Recorder("second", heard, follows=False)
    running = run(first, second)
    request_id = platform.invoke()
    assert first.invoked_event.wait(10)
    platform.runtime_done(request_id)  # the function is not traced: the platform says it is done
    platform.wait_for("next", 2)
    platform.shutdown("timeout")
    running.thread.join(10)

    assert running.code == 0
    (register,) = platform.of_kind("register")
    assert register[2]["events"] == ["INVOKE", "SHUTDOWN"]  # one listener follows invocations
    assert heard == [
        ("first", "start", "fn"), ("second", "start", "fn"),
        ("first", "ready", True), ("second", "ready", True),
        ("first", "invoked", request_id), ("second", "invoked", request_id),
        ("first", "invocation_over", (request_id, Outcome.UNTRACED, True)),
        ("second", "invocation_over", (request_id, Outcome.UNTRACED, True)),
        ("first", "idle", request_id), ("second", "idle", request_id),
        ("first", "shutting_down", "timeout"), ("second", "shutting_down", "timeout"),
        ("first", "exiting", "shutdown"), ("second", "exiting", "shutdown"),
        ("second", "stop", None), ("first", "stop", None),  # in reverse
    ]


def test_with_no_listener_following_invocations_it_registers_for_shutdown_only(platform: FakePlatform,
                                                                                 run: Any) -> None:
    heard: list[tuple[str, str, Any]] = []
    running = run(Recorder("only", heard, follows=False))
    platform.shutdown()
    running.thread.join(10)

    assert running.code == 0
    (register,) = platform.of_kind("register")
    assert register[2]["events"] == ["SHUTDOWN"]
    assert not platform.of_kind("subscribe")  # nobody asked for telemetry
    assert [event for _, event, _ in heard] == ["start", "ready", "shutting_down", "exiting", "stop"]


def test_registered_beforehand_it_starts_the_listeners_with_that_registration_and_does_not_register_again(
        platform: FakePlatform, tmp_path: Path) -> None:
    heard: list[tuple[str, str, Any]] = []
    api = ExtensionsApi(platform.address)
    api.register(("SHUTDOWN",))  # as extension.main does, before the listeners exist
    stats = Stats()
    tracker = InvocationTracker(str(tmp_path / "afterglow" / "spans.sock"), Assembler(SpanBuffer(100, stats), stats),
                                stats)
    running = Running(Lifecycle(api, tracker, [Recorder("only", heard, follows=False), tracker], budget_s=0.1))
    platform.wait_for("next", 1)
    platform.shutdown()
    running.thread.join(10)

    assert running.code == 0
    assert len(platform.of_kind("register")) == 1
    assert heard[0] == ("only", "start", "fn")  # the registration's answer, as if the loop had registered


def test_registered_beforehand_for_other_events_than_its_listeners_follow_it_stops_with_an_error(
        platform: FakePlatform, tmp_path: Path) -> None:
    api = ExtensionsApi(platform.address)
    api.register(("SHUTDOWN",))
    stats = Stats()
    tracker = InvocationTracker(str(tmp_path / "afterglow" / "spans.sock"), Assembler(SpanBuffer(100, stats), stats),
                                stats)
    lifecycle = Lifecycle(api, tracker, [Recorder("follows", [], follows=True), tracker], budget_s=0.1)

    assert lifecycle.run() == 1  # an INVOKE it never registered for would never come
    assert not platform.of_kind("next")
