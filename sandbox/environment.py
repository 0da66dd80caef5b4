"""The environment variables Lambda gives the function and, reduced, its extensions (spec section 4)."""

from __future__ import annotations

import datetime
import locale
import secrets
from functools import cache

from sandbox.config import FunctionConfig
from sandbox.workspace import Workspace

# Lambda strips these from the extensions' environment; RAPID also drops every name starting with "_".
_EXTENSION_HIDDEN = frozenset({
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
})

PLACEHOLDER_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIASANDBOXEXAMPLE00",
    "AWS_SECRET_ACCESS_KEY": "sandbox/placeholder/secret/access/key/000",
    "AWS_SESSION_TOKEN": "sandbox-placeholder-session-token",
}


def log_stream_name() -> str:
    """A fresh stream per execution environment, as Lambda names them."""
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")
    return f"{today}/[$LATEST]{secrets.token_hex(16)}"


@cache
def _utf8_locale() -> str:
    # Lambda sets en_US.UTF-8; where that locale is missing, Python would fall back to ASCII stdio.
    try:
        previous = locale.setlocale(locale.LC_CTYPE)
        locale.setlocale(locale.LC_CTYPE, "en_US.UTF-8")
        locale.setlocale(locale.LC_CTYPE, previous)
        return "en_US.UTF-8"
    except locale.Error:
        return "C.UTF-8"


def function_environment(
    config: FunctionConfig, workspace: Workspace, runtime_api: str, log_stream: str
) -> dict[str, str]:
    opt, task, runtime = workspace.opt_path, workspace.task_root_path, workspace.runtime_path
    env = {
        "_HANDLER": config.handler,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_EXECUTION_ENV": workspace.runtime.execution_env,
        "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        **PLACEHOLDER_CREDENTIALS,
        "LAMBDA_TASK_ROOT": task,
        "LAMBDA_RUNTIME_DIR": runtime,
        "TZ": ":UTC",
        "LANG": _utf8_locale(),
        "PATH": f"{workspace.lang_bin_path}:/usr/local/bin:/usr/bin/:/bin:{opt}/bin",
        "LD_LIBRARY_PATH": f"{task}:{task}/lib:{opt}/lib",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
        "_AWS_XRAY_DAEMON_PORT": "2000",
    }
    if workspace.tmp_path is not None:  # Lambda's /tmp is private to the environment
        env["TMPDIR"] = workspace.tmp_path
    for key, value in config.env.items():
        env[key] = workspace.map_opt(value)
    return env


def extension_environment(function_env: dict[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in function_env.items()
        if key not in _EXTENSION_HIDDEN and not key.startswith("_")
    }
