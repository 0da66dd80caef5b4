"""Handlers the sandbox's tests run under the real awslambdaric (task root: this folder)."""

import logging
import os
import sys
import time


def echo(event, context):
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "trace_header": os.environ.get("_X_AMZN_TRACE_ID"),
        "client_context": getattr(context.client_context, "custom", None),
    }


def empty(event, context):
    return None


def environment(event, context):
    import shutil

    return {
        "env": dict(os.environ),
        "sys_path": sys.path,
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "python3": shutil.which("python3"),
    }


def fail(event, context):
    raise ValueError("it went wrong")


def sleep(event, context):
    time.sleep(event["seconds"])
    return "slept"


def crash(event, context):
    print("about to exit", flush=True)
    os._exit(7)


def chatty(event, context):
    print("to stdout")
    print("to stderr", file=sys.stderr)
    logging.getLogger().warning("a warning")
    return "ok"


def remember_pid(event, context):
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "runtime.pid"), "w") as pid_file:
        pid_file.write(str(os.getpid()))
    return os.getpid()


def binary(event, context):
    return b"\x00\x01binary"


def oversized(event, context):
    return "x" * (7 * 1024 * 1024)


def from_layer(event, context):
    import layered  # provided by a layer under python/

    return layered.WHO


def wrapped(event, context):
    return {"wrapped": True, "marker": os.environ.get("WRAPPER_MARK")}


def many_lines(event, context):
    for index in range(event["count"]):
        print(f"line {index:05d} " + "x" * event.get("width", 0))
    return event["count"]


def list_dir(event, context):
    return sorted(os.listdir(event["path"]))


def burn(event, context):
    """Use ``ms`` of CPU time (not wall time)."""
    end = time.thread_time() + event["ms"] / 1000
    while time.thread_time() < end:
        pass
    return "burnt"


def runtime(event, context):
    import subprocess

    import awslambdaric

    python3 = subprocess.run(["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True)
    return {
        "version_info": list(sys.version_info[:3]),
        "execution_env": os.environ["AWS_EXECUTION_ENV"],
        "python3_on_path": python3.stdout.strip(),
        "awslambdaric": os.path.dirname(awslambdaric.__file__),
        "runtime_dir": os.environ["LAMBDA_RUNTIME_DIR"],
    }
