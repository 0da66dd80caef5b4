"""Where the Telemetry API listener binds: the address ``sandbox.localdomain`` resolves to, else loopback; never
every interface."""

from __future__ import annotations

import logging
import socket

import pytest

from extension import telemetry
from extension.telemetry import DESTINATION_HOST, TelemetryListener, listen_address


def test_the_listener_binds_what_sandbox_localdomain_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def resolve(host: str) -> str:
        asked.append(host)
        return "127.0.0.2"  # the environment's own address (any loopback address binds here)

    monkeypatch.setattr(telemetry.socket, "gethostbyname", resolve)
    listener = TelemetryListener(lambda event: None)
    try:
        assert asked == [DESTINATION_HOST]
        assert listener._server.getsockname() == ("127.0.0.2", listener.port)
    finally:
        listener.stop()


def test_an_unresolvable_name_means_loopback_with_a_debug_line(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="afterglow.extension")

    def resolve(host: str) -> str:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(telemetry.socket, "gethostbyname", resolve)
    listener = TelemetryListener(lambda event: None)
    try:
        assert listener._server.getsockname()[0] == "127.0.0.1"
    finally:
        listener.stop()
    (line,) = [record for record in caplog.records if DESTINATION_HOST in record.getMessage()]
    assert line.levelno == logging.DEBUG and "127.0.0.1" in line.getMessage()


def test_a_name_resolving_to_the_wildcard_address_still_means_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry.socket, "gethostbyname", lambda host: "0.0.0.0")
    assert listen_address() == "127.0.0.1"


def test_a_real_lookup_of_a_name_that_does_not_exist_falls_back_to_loopback() -> None:
    assert listen_address("afterglow-no-such-host.invalid") == "127.0.0.1"
