"""Init: the managed runtime's bootstrap, exec wrappers, layers, /opt mapping, environment, init errors."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def _init_events(box: Sandbox) -> list[tuple[str, dict]]:
    return [(event["type"], event["record"]) for event in box.events if event["type"].startswith("platform.init")]


@pytest.mark.parametrize(
    ("module_source", "handler", "error_type"),
    [
        ("import no_such_module\n", "broken.handler", "Runtime.ImportModuleError"),
        ("def other(event, context):\n    return 1\n", "broken.handler", "Runtime.HandlerNotFound"),
        ("def handler(event, context)\n    return 1\n", "broken.handler", "Runtime.UserCodeSyntaxError"),
        ("", "nodot", "Runtime.MalformedHandlerName"),
    ],
)
def test_init_errors_reach_the_caller_as_lambda_returns_them(
    tmp_path: Path, module_source: str, handler: str, error_type: str
) -> None:
    (tmp_path / "broken.py").write_text(module_source)
    with Sandbox(tmp_path, handler, timeout=5) as box:
        invocation = box.invoke({})
        report = invocation.report()
        init = _init_events(box)
        recovered_later = box.invoke({})
    assert invocation.status == 200
    assert invocation.function_error == "Unhandled"
    assert invocation.json()["errorType"] == error_type
    assert report.status == "error" and report.error_type == error_type
    # Lambda retries a failed init once inside the invoke ("suppressed init")
    phases = [record["phase"] for kind, record in init if kind == "platform.initReport"]
    assert phases == ["init", "invoke"]
    assert all(
        record["status"] == "error" and record["errorType"] == error_type
        for kind, record in init
        if kind == "platform.initReport"
    )
    assert recovered_later.json()["errorType"] == error_type  # every invoke tries a new init
    assert [shutdown.reason for shutdown in box.shutdowns][:2] == ["failure", "failure"]


def _layer_with_python(tmp_path: Path) -> Path:
    layer = tmp_path / "layer"
    (layer / "python").mkdir(parents=True)
    (layer / "python" / "layered.py").write_text("WHO = 'python/'\n")
    return layer


def test_lambda_paths_opt_var_task_and_a_private_tmp(functions: Path, tmp_path: Path) -> None:
    layer = _layer_with_python(tmp_path)
    with Sandbox(functions, "handlers.environment", layers=[layer], env={"CUSTOM": "yes"}) as box:
        if not box.lambda_paths:
            pytest.skip(f"this machine cannot give processes Lambda's paths: {box.notices}")
        answer = box.invoke({}).json()
        tmp_dir = box.tmp_dir
    with tempfile.TemporaryDirectory(prefix="host-only-") as host_only, \
            Sandbox(functions, "handlers.list_dir", layers=[layer]) as box:
        (box.tmp_dir / "seen-by-the-function").write_text("x")
        private_tmp = box.private_tmp
        in_tmp = box.invoke({"path": "/tmp" if private_tmp else str(box.tmp_dir)}).json()
        in_opt = box.invoke({"path": "/opt/python"}).json()
        in_task = box.invoke({"path": "/var/task"}).json()
    assert "seen-by-the-function" in in_tmp and Path(host_only).name not in in_tmp
    assert in_opt == ["layered.py"]
    assert "handlers.py" in in_task
    env = answer["env"]
    assert answer["sys_path"][0] == "/var/task"
    assert "/opt/python" in answer["sys_path"]
    layer_site = [entry for entry in answer["sys_path"] if entry.startswith("/opt/python/lib/python3.")]
    assert answer["sys_path"].index(layer_site[0]) < answer["sys_path"].index("/opt/python")
    assert answer["cwd"] == "/var/task"
    if private_tmp:
        assert "TMPDIR" not in env  # Lambda sets none: /tmp itself is the environment's own
    else:  # this checkout or its interpreter lives in /tmp: the host's /tmp stays, TMPDIR is the private one
        assert env["TMPDIR"] == str(tmp_dir)
    assert env["PATH"] == "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
    assert answer["python3"] == "/var/lang/bin/python3"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" and env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["CUSTOM"] == "yes"
    assert not tmp_dir.exists()  # deleted on close


def test_without_lambda_paths_the_sandbox_directories_stand_in(functions: Path, tmp_path: Path) -> None:
    layer = _layer_with_python(tmp_path)
    with Sandbox(functions, "handlers.environment", layers=[layer], env={"CUSTOM": "yes"},
                 lambda_paths=False) as box:
        answer = box.invoke({}).json()
        tmp_dir, opt_dir = box.tmp_dir, box.opt_dir
    env = answer["env"]
    assert answer["sys_path"][0] == str(functions)
    assert str(opt_dir / "python") in answer["sys_path"]
    layer_site = [entry for entry in answer["sys_path"] if entry.startswith(str(opt_dir / "python" / "lib"))]
    assert answer["sys_path"].index(layer_site[0]) < answer["sys_path"].index(str(opt_dir / "python"))
    assert answer["cwd"] == str(functions)
    assert env["TMPDIR"] == str(tmp_dir)
    assert env["PATH"].split(":")[0].endswith("/lang/bin")
    assert answer["python3"] == str(Path(env["PATH"].split(":")[0], "python3"))
    assert env["PATH"].endswith(f"{opt_dir}/bin")
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["LAMBDA_TASK_ROOT"] == str(functions)
    assert env["_HANDLER"] == "handlers.environment"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SESSION_TOKEN"]
    assert env["CUSTOM"] == "yes"
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in env and "_LAMBDA_TELEMETRY_LOG_FD" not in env
    assert not tmp_dir.exists()  # deleted on close


def test_credentials_from_env_override_the_placeholders(functions: Path) -> None:
    with Sandbox(
        functions, "handlers.environment", env={"AWS_ACCESS_KEY_ID": "testing", "AWS_REGION": "eu-west-1"}
    ) as box:
        env = box.invoke({}).json()["env"]
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"


def test_later_layer_wins_and_zip_layers_keep_permissions(functions: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    (first / "python").mkdir(parents=True)
    (first / "python" / "layered.py").write_text("WHO = 'first'\n")
    (first / "python" / "only_first.py").write_text("")
    second = tmp_path / "second.zip"
    with zipfile.ZipFile(second, "w") as archive:
        archive.writestr("python/layered.py", "WHO = 'second'\n")
        script = zipfile.ZipInfo("bin/tool")
        script.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(script, "#!/bin/sh\necho tool\n")
    with Sandbox(functions, "handlers.from_layer", layers=[first, second]) as box:
        assert box.invoke({}).json() == "second"
        assert (box.opt_dir / "python" / "only_first.py").exists()
        assert os.access(box.opt_dir / "bin" / "tool", os.X_OK)


def test_exec_wrapper_changes_the_handler_and_environment(functions: Path, tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    # a wrapper shipped in a layer, named by its Lambda path /opt/...: it must exec "$@"
    _executable(
        layer / "wrapper.sh", '#!/bin/sh\nexport _HANDLER=handlers.wrapped\nexport WRAPPER_MARK="$1"\nexec "$@"\n'
    )
    with Sandbox(functions, "handlers.echo", layers=[layer], env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper.sh"}) as box:
        answer = box.invoke({}).json()
    assert answer["wrapped"] is True
    assert Path(answer["marker"]).name.startswith("python3")  # the wrapper got the interpreter first


@pytest.mark.parametrize(("make_wrapper", "code"), [("missing", 127), ("not_executable", 126)])
def test_exec_wrapper_errors(functions: Path, tmp_path: Path, make_wrapper: str, code: int) -> None:
    layer = tmp_path / "layer"
    layer.mkdir()
    if make_wrapper == "not_executable":
        (layer / "wrapper.sh").write_text('#!/bin/sh\nexec "$@"\n')
    with Sandbox(
        functions, "handlers.echo", layers=[layer], timeout=5, env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper.sh"}
    ) as box:
        invocation = box.invoke({})
        texts = [line.text for line in box.logs if line.source == "function"]
    assert invocation.function_error == "Unhandled"
    body = invocation.json()
    assert body["errorType"] == "Runtime.ExitError"
    assert f"exit status {code}" in body["errorMessage"]
    assert any("wrapper.sh" in text for text in texts)


def test_extensions_get_the_reduced_environment(functions: Path, make_layer) -> None:
    layer, _recordings = make_layer(envdump={})
    # the recording extension has no env dump: use a tiny extension of our own instead
    script = layer / "extensions" / "envdump"
    out = layer.parent / "extension-env.json"
    script.write_text(f"""#!/usr/bin/env python3
import http.client, json, os
with open({str(out)!r}, "w") as sink:
    json.dump({{"env": dict(os.environ), "cwd": os.getcwd()}}, sink)
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
c = http.client.HTTPConnection(host, int(port))
c.request("POST", "/2020-01-01/extension/register", json.dumps({{"events": []}}),
          {{"Lambda-Extension-Name": "envdump"}})
r = c.getresponse(); ident = r.getheader("Lambda-Extension-Identifier"); r.read()
c.request("GET", "/2020-01-01/extension/event/next", headers={{"Lambda-Extension-Identifier": ident}})
c.getresponse().read()
""")
    with Sandbox(functions, "handlers.empty", layers=[layer], env={"SHARED": "both"}) as box:
        box.invoke({})
        opt_path = "/opt" if box.lambda_paths else str(box.opt_dir)
    env = json.loads(out.read_text())["env"]
    assert env["SHARED"] == "both"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "functions"
    assert env["AWS_LAMBDA_RUNTIME_API"]
    assert env["PATH"].endswith(f"{opt_path}/bin")
    for hidden in (
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "LAMBDA_RUNTIME_DIR",
        "AWS_XRAY_DAEMON_ADDRESS",
    ):
        assert hidden not in env
    assert not [key for key in env if key.startswith("_")]


def test_bad_configuration_is_refused_clearly(functions: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        Sandbox(tmp_path / "missing", "app.handler")
    with pytest.raises(ValueError, match="reserved"):
        Sandbox(functions, "handlers.echo", env={"AWS_LAMBDA_MAX_CONCURRENCY": "2"})
    with pytest.raises(ValueError, match="at most 5"):
        Sandbox(functions, "handlers.echo", layers=[functions] * 6)
    with pytest.raises(ValueError, match="memory"):
        Sandbox(functions, "handlers.echo", memory=64)
    not_a_layer = tmp_path / "layer.txt"
    not_a_layer.write_text("nope")
    with pytest.raises(ValueError, match="neither"):
        Sandbox(functions, "handlers.echo", layers=[not_a_layer])


def test_custom_bootstrap_argv_runs_as_the_runtime(functions: Path) -> None:
    # what RIE users run: no managed bootstrap, awslambdaric started directly with the handler as argv[1]
    with Sandbox(functions, "handlers.echo", bootstrap=["python3", "-m", "awslambdaric", "handlers.echo"]) as box:
        answer = box.invoke({"custom": True}).json()
    assert answer["event"] == {"custom": True}


def test_custom_bootstrap_from_a_layer(functions: Path, tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    _executable(layer / "bootstrap", '#!/bin/sh\nexec python3 -m awslambdaric "$_HANDLER"\n')
    with Sandbox(functions, "handlers.echo", layers=[layer], bootstrap="/opt/bootstrap") as box:
        assert box.invoke({"layer": 1}).json()["event"] == {"layer": 1}
