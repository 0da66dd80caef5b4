"""Log lines carry the current trace and span ids: plain ``logging`` and Powertools' Logger."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import instrumentation


@pytest.fixture
def plain_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s trace=%(otelTraceID)s span=%(otelSpanID)s %(message)s"))
    logger = logging.getLogger("tests.instrumentation.plain")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_plain_logging_records_carry_the_current_ids(tracing: Any, plain_log: Any) -> None:
    logger, stream = plain_log
    logger.info("before")
    with tracing.tracer().start_as_current_span("handler") as span:
        logger.info("inside")
    context = span.get_span_context()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "INFO trace=0 span=0 before",
        f"INFO trace={context.trace_id:032x} span={context.span_id:016x} inside",
    ]


def test_powertools_logger_writes_the_ids_into_its_json(tracing: Any) -> None:
    from aws_lambda_powertools import Logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    # Powertools keys its logging.Logger by service name: one name per run keeps handlers apart.
    logger = Logger(service=f"checkout-{tracing.kind}", logger_handler=handler)
    try:
        with tracing.tracer().start_as_current_span("handler") as span:
            logger.info("charged", extra={"order": "o-1"})
    finally:
        logging.getLogger(f"checkout-{tracing.kind}").removeHandler(handler)
    context = span.get_span_context()
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "charged"
    assert record["order"] == "o-1"
    assert record["otelTraceID"] == f"{context.trace_id:032x}"
    assert record["otelSpanID"] == f"{context.span_id:016x}"
    assert record["otelTraceSampled"] is True


def test_opting_out_keeps_ids_out_of_records(tracing: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    instrumentation.uninstrument()
    monkeypatch.setenv("AFTERGLOW_LOG_CORRELATION", "false")
    instrumentation.instrument()
    with tracing.tracer().start_as_current_span("handler"):
        record = logging.getLogger("tests").makeRecord("tests", logging.INFO, __file__, 1, "m", (), None)
    assert not hasattr(record, "otelTraceID")


def test_uninstrument_puts_the_previous_factory_back(tracing: Any) -> None:
    ours = logging.getLogRecordFactory()
    assert getattr(ours, "_afterglow", False)
    instrumentation.uninstrument()
    assert logging.getLogRecordFactory() is ours._previous  # type: ignore[attr-defined]
    instrumentation.instrument()
    instrumentation.instrument()
    factory = logging.getLogRecordFactory()
    assert getattr(factory, "_afterglow", False) and not getattr(factory._previous, "_afterglow", False)  # type: ignore[attr-defined]


def test_a_factory_installed_over_ours_keeps_working_after_uninstrument(tracing: Any) -> None:
    ours = logging.getLogRecordFactory()

    def theirs(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = ours(*args, **kwargs)
        record.theirs = True
        return record

    logging.setLogRecordFactory(theirs)
    try:
        instrumentation.uninstrument()
        assert logging.getLogRecordFactory() is theirs
        with tracing.tracer().start_as_current_span("handler"):
            record = logging.getLogger("tests").makeRecord("tests", logging.INFO, __file__, 1, "m", (), None)
        assert record.theirs is True
        assert not hasattr(record, "otelTraceID"), "ours is switched off, theirs still runs"
    finally:
        logging.setLogRecordFactory(ours._previous)  # type: ignore[attr-defined]
