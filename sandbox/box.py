"""``Sandbox``: the blocking Python API over the platform, for tests, benchmarks and the CLI.

The platform and its listener run on an event loop in a background thread. ``invoke`` is a real HTTP
call to the listener's invoke endpoint (one keep-alive connection per calling thread), so what it
measures is what a caller of the function would see.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import http.client
import json
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox import runtimes
from sandbox.config import INIT_TIMEOUT_S, make_config
from sandbox.records import MAX_KEPT, Invocation, LogLine, Recorder, Report, Shutdown
from sandbox.workspace import Workspace

INVOKE_PATH = "/2015-03-31/functions/function/invocations"

_open_sandboxes: weakref.WeakSet[Sandbox] = weakref.WeakSet()


@atexit.register
def _shut_down_forgotten_sandboxes() -> None:
    """Processes run in their own sessions: a sandbox nobody closed must not leave them behind."""
    for box in list(_open_sandboxes):
        with contextlib.suppress(Exception):
            box.shutdown(force=True)


class Sandbox:
    """A local Lambda execution environment for one function. Init happens on the first invoke.

    ``with Sandbox("examples/hello", "app.handler") as box: box.invoke({"a": 1}).json()``
    """

    def __init__(
        self,
        task_root: str | os.PathLike[str],
        handler: str,
        layers: Iterable[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 3.0,
        memory: int = 128,
        function_name: str | None = None,
        bootstrap: str | os.PathLike[str] | Sequence[str] | None = None,
        *,
        runtime: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        init_timeout: float = INIT_TIMEOUT_S,
        on_log: Callable[[LogLine], None] | None = None,
        on_report: Callable[[Report], None] | None = None,
        freeze: bool = True,
        cpu_limit: bool = False,
        lambda_paths: bool = True,
    ) -> None:
        """``runtime``: Lambda's runtime setting, ``"python3.10"`` to ``"python3.14"``, an interpreter installed
        here (default: the one running the sandbox; ValueError names the installed ones). ``freeze``: stop every
        process between invocations, as Lambda does. ``cpu_limit``: give the environment Lambda's CPU share for
        ``memory`` (1,769 MB = one vCPU) where cgroups allow it.
        ``lambda_paths``: run the processes where /opt, /var/task and /tmp are the environment's own (as root)."""
        self.config = make_config(task_root, handler, layers, env, timeout, memory, function_name, bootstrap,
                                  init_timeout, runtime)
        self._freeze, self._cpu_limit = freeze, cpu_limit
        self._recorder = Recorder(on_log, on_report)
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)
        self._events_lock = threading.Lock()
        self._closed = False
        self._connections: list[http.client.HTTPConnection] = []
        self._local = threading.local()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.runtime = runtimes.resolve(self.config.runtime)
        self._workspace = Workspace(self.config, self.runtime, lambda_paths)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox-loop", daemon=True)
        self._thread.start()
        try:
            self._platform, self._listener = self._call(self._start(host, port), timeout=30)
        except BaseException:
            self._stop_loop()
            self._workspace.close()
            raise
        self.host, self.port = host, self._listener.port
        self.url = f"http://{host}:{self.port}{INVOKE_PATH}"
        _open_sandboxes.add(self)

    async def _start(self, host: str, port: int) -> tuple[Any, Any]:
        from sandbox.api import Listener
        from sandbox.platform import Platform

        platform = Platform(self.config, self._workspace, self._recorder, self._freeze, self._cpu_limit)
        platform.hub.listeners.append(self._record_event)
        listener = Listener(platform)
        await listener.start(host, port)
        platform.start(f"{host}:{listener.port}")
        return platform, listener

    def _call(self, coroutine: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _record_event(self, event_type: str, record: Any, epoch: float) -> None:
        with self._events_lock:
            self._events.append({"time": epoch, "type": event_type, "record": record})

    # --- invoking --------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            # generous: an invoke may include an init (10 s), its retry and the function timeout
            limit = 2 * self.config.init_timeout + 2 * self.config.timeout + 30
            connection = http.client.HTTPConnection(self.host, self.port, timeout=limit)
            self._local.connection = connection
            self._connections.append(connection)
        return connection

    def invoke(self, event: Any = None, headers: Mapping[str, str] | None = None) -> Invocation:
        """Invoke the function once (blocking; thread-safe, concurrent callers queue).

        ``event`` is JSON-encoded unless it is ``bytes`` (sent as is); None sends ``{}``.
        ``headers`` go on the invoke request (e.g. ``X-Amzn-Trace-Id``, ``X-Amz-Client-Context``, or
        ``X-Amz-Log-Type: Tail``, which waits for the whole invoke phase and returns the log's tail).
        """
        if self._closed:
            raise RuntimeError("this sandbox is shut down")
        if isinstance(event, (bytes, bytearray)):
            body = bytes(event)
        else:
            body = json.dumps({} if event is None else event).encode()
        request_headers = {"Content-Type": "application/json", **(headers or {})}
        for attempt in (1, 2):
            connection = self._connection()
            started = time.perf_counter()
            try:
                connection.request("POST", INVOKE_PATH, body, request_headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()  # a keep-alive connection the server had closed: retry once on a new one
                if attempt == 2:
                    raise
                continue
            latency_ms = (time.perf_counter() - started) * 1000
            break
        response_headers = {key: value for key, value in response.getheaders()}
        return Invocation(
            status=response.status, body=data, headers=response_headers,
            function_error=response.getheader("X-Amz-Function-Error"),
            request_id=response.getheader("X-Amzn-RequestId", ""), latency_ms=latency_ms,
            _recorder=self._recorder,
        )

    def invoke_async(self, event: Any = None, headers: Mapping[str, str] | None = None
                     ) -> concurrent.futures.Future[Invocation]:
        """``invoke`` on a worker thread; the future resolves to the Invocation."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="invoke")
        return self._executor.submit(self.invoke, event, headers)

    # --- what happened ---------------------------------------------------------------------------

    @property
    def logs(self) -> list[LogLine]:
        return self._recorder.logs

    @property
    def shutdowns(self) -> list[Shutdown]:
        """One record per execution environment that ended (reset or spindown), in order."""
        return self._recorder.shutdowns

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every Telemetry API event the platform emitted (``{"time", "type", "record"}``), in order."""
        with self._events_lock:
            return list(self._events)

    def wait_shutdowns(self, count: int, timeout: float = 10.0) -> list[Shutdown]:
        return self._recorder.wait_shutdowns(count, timeout)

    @property
    def runtime_pid(self) -> int | None:
        instance = self._platform.instance
        runtime = instance.runtime if instance is not None else None
        return runtime.pid if runtime is not None and runtime.alive else None

    @property
    def extension_pids(self) -> dict[str, int]:
        instance = self._platform.instance
        if instance is None:
            return {}
        return {name: child.pid for name, child in dict(instance.launched).items() if child.alive}

    @property
    def lambda_paths(self) -> bool:
        """True when the processes see Lambda's own paths (/opt, /var/task, a private /tmp)."""
        return self._workspace.namespace is not None

    @property
    def private_tmp(self) -> bool:
        """True when the processes' /tmp is the environment's own (False: the host's, with TMPDIR private)."""
        return self._workspace.tmp_path is None

    @property
    def notices(self) -> list[str]:
        """What this machine cannot emulate here, one line each (also in the log)."""
        return sorted(self._platform.notices)

    @property
    def opt_dir(self) -> Path:
        return self._workspace.opt_dir

    @property
    def tmp_dir(self) -> Path:
        return self._workspace.tmp_dir

    # --- ending ----------------------------------------------------------------------------------

    def shutdown(self, force: bool = False) -> None:
        """Spin down: SIGTERM the runtime, SHUTDOWN (spindown) to extensions within 2000 ms, SIGKILL the
        rest; then stop the listener and delete the sandbox's directories. Safe to call twice.

        An invoke phase in progress finishes first (extensions included) unless ``force``."""
        if self._closed:
            return
        self._closed = True
        _open_sandboxes.discard(self)
        try:
            self._call(self._platform.close(force), timeout=self.config.timeout + 60)
            self._call(self._listener.stop(), timeout=10)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            for connection in self._connections:
                connection.close()
            self._stop_loop()
            self._workspace.close()

    def abort(self) -> None:
        """Cut a spin-down short (thread- and signal-safe): the invoke in progress ends now."""
        if not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._platform.close(force=True), self._loop)

    def _stop_loop(self) -> None:
        async def drain() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._call(drain(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.shutdown()
