"""The platform: queues invokes, creates and resets execution environments, records what happens.

A single worker task takes jobs in arrival order, so concurrent callers queue as they do on one Lambda
execution environment. Cold starts happen lazily on the first invoke (as RIE does); a failed init is
retried once inside the invoke under the function timeout (Lambda's "suppressed init"); a timeout or a
crash resets the environment, and the next invoke starts a new one.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sandbox.config import FunctionConfig
from sandbox.errors import Failure
from sandbox.instance import Instance
from sandbox.jobs import Job, Reply
from sandbox.records import LogLine, Recorder, Report
from sandbox.telemetry import TelemetryHub
from sandbox.workspace import Workspace

_RESET = object()
_STOP = object()


class Platform:
    def __init__(self, config: FunctionConfig, workspace: Workspace, recorder: Recorder, freeze: bool = True,
                 cpu_limit: bool = False) -> None:
        self.config = config
        self.workspace = workspace
        self.recorder = recorder
        self.freeze = freeze  # stop every process of the environment between invocations, as Lambda does
        self.cpu_limit = cpu_limit  # cap the environment's CPU in proportion to its memory, as Lambda does
        self.hub = TelemetryHub()
        self.notices: set[str] = set()
        self._tailing: Job | None = None  # the invocation whose log its caller asked for (X-Amz-Log-Type: Tail)
        self.runtime_api = ""  # host:port, known once the listener is bound
        self.instance: Instance | None = None
        self.closing = False
        self._instances = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def start(self, runtime_api: str) -> None:
        self.runtime_api = runtime_api
        if self.workspace.notice:
            self.notice(self.workspace.notice)
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="sandbox-worker")

    # --- output ----------------------------------------------------------------------------------

    def emit(self, event_type: str, record: dict[str, Any]) -> None:
        self.hub.emit(event_type, record)

    def log_platform(self, text: str) -> None:
        self.recorder.log(LogLine("platform", "platform", text, time.time()))
        if self._tailing is not None:
            self._tailing.log.append(text)

    def notice(self, text: str) -> None:
        """A line about the sandbox itself (what this machine cannot emulate), logged once."""
        if text not in self.notices:
            self.notices.add(text)
            self.recorder.log(LogLine("platform", "platform", text, time.time()))

    def process_line(self, source: str, name: str, text: str) -> None:
        now = time.time()
        self.recorder.log(LogLine(source, name, text, now))
        self.hub.emit(source, text, now)
        if self._tailing is not None:
            self._tailing.log.append(text)

    # --- jobs ------------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        if self.closing:
            job.answer(_service_error("the sandbox is shutting down"))
            job.finish()
            return
        self._queue.put_nowait(job)

    def environment_failed(self, instance: Instance) -> None:
        """A process died while the environment sat idle: reset it now rather than at the next invoke."""
        if instance is self.instance and instance.current is None and instance.phase == "idle":
            self._queue.put_nowait(_RESET)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            if job is _STOP:
                break
            if job is _RESET:
                await self._reset_if_failed()
                continue
            self._tailing = job if job.tail else None
            try:
                await self._run(job)
            except Exception as error:  # a bug here must not wedge every later caller
                job.answer(_service_error(f"sandbox error: {type(error).__name__}: {error}"))
                self.log_platform(f"sandbox error while invoking {job.request_id}: {error!r}")
                if self.instance is not None:
                    await self._retire(self.instance, "failure")
            finally:
                self._tailing = None
                job.finish()
        if self.instance is not None:
            await self._retire(self.instance, "spindown")

    async def _reset_if_failed(self) -> None:
        instance = self.instance
        if instance is not None and instance.fatal.done():
            await self._retire(instance, instance.fatal.result().reason)

    async def _run(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        await self._reset_if_failed()
        init_ms: float | None = None
        timeout_at: float
        if self.instance is None:
            outcome = await self._cold_start(job)
            if isinstance(outcome, Failure):
                return
            init_ms, timeout_at = outcome
        else:
            timeout_at = loop.time() + self.config.timeout
        instance = self.instance
        assert instance is not None
        report, failure = await instance.invoke(job, timeout_at, init_ms)  # frozen, unless it failed
        self.recorder.report(report)
        if failure is not None:
            await self._retire(instance, failure.reason)

    async def _cold_start(self, job: Job) -> tuple[float, float] | Failure:
        """Init; if it fails, once more inside the invoke. Returns (init ms, invoke deadline) or the failure."""
        loop = asyncio.get_running_loop()
        instance = self._new_instance()
        try:
            init_ms = await instance.initialize("init", self.config.init_timeout)
            return init_ms, loop.time() + self.config.timeout
        except Failure as failure:
            await self._retire(instance, failure.reason)
            if self.closing or failure.reason == "spindown":
                job.answer(Reply(failure.caller_body(job.request_id), "application/json", "Unhandled"))
                return failure
        # suppressed init: the retry counts against the function timeout
        started = loop.time()
        timeout_at = started + self.config.timeout
        instance = self._new_instance()
        try:
            init_ms = await instance.initialize("invoke", self.config.timeout)
            return init_ms, timeout_at
        except Failure as failure:
            job.answer(Reply(failure.caller_body(job.request_id), "application/json", "Unhandled"))
            duration_ms = (loop.time() - started) * 1000
            self.emit("platform.start", {"requestId": job.request_id, "version": self.config.version})
            self.log_platform(f"START RequestId: {job.request_id} Version: {self.config.version}")
            report = Report(
                request_id=job.request_id, status=failure.status, error_type=failure.error_type,
                duration_ms=round(duration_ms, 3), billed_duration_ms=max(1, int(duration_ms + 0.999)),
                init_duration_ms=None, post_runtime_extensions_ms=None, runtime_duration_ms=None,
                max_memory_used_mb=instance.max_memory_used_mb(), memory_size_mb=self.config.memory,
            )
            self.emit("platform.report", {
                "requestId": job.request_id, "status": failure.status, "errorType": failure.error_type,
                "metrics": {"durationMs": report.duration_ms, "billedDurationMs": report.billed_duration_ms,
                            "memorySizeMB": report.memory_size_mb, "maxMemoryUsedMB": report.max_memory_used_mb},
            })
            self.log_platform(f"END RequestId: {job.request_id}")
            self.log_platform(f"REPORT RequestId: {job.request_id}\tDuration: {duration_ms:.2f} ms\t"
                              f"Billed Duration: {report.billed_duration_ms} ms\tMemory Size: {self.config.memory} MB\t"
                              f"Max Memory Used: {report.max_memory_used_mb} MB\tStatus: {failure.status}\t"
                              f"Error Type: {failure.error_type}")
            self.recorder.report(report)
            await self._retire(instance, failure.reason)
            return failure

    def _new_instance(self) -> Instance:
        self._instances += 1
        self.instance = Instance(self, self._instances)
        return self.instance

    async def _retire(self, instance: Instance, reason: str) -> None:
        record = await instance.shutdown(reason)
        self.recorder.shutdown(record)
        if self.instance is instance:
            self.instance = None

    # --- closing ---------------------------------------------------------------------------------

    async def close(self, force: bool = False) -> None:
        """Spin down. Queued callers get an error; the invoke phase in progress finishes first (it is bounded
        by the function timeout) unless ``force``; then the runtime and extensions shut down (spindown)."""
        if not self.closing:
            self.closing = True
            while not self._queue.empty():
                queued = self._queue.get_nowait()
                if isinstance(queued, Job):
                    queued.answer(_service_error("the sandbox is shutting down"))
                    queued.finish()
            self._queue.put_nowait(_STOP)
        instance = self.instance
        if force and instance is not None and instance.phase in ("init", "invoke"):
            instance.fail(Failure("failure", "Sandbox.Shutdown", "the sandbox is shutting down", "spindown"))
        if self._worker is not None:
            await asyncio.shield(self._worker)


def _service_error(message: str) -> Reply:
    body = json.dumps({"errorType": "ServiceException", "errorMessage": message}).encode()
    return Reply(body, "application/json", "Unhandled")
