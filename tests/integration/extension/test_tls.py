"""OTLP over TLS to a collector on loopback with a CA made here (trustme): both protocols, a server certificate
verified against OTEL_EXPORTER_OTLP_CERTIFICATE, mutual TLS with the client files, and a wrong CA that fails with
a clear logged reason and counted drops. The settings come from the environment, as the extension reads them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.helpers.otlp_receiver import OtlpGrpcReceiver, OtlpReceiver, TlsFiles
from tests.unit.tracer.export.test_inprocess import invocation_bytes
from tests.unit.tracer.export.test_otlp_config import ALL
from tracer.export.inprocess import InProcessExporter

SPANS_PER_INVOCATION = 4  # invocation_bytes: the invocation span and three children


@dataclass(frozen=True)
class Pki:
    ca: str  # the collector's CA, for OTEL_EXPORTER_OTLP_CERTIFICATE
    other_ca: str  # a CA that signed nothing here
    server: TlsFiles  # the collector's key and certificate, issued for 127.0.0.1
    client_key: str
    client_certificate: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca, other, client_ca = trustme.CA(), trustme.CA(), trustme.CA()

    def write(name: str, blob: Any) -> str:
        blob.write_to_path(str(root / name))
        return str(root / name)

    server = ca.issue_cert("127.0.0.1", "localhost")
    client = client_ca.issue_cert("function@afterglow.test")
    return Pki(
        ca=write("ca.pem", ca.cert_pem),
        other_ca=write("other-ca.pem", other.cert_pem),
        server=TlsFiles(write("server-key.pem", server.private_key_pem),
                        _chain(root / "server-chain.pem", server), write("client-ca.pem", client_ca.cert_pem)),
        client_key=write("client-key.pem", client.private_key_pem),
        client_certificate=_chain(root / "client-chain.pem", client),
    )


def _chain(path: Path, issued: trustme.LeafCert) -> str:
    path.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    return str(path)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["http/protobuf", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _collector(protocol: str, tls: TlsFiles) -> Any:
    return (OtlpGrpcReceiver if protocol == "grpc" else OtlpReceiver)(tls=tls)


@pytest.fixture
def exporter() -> Iterator[list[InProcessExporter]]:
    made: list[InProcessExporter] = []
    yield made
    for one in made:
        one.close()


def _export(monkeypatch: pytest.MonkeyPatch, made: list[InProcessExporter], protocol: str, endpoint: str,
            **files: str) -> InProcessExporter:
    """One invocation's spans through the extension's own pipeline, configured by the environment."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    for name, path in files.items():
        monkeypatch.setenv(f"OTEL_EXPORTER_OTLP_{name.upper()}", path)
    exporter = InProcessExporter()
    made.append(exporter)
    exporter.feed(invocation_bytes("r1")[0])
    exporter.flush(10.0)
    return exporter


def test_the_collectors_certificate_is_verified_against_the_given_ca(
    monkeypatch: pytest.MonkeyPatch, exporter: list[InProcessExporter], pki: Pki, protocol: str
) -> None:
    server_only = TlsFiles(pki.server.key, pki.server.certificate_chain)
    with _collector(protocol, server_only) as collector:
        assert collector.endpoint.startswith("https://")
        # no scheme: TLS all the same
        sent = _export(monkeypatch, exporter, protocol, collector.endpoint.removeprefix("https://"),
                       certificate=pki.ca)
        assert len(collector.wait_for_spans(SPANS_PER_INVOCATION, timeout=10)) == SPANS_PER_INVOCATION
    assert sent.stats.exported == SPANS_PER_INVOCATION and "rejected" not in sent.stats.dropped


def test_mutual_tls_sends_the_client_certificate(
    monkeypatch: pytest.MonkeyPatch, exporter: list[InProcessExporter], pki: Pki, protocol: str
) -> None:
    with _collector(protocol, pki.server) as collector:  # requires a client certificate from client-ca
        sent = _export(monkeypatch, exporter, protocol, collector.endpoint, certificate=pki.ca,
                       traces_client_key=pki.client_key, traces_client_certificate=pki.client_certificate)
        assert len(collector.wait_for_spans(SPANS_PER_INVOCATION, timeout=10)) == SPANS_PER_INVOCATION
    assert sent.stats.exported == SPANS_PER_INVOCATION


def test_without_the_client_certificate_mutual_tls_delivers_nothing(
    monkeypatch: pytest.MonkeyPatch, exporter: list[InProcessExporter], pki: Pki, protocol: str
) -> None:
    with _collector(protocol, pki.server) as collector:
        sent = _export(monkeypatch, exporter, protocol, collector.endpoint, certificate=pki.ca)
        assert collector.spans == []
    assert sent.stats.exported == 0


def test_a_wrong_ca_fails_with_a_clear_reason_and_counted_drops(
    monkeypatch: pytest.MonkeyPatch, exporter: list[InProcessExporter], pki: Pki, protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server_only = TlsFiles(pki.server.key, pki.server.certificate_chain)
    with _collector(protocol, server_only) as collector:
        sent = _export(monkeypatch, exporter, protocol, collector.endpoint, certificate=pki.other_ca)
        assert collector.spans == []
    assert sent.stats.exported == 0
    assert sent.stats.dropped["rejected"] == SPANS_PER_INVOCATION  # beside the function's own (invocation_bytes)
    failures = [record.getMessage() for record in caplog.records if "export to the collector failed" in
                record.getMessage()]
    assert failures, caplog.text
    reason = "the collector's certificate was not accepted" if protocol == "http/protobuf" else \
        "CERTIFICATE_VERIFY_FAILED"
    assert reason in failures[0] and "TLS, own CA" in failures[0]
    assert "dropped=6 (function.queue_full=2, rejected=4)" in caplog.text  # the self-report line
