"""One function's configuration, checked once: a bad argument is a ``ValueError`` naming what to fix."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import runtimes

MAX_LAYERS = 5  # Lambda's limit per function
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240
INIT_TIMEOUT_S = 10.0  # on-demand init limit

# Variables the platform owns. Lambda refuses them as function configuration; so do we, with the option to
# use instead. Region and credentials stay settable: a laptop needs them to reach moto or a real account.
_RESERVED = {
    "_HANDLER": "--handler",
    "_X_AMZN_TRACE_ID": "an X-Amzn-Trace-Id header on the invoke",
    "AWS_EXECUTION_ENV": None,
    "AWS_LAMBDA_FUNCTION_NAME": "--function-name",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "--memory",
    "AWS_LAMBDA_FUNCTION_VERSION": None,
    "AWS_LAMBDA_INITIALIZATION_TYPE": None,
    "AWS_LAMBDA_LOG_GROUP_NAME": None,
    "AWS_LAMBDA_LOG_STREAM_NAME": None,
    "AWS_LAMBDA_RUNTIME_API": None,
    "LAMBDA_TASK_ROOT": "--task-root",
    "LAMBDA_RUNTIME_DIR": None,
    "TMPDIR": None,
    # awslambdaric would fork concurrent workers or write logs as binary frames to a descriptor
    "AWS_LAMBDA_MAX_CONCURRENCY": None,
    "_LAMBDA_TELEMETRY_LOG_FD": None,
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class FunctionConfig:
    task_root: Path
    handler: str
    layers: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 3.0
    memory: int = 128
    function_name: str = ""
    bootstrap: tuple[str, ...] | None = None  # argv of a custom runtime; None = the managed Python runtime
    init_timeout: float = INIT_TIMEOUT_S
    version: str = "$LATEST"
    account_id: str = "012345678912"
    runtime: str = field(default_factory=runtimes.own_name)  # Lambda's runtime setting, e.g. "python3.12"

    @property
    def region(self) -> str:
        return self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION") or "us-east-1"

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"


def make_config(
    task_root: str | os.PathLike[str],
    handler: str,
    layers: Iterable[str | os.PathLike[str]] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 3.0,
    memory: int = 128,
    function_name: str | None = None,
    bootstrap: str | os.PathLike[str] | Sequence[str] | None = None,
    init_timeout: float = INIT_TIMEOUT_S,
    runtime: str | None = None,
) -> FunctionConfig:
    """Validate the caller's arguments into a FunctionConfig (raises ValueError)."""
    root = Path(task_root).resolve()
    if not root.is_dir():
        raise ValueError(f"task root {str(task_root)!r} is not a directory")
    if not isinstance(handler, str) or not handler.strip():
        raise ValueError("handler must be a non-empty string such as 'app.handler'")
    layer_paths = tuple(Path(layer).resolve() for layer in layers)
    if len(layer_paths) > MAX_LAYERS:
        raise ValueError(f"{len(layer_paths)} layers given; Lambda allows at most {MAX_LAYERS}")
    for layer in layer_paths:
        if not (layer.is_dir() or layer.is_file()):
            raise ValueError(f"layer {str(layer)!r} is neither a zip file nor a directory")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
    if not init_timeout > 0:
        raise ValueError(f"init_timeout must be positive seconds, got {init_timeout!r}")
    if not isinstance(memory, int) or not MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB:
        raise ValueError(f"memory must be an integer from {MIN_MEMORY_MB} to {MAX_MEMORY_MB} MB, got {memory!r}")
    name = function_name or root.name
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ValueError(f"function name {name!r} must be 1-64 letters, digits, '-' or '_' (use --function-name)")
    return FunctionConfig(
        task_root=root,
        handler=handler.strip(),
        layers=layer_paths,
        env=_checked_env(env or {}),
        timeout=float(timeout),
        memory=memory,
        function_name=name,
        bootstrap=_bootstrap_argv(bootstrap),
        init_timeout=float(init_timeout),
        runtime=runtimes.own_name() if runtime is None else runtimes.check_name(runtime),
    )


def parse_env_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (as given to --env) to a dict; the value may be empty or contain '='."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--env {pair!r} is not KEY=VALUE")
        env[key] = value
    return env


def _checked_env(env: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ValueError(f"environment variable name {key!r} is not valid")
        if not isinstance(value, str):
            raise ValueError(f"environment variable {key} must be a string, got {type(value).__name__}")
        if "\0" in value:
            raise ValueError(f"environment variable {key} contains a NUL byte")
        if key in _RESERVED:
            instead = _RESERVED[key]
            hint = f"; use {instead}" if instead else ""
            raise ValueError(f"{key} is reserved by the Lambda platform and cannot be set{hint}")
        checked[key] = value
    return checked


def _bootstrap_argv(bootstrap: str | os.PathLike[str] | Sequence[str] | None) -> tuple[str, ...] | None:
    if bootstrap is None:
        return None
    if isinstance(bootstrap, (str, os.PathLike)):
        argv: tuple[str, ...] = (os.fspath(bootstrap),)
    else:
        argv = tuple(str(part) for part in bootstrap)
    if not argv or not argv[0]:
        raise ValueError("bootstrap must be a path or a non-empty argv sequence")
    return argv
