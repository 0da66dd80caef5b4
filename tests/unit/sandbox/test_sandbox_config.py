"""Function configuration: what is accepted, and the clear errors for what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.config import make_config, parse_env_pairs
from sandbox.jobs import new_trace_header, normalise_error_type
from sandbox.processes import describe_exit


def test_defaults_follow_lambda(tmp_path: Path) -> None:
    config = make_config(tmp_path, "app.handler")
    assert config.function_name == tmp_path.name
    assert config.timeout == 3.0 and config.memory == 128 and config.init_timeout == 10.0
    assert config.version == "$LATEST" and config.region == "us-east-1"
    assert config.function_arn == f"arn:aws:lambda:us-east-1:012345678912:function:{config.function_name}"


def test_region_comes_from_the_env(tmp_path: Path) -> None:
    config = make_config(tmp_path, "app.handler", env={"AWS_REGION": "eu-central-1"}, function_name="fn")
    assert config.function_arn == "arn:aws:lambda:eu-central-1:012345678912:function:fn"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"handler": ""}, "handler"),
        ({"timeout": 0}, "timeout"),
        ({"memory": 100}, "memory"),
        ({"memory": 20000}, "memory"),
        ({"function_name": "has space"}, "function name"),
        ({"env": {"1BAD": "x"}}, "not valid"),
        ({"env": {"OK": 1}}, "must be a string"),
        ({"env": {"_HANDLER": "x"}}, "use --handler"),
        ({"env": {"AWS_LAMBDA_RUNTIME_API": "x"}}, "reserved"),
        ({"env": {"_LAMBDA_TELEMETRY_LOG_FD": "3"}}, "reserved"),
        ({"bootstrap": []}, "bootstrap"),
        ({"init_timeout": -1}, "init_timeout"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    arguments = {"task_root": tmp_path, "handler": "app.handler", **kwargs}
    with pytest.raises(ValueError, match=message):
        make_config(**arguments)


def test_bootstrap_as_path_or_argv(tmp_path: Path) -> None:
    assert make_config(tmp_path, "a.b", bootstrap="/opt/bootstrap").bootstrap == ("/opt/bootstrap",)
    assert make_config(tmp_path, "a.b", bootstrap=["python3", "-m", "awslambdaric", "a.b"]).bootstrap == (
        "python3", "-m", "awslambdaric", "a.b")


def test_env_pairs() -> None:
    assert parse_env_pairs(["A=1", "B=", "C=x=y"]) == {"A": "1", "B": "", "C": "x=y"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_env_pairs(["NOVALUE"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_env_pairs(["=value"])


def test_error_types_are_normalised_as_rapid_does() -> None:
    assert normalise_error_type("Runtime.ImportModuleError") == "Runtime.ImportModuleError"
    assert normalise_error_type("Function.MyError") == "Function.MyError"
    assert normalise_error_type("Function.bad-name") == "Function.Unknown"
    assert normalise_error_type("Custom.Thing") == "Runtime.Unknown"
    assert normalise_error_type(None) == "Runtime.Unknown"


def test_generated_trace_header_has_the_xray_shape() -> None:
    header = new_trace_header()
    root, parent, sampled = header.split(";")
    assert root.startswith("Root=1-") and len(root) == len("Root=1-") + 8 + 1 + 24
    assert parent.startswith("Parent=") and len(parent) == len("Parent=") + 16
    assert sampled == "Sampled=0"


def test_exit_descriptions_use_lambdas_wording() -> None:
    assert describe_exit(1) == "exit status 1"
    assert describe_exit(-9) == "signal: killed"
    assert describe_exit(-15) == "signal: terminated"
