"""Reading the runtime's log lines: awslambdaric's text and JSON formats, tracebacks, print output, odd input."""

from __future__ import annotations

import json

import pytest

from extension.log_parse import SEVERITY, attribute_value, parse_line, parse_time_ns

T0 = 1714564800123000000  # 2024-05-01T12:00:00.123Z
REQUEST = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


@pytest.mark.parametrize("text", [
    "2024-05-01T12:00:00.123Z", "2024-05-01T12:00:00.123+00:00", "2024-05-01 12:00:00,123+0000",
    "2024-05-01T12:00:00.123", "2024-05-01T14:00:00.123+02:00",
])
def test_times_in_the_forms_lambda_loggers_write(text: str) -> None:
    assert parse_time_ns(text) == T0


@pytest.mark.parametrize("text", [None, 5, "", "yesterday", "2024-13-01T00:00:00Z", "x" * 100, "2024-05-01Tnope"])
def test_anything_else_is_not_a_time(text: object) -> None:
    assert parse_time_ns(text) is None


def test_the_telemetry_api_s_form_reads_the_same_the_second_time_its_second_comes() -> None:
    for text, expected in [("2024-05-01T12:00:00.123Z", T0), ("2024-05-01T12:00:00.987Z", T0 + 864_000_000),
                           ("2024-13-01T00:00:00.123Z", None), ("2024-05-01T12:00:00.1x3Z", None),
                           ("2024-05-01 12:00:00.123Z", T0)]:
        assert parse_time_ns(text) == expected, text
        assert parse_time_ns(text) == expected, text  # from the cache of seconds


@pytest.mark.parametrize("level, number", [("DEBUG", 5), ("INFO", 9), ("WARNING", 13), ("ERROR", 17),
                                           ("CRITICAL", 21)])
def test_logging_in_the_text_format(level: str, number: int) -> None:
    parsed = parse_line(f"[{level}]\t2024-05-01T12:00:00.123Z\t{REQUEST}\tcharged order 42\n")
    assert (parsed.severity_text, parsed.severity_number) == (level, number)
    assert parsed.body == "charged order 42"
    assert parsed.time_ns == T0 and parsed.request_id == REQUEST
    assert parsed.trace_id is None and parsed.attributes == {}


def test_a_logging_line_outside_an_invocation_names_no_request() -> None:
    parsed = parse_line("[INFO]\t2024-05-01T12:00:00.123Z\t\tloading the model")
    assert parsed.request_id is None and parsed.body == "loading the model" and parsed.severity_number == 9


def test_tabs_and_carriage_returns_inside_the_message_survive() -> None:
    parsed = parse_line(f"[WARNING]\t2024-05-01T12:00:00.123Z\t{REQUEST}\tcolumns\ta\tb\rsecond line")
    assert parsed.body == "columns\ta\tb\nsecond line"


def test_an_unhandled_error_is_one_record_with_its_traceback() -> None:
    line = ("[ERROR] ValueError: boom: bad input\rTraceback (most recent call last):\r"
            '\xa0\xa0File "/var/task/app.py", line 9, in handler\r\xa0\xa0\xa0\xa0raise ValueError("boom")')
    parsed = parse_line(line)
    assert parsed.severity_text == "ERROR" and parsed.severity_number == 17
    assert parsed.body.split("\n") == line.split("\r")
    assert parsed.attributes == {"exception.type": "ValueError", "exception.message": "boom: bad input"}
    assert parsed.request_id is None  # the runtime's error line names no request: the collector knows it


def test_awslambdaric_3s_runtime_warning_before_the_error_keeps_the_errors_severity() -> None:
    # awslambdaric 3.x: its note about runtime updates and the unhandled error arrive as one record
    line = ("LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code.\r"
            "[ERROR] ValueError: boom\rTraceback (most recent call last):\r\xa0\xa0raise ValueError(\"boom\")")
    parsed = parse_line(line)
    assert parsed.severity_text == "ERROR" and parsed.severity_number == 17
    assert parsed.body.split("\n") == line.split("\r")
    assert parsed.attributes == {"exception.type": "ValueError", "exception.message": "boom"}


def test_an_error_with_a_dotted_type_and_no_message() -> None:
    parsed = parse_line("[ERROR] botocore.exceptions.NoCredentialsError\rTraceback (most recent call last):\r  x")
    assert parsed.attributes == {"exception.type": "botocore.exceptions.NoCredentialsError"}


def test_print_output_is_the_line_as_written_without_severity() -> None:
    for line in ("hello", "[not a level] hi", "[INFO] no tabs after the level", "{not json}", "[ERROR"):
        parsed = parse_line(line)
        assert parsed.body == line and parsed.request_id is None and parsed.time_ns is None
    assert parse_line("[not a level] hi").severity_number == 0
    assert parse_line("[INFO] no tabs after the level").severity_number == 9  # a level is a level


JSON_LINE = {
    "timestamp": "2024-05-01T12:00:00Z", "level": "WARNING", "message": "low stock", "logger": "shop.inventory",
    "stackTrace": None, "errorType": None, "errorMessage": None, "requestId": REQUEST, "location": None,
    "otelTraceID": "0af7651916cd43dd8448eb211c80319c", "otelSpanID": "b7ad6b7169203331", "otelTraceSampled": True,
    "sku": "A-1", "count": 3, "tags": ["a", "b"], "detail": {"warehouse": 7},
}


@pytest.mark.parametrize("as_text", [True, False])
def test_the_json_log_format_as_object_or_text(as_text: bool) -> None:
    parsed = parse_line(json.dumps(JSON_LINE) if as_text else dict(JSON_LINE))
    assert parsed.body == "low stock"
    assert (parsed.severity_text, parsed.severity_number) == ("WARNING", 13)
    assert parsed.time_ns == T0 - 123_000_000 and parsed.request_id == REQUEST
    assert parsed.trace_id == bytes.fromhex(JSON_LINE["otelTraceID"])
    assert parsed.span_id == bytes.fromhex(JSON_LINE["otelSpanID"]) and parsed.trace_flags == 1
    assert parsed.attributes == {"logger": "shop.inventory", "sku": "A-1", "count": 3, "tags": ["a", "b"],
                                 "detail": '{"warehouse":7}'}


def test_the_json_error_record_of_an_unhandled_exception() -> None:
    parsed = parse_line({"timestamp": "2024-05-01T12:00:00Z", "level": "ERROR", "errorMessage": "boom",
                         "errorType": "ValueError", "requestId": REQUEST,
                         "stackTrace": ['  File "/var/task/app.py", line 9, in handler\n    raise ValueError\n']})
    assert parsed.body == "ValueError: boom" and parsed.severity_number == 17
    assert parsed.attributes == {"exception.type": "ValueError", "exception.message": "boom",
                                 "exception.stacktrace": '  File "/var/task/app.py", line 9, in handler\n'
                                                         "    raise ValueError"}


def test_a_json_object_that_is_not_a_log_record_is_the_body() -> None:
    parsed = parse_line('{"order": 42, "total": 9.5}')
    assert parsed.body == {"order": 42, "total": 9.5} and parsed.severity_number == 0 and parsed.attributes == {}


def test_bad_ids_and_levels_in_json_are_ignored() -> None:
    parsed = parse_line({"message": "m", "level": "LOUD", "otelTraceID": "0" * 32, "otelSpanID": "zz",
                         "requestId": "None", "timestamp": "later"})
    assert parsed.body == "m" and parsed.severity_text == "LOUD" and parsed.severity_number == 0
    assert parsed.trace_id is None and parsed.request_id is None and parsed.time_ns is None


@pytest.mark.parametrize("record", [None, 42, ["a"], "", "\n", "{", "[", "[]", "]"])
def test_odd_records_never_raise(record: object) -> None:
    parsed = parse_line(record)
    assert parsed.severity_number == 0


def test_attribute_values_are_what_otlp_accepts() -> None:
    assert attribute_value("s") == "s" and attribute_value(3) == 3 and attribute_value(True) is True
    assert attribute_value([1, 2]) == [1, 2]
    assert attribute_value([1, "a"]) == '[1,"a"]' and attribute_value([]) == "[]"
    assert attribute_value({"é": None}) == '{"é":null}'


def test_every_level_name_has_a_severity_in_the_data_models_ranges() -> None:
    assert all(1 <= number <= 24 for number in SEVERITY.values())
