"""One execution environment: its processes, the state the three APIs act on, and its lifecycle.

``Instance`` is driven by the platform's single worker (init, invoke, shutdown) and poked by API calls
(``runtime_*``, ``extension_*``, ``subscribe``). Both run on the sandbox's event loop, so there is no
locking: every state change calls ``_notify()``, and the lifecycle waits with ``_until(predicate)``,
which also ends early when the environment fails (``fatal``) or the deadline passes.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.environment import extension_environment, function_environment, log_stream_name
from sandbox.errors import ApiError, Failure
from sandbox.freezer import CpuSample, Freezer
from sandbox.jobs import Job, Reply, normalise_error_type
from sandbox.processes import Child, describe_exit
from sandbox.records import Cost, ProcessCost, Report, Shutdown
from sandbox.telemetry import iso_time

if TYPE_CHECKING:
    from sandbox.platform import Platform

MAX_EXTENSIONS = 10
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
EVENT_TYPES = frozenset({"INVOKE", "SHUTDOWN"})

GONE = object()  # what a pending long poll gets when the environment goes away (answered with 500)


@dataclass
class Extension:
    id: str
    name: str
    events: frozenset[str]
    internal: bool  # registered under a name that no launched executable has (e.g. from inside the runtime)
    child: Child | None
    ready: bool = False  # has called event/next
    errored: str | None = None  # "init" or "exit" once it reported an error
    poll: asyncio.Future[Any] | None = None
    queue: deque[bytes] = field(default_factory=deque)

    def deliver(self, event: bytes) -> None:
        if self.poll is not None and not self.poll.done():
            self.poll.set_result(event)
            self.poll = None
        else:
            self.queue.append(event)


@dataclass
class Result:
    kind: str  # "response" | "error"
    body: bytes
    content_type: str
    error_type: str | None
    at: float  # loop time


@dataclass
class Invoke:
    job: Job
    deadline_ms: int
    function_arn: str
    pending_extensions: set[str]  # ids of INVOKE extensions that have not called next yet
    dispatched_at: float
    result: Result | None = None
    runtime_done_at: float | None = None
    extensions_done_at: float | None = None


class Instance:
    def __init__(self, platform: Platform, number: int) -> None:
        self.platform = platform
        self.config = platform.config
        self.workspace = platform.workspace
        self.number = number
        self.instance_id = uuid.uuid4().hex
        self.log_stream = log_stream_name()
        self.env = function_environment(self.config, self.workspace, platform.runtime_api, self.log_stream)
        self.extension_env = extension_environment(self.env)
        self.loop = asyncio.get_running_loop()
        self.phase = "created"  # created -> init -> idle <-> invoke -> shutdown
        self.launched: dict[str, Child] = {}
        self.extensions: dict[str, Extension] = {}  # by identifier
        self.by_name: dict[str, Extension] = {}
        self.runtime: Child | None = None
        self.registration_open = True
        self.subscriptions_open = True
        self.runtime_ready = False
        self.runtime_poll: asyncio.Future[Any] | None = None
        self.current: Invoke | None = None
        self.stopping = False
        self.shutdown_delivered = False  # SHUTDOWN events have gone out to the extensions that asked for them
        self.fatal: asyncio.Future[Failure] = self.loop.create_future()
        self._poke: asyncio.Future[None] | None = None
        self.freezer = Freezer(platform.freeze)
        if platform.cpu_limit:
            why_not = self.freezer.limit_cpu(self.config.memory)
            if why_not is not None:
                platform.notice(f"sandbox: no CPU limit ({why_not}); durations are this machine's, not Lambda's")

    # --- waiting ---------------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._poke is not None and not self._poke.done():
            self._poke.set_result(None)

    async def _until(self, predicate: Callable[[], bool], deadline: float, on_timeout: Callable[[], Failure]) -> None:
        while not predicate():
            if self.fatal.done():
                raise self.fatal.result()
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise on_timeout()
            self._poke = self.loop.create_future()
            await asyncio.wait((self._poke, self.fatal), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)

    def fail(self, failure: Failure) -> None:
        """The environment cannot go on; the worker resets it (now, or at the end of the current phase)."""
        if self.fatal.done():
            return
        self.fatal.set_result(failure)
        self._notify()
        self.platform.environment_failed(self)

    # --- processes -------------------------------------------------------------------------------

    def _launch_extension(self, path: str, name: str) -> None:
        def on_line(text: str) -> None:
            self.platform.process_line("extension", name, text)

        seen_path = f"{self.workspace.opt_path}/extensions/{name}"
        try:
            self.workspace.check_runnable(seen_path, "")
            child = Child(self.workspace.command([seen_path]), self.extension_env, str(self.config.task_root),
                          on_line, self._process_exited)
        except OSError as error:
            raise Failure("error", "Extension.LaunchError", f"extension {name} could not be started: {error}",
                          "failure") from None
        self.freezer.add(_EXTENSION_KEY + name, child.pid)
        self.launched[name] = child

    def _start_runtime(self) -> None:
        argv = self.config.bootstrap or (self.workspace.bootstrap,)
        argv = (self.workspace.map_opt(argv[0]), *argv[1:])
        try:
            self.workspace.check_runnable(argv[0], self.env["PATH"])
            self.runtime = Child(self.workspace.command(argv), self.env, str(self.config.task_root),
                                 lambda text: self.platform.process_line("function", self.config.function_name, text),
                                 self._process_exited)
        except OSError as error:
            raise Failure("error", "Runtime.InvalidEntrypoint", f"the bootstrap {argv[0]} cannot be run: {error}",
                          "failure") from None
        self.freezer.add(_RUNTIME_KEY, self.runtime.pid)

    def _process_exited(self, child: Child) -> None:
        self._notify()
        if self.stopping:
            return
        code = child.exited.result()
        if child is self.runtime:
            message = (f"Runtime exited with error: {describe_exit(code)}" if code
                       else "Runtime exited without providing a reason")
            self.fail(Failure("error", "Runtime.ExitError", message, "failure"))
            return
        name = next((name for name, launched in self.launched.items() if launched is child), "?")
        self.fail(Failure("error", "Extension.Crash", f"Extension {name} exited with error: {describe_exit(code)}",
                          "failure"))

    def children(self) -> list[Child]:
        return [child for child in (self.runtime, *self.launched.values()) if child is not None]

    def drain_output(self) -> None:
        for child in self.children():
            child.drain()

    def max_memory_used_mb(self) -> int:
        """Peak resident memory of the environment's processes (Lambda counts the whole sandbox)."""
        total_kb = sum(_peak_rss_kb(child.pid) for child in self.children())
        return max(1, math.ceil(total_kb / 1024))

    def _processes(self) -> list[tuple[str, str, Child]]:
        """(name on the cost line, freezer key, process): the runtime first, then the extensions by name."""
        named = [("runtime", _RUNTIME_KEY, self.runtime)] if self.runtime is not None else []
        named += [(name, _EXTENSION_KEY + name, child) for name, child in sorted(self.launched.items())]
        return named

    def cpu_samples(self) -> dict[str, CpuSample]:
        samples = {}
        for _, key, _child in self._processes():
            sample = self.freezer.cpu(key)
            if sample is not None:
                samples[key] = sample
        return samples

    def cost_since(self, before: dict[str, CpuSample], billed_ms: int, post_runtime_ms: float | None) -> Cost:
        """What each process used since ``before`` was sampled (at the thaw)."""
        after = self.cpu_samples()
        processes = []
        for name, key, child in self._processes():
            start, end = before.get(key), after.get(key)
            if end is None:
                continue
            start = start or CpuSample(0.0, 0.0 if end.user_us is not None else None,
                                       0.0 if end.system_us is not None else None)
            user = None if end.user_us is None or start.user_us is None else (end.user_us - start.user_us) / 1000
            system = (None if end.system_us is None or start.system_us is None
                      else (end.system_us - start.system_us) / 1000)
            processes.append(ProcessCost(name=name, cpu_ms=round((end.total_us - start.total_us) / 1000, 3),
                                         user_ms=None if user is None else round(user, 3),
                                         system_ms=None if system is None else round(system, 3),
                                         peak_rss_mb=round(_peak_rss_kb(child.pid) / 1024, 1)))
        return Cost(processes=tuple(processes), billed_duration_ms=billed_ms,
                    post_runtime_extensions_ms=post_runtime_ms, frozen=self.freezer.enabled)

    def freeze(self) -> None:
        """The invoke phase is over: stop every process until the next INVOKE or SHUTDOWN."""
        self.platform.hub.pause()
        self.freezer.freeze()

    def thaw(self) -> None:
        self.freezer.thaw()
        self.platform.hub.resume()

    # --- init ------------------------------------------------------------------------------------

    async def initialize(self, phase: str, budget: float) -> float:
        """Run init (extensions, then the runtime) within ``budget`` seconds; return its duration in ms.

        Raises Failure when init fails or times out; the caller resets the environment.
        """
        platform, config = self.platform, self.config
        runtime_version = self.workspace.runtime.runtime_version
        self.phase = "init"
        started = self.loop.time()
        deadline = started + budget
        platform.emit("platform.initStart", {
            "initializationType": "on-demand", "phase": phase, "runtimeVersion": runtime_version,
            "runtimeVersionArn": f"arn:aws:lambda:{config.region}::runtime:sandbox",
            "functionName": config.function_name, "functionVersion": config.version,
            "instanceId": self.instance_id, "instanceMaxMemory": config.memory,
        })
        platform.log_platform(f"INIT_START Runtime Version: {runtime_version}\t"
                              f"Runtime Version ARN: arn:aws:lambda:{config.region}::runtime:sandbox")

        def timed_out(waiting_for: Callable[[], str]) -> Callable[[], Failure]:
            def failure() -> Failure:
                if phase == "init":
                    message = f"Init timed out after {budget:.2f} seconds: {waiting_for()}"
                else:
                    message = f"Task timed out after {config.timeout:.2f} seconds (init: {waiting_for()})"
                return Failure("timeout", "Sandbox.Timedout", message, "timeout")

            return failure

        try:
            paths = self.workspace.extension_paths()
            if len(paths) > MAX_EXTENSIONS:
                raise Failure("error", "Extension.TooManyExtensions",
                              f"{len(paths)} extensions in /opt/extensions; Lambda allows {MAX_EXTENSIONS}", "failure")
            for path in paths:
                self._launch_extension(str(path), path.name)
            await self._until(
                lambda: all(name in self.by_name for name in self.launched), deadline,
                timed_out(lambda: "extension(s) never registered: "
                          + ", ".join(name for name in self.launched if name not in self.by_name)))
            self._start_runtime()
            await self._until(lambda: self.runtime_ready, deadline,
                              timed_out(lambda: "the runtime did not call /runtime/invocation/next"))
            await self._until(
                lambda: all(ext.ready for ext in self.extensions.values()), deadline,
                timed_out(lambda: "extension(s) never called /extension/event/next: "
                          + ", ".join(ext.name for ext in self.extensions.values() if not ext.ready)))
        except Failure as failure:
            duration_ms = (self.loop.time() - started) * 1000
            self.drain_output()
            platform.emit("platform.initRuntimeDone", {"initializationType": "on-demand", "phase": phase,
                                                      "status": failure.status, "errorType": failure.error_type})
            platform.emit("platform.initReport", {"initializationType": "on-demand", "phase": phase,
                                                 "status": failure.status, "errorType": failure.error_type,
                                                 "metrics": {"durationMs": round(duration_ms, 3)}})
            platform.log_platform(f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: {phase}\t"
                                  f"Status: {failure.status}\tError Type: {failure.error_type}")
            platform.log_platform(f"{failure.error_type}: {failure.message}")
            raise
        duration_ms = (self.loop.time() - started) * 1000
        self.subscriptions_open = False
        platform.hub.stop_replay()
        self.drain_output()
        platform.emit("platform.initRuntimeDone", {"initializationType": "on-demand", "phase": phase,
                                                  "status": "success"})
        for ext in self.extensions.values():
            events = sorted(ext.events)
            platform.emit("platform.extension", {"name": ext.name, "state": "Ready", "events": events})
            platform.log_platform(f"EXTENSION\tName: {ext.name}\tState: Ready\tEvents: [{','.join(events)}]")
        platform.emit("platform.initReport", {"initializationType": "on-demand", "phase": phase,
                                             "status": "success", "metrics": {"durationMs": round(duration_ms, 3)}})
        self.phase = "idle"
        return duration_ms

    # --- invoke ----------------------------------------------------------------------------------

    async def invoke(
        self, job: Job, timeout_at: float, init_duration_ms: float | None
    ) -> tuple[Report, Failure | None]:
        """Run one invoke phase. The caller is answered as soon as the runtime posts (early return);
        this returns once the runtime and every INVOKE extension have called next again."""
        platform, config = self.platform, self.config
        self.phase = "invoke"
        cpu_before = self.cpu_samples()  # while still frozen: the thaw's own work (blocked calls restarted) counts
        self.thaw()
        remaining_s = max(0.0, timeout_at - self.loop.time())
        deadline_ms = int((time.time() + remaining_s) * 1000)
        invoke_extensions = {ext.id for ext in self.extensions.values() if "INVOKE" in ext.events}
        invoke = Invoke(job=job, deadline_ms=deadline_ms, function_arn=config.function_arn,
                        pending_extensions=set(invoke_extensions), dispatched_at=self.loop.time())
        self.current = invoke
        tracing = {"type": "X-Amzn-Trace-Id", "value": job.trace_id}
        platform.emit("platform.start", {"requestId": job.request_id, "version": config.version, "tracing": tracing})
        platform.log_platform(f"START RequestId: {job.request_id} Version: {config.version}")
        if invoke_extensions:
            event = json.dumps({"eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": job.request_id,
                                "invokedFunctionArn": config.function_arn, "tracing": tracing}).encode()
            for ext in self.extensions.values():
                if ext.id in invoke_extensions:
                    ext.deliver(event)
        started = invoke.dispatched_at
        poll, self.runtime_poll = self.runtime_poll, None
        if poll is not None and not poll.done():
            poll.set_result(invoke)

        failure: Failure | None = None
        runtime_done_emitted = False
        status, error_type = "success", None

        def timed_out() -> Failure:
            return Failure("timeout", "Sandbox.Timedout", f"Task timed out after {config.timeout:.2f} seconds",
                           "timeout")

        try:
            await self._until(lambda: invoke.result is not None, timeout_at, timed_out)
            assert invoke.result is not None
            if invoke.result.kind == "error":
                status, error_type = "error", invoke.result.error_type
            await self._until(lambda: invoke.runtime_done_at is not None, timeout_at, timed_out)
            self._emit_runtime_done(invoke, status, error_type)
            runtime_done_emitted = True
            await self._until(lambda: not invoke.pending_extensions, timeout_at, timed_out)
        except Failure as error:
            failure = error
            status, error_type = error.status, error.error_type
            if error.status == "timeout":
                platform.log_platform(
                    f"{_iso_now()} {job.request_id} Task timed out after {config.timeout:.2f} seconds")
            job.answer(Reply(error.caller_body(job.request_id), "application/json", "Unhandled"))
            if not runtime_done_emitted:
                self._emit_runtime_done(invoke, status, error_type)

        ended = self.loop.time()
        duration_ms = (ended - started) * 1000
        post_runtime_ms: float | None = None
        if invoke.runtime_done_at is not None and failure is None:
            last = invoke.extensions_done_at or invoke.runtime_done_at
            post_runtime_ms = max(0.0, (last - invoke.runtime_done_at) * 1000)
        billed_ms = max(1, math.ceil(duration_ms))
        if failure is None:
            # Frozen before the cost is read: what the processes burn on the way into the freeze (each thread's
            # blocked call is interrupted, and restarted at the thaw) is theirs to pay too.
            self.freeze()
        cost = self.cost_since(cpu_before, billed_ms, None if post_runtime_ms is None else round(post_runtime_ms, 3))
        report = Report(
            request_id=job.request_id, status=status, error_type=error_type, duration_ms=round(duration_ms, 3),
            billed_duration_ms=billed_ms, init_duration_ms=init_duration_ms,
            post_runtime_extensions_ms=None if post_runtime_ms is None else round(post_runtime_ms, 3),
            runtime_duration_ms=None if invoke.runtime_done_at is None
            else round((invoke.runtime_done_at - started) * 1000, 3),
            max_memory_used_mb=self.max_memory_used_mb(), memory_size_mb=config.memory, cost=cost,
        )
        self.drain_output()
        metrics: dict[str, Any] = {"durationMs": report.duration_ms, "billedDurationMs": report.billed_duration_ms,
                                   "memorySizeMB": report.memory_size_mb, "maxMemoryUsedMB": report.max_memory_used_mb}
        if init_duration_ms is not None:
            metrics["initDurationMs"] = round(init_duration_ms, 3)
        record: dict[str, Any] = {"requestId": job.request_id, "status": status, "metrics": metrics,
                                  "tracing": tracing}
        if error_type:
            record["errorType"] = error_type
        platform.emit("platform.report", record)
        platform.log_platform(f"END RequestId: {job.request_id}")
        platform.log_platform(_report_line(report, bool(invoke_extensions), failed=failure is not None))
        platform.hub.settle()  # encoded now, not on the next invocation's Runtime API path
        self.current = None
        if failure is None:
            self.phase = "idle"
        return report, failure

    def _emit_runtime_done(self, invoke: Invoke, status: str, error_type: str | None) -> None:
        if self.runtime is not None:
            self.runtime.drain()  # the function's lines come before runtimeDone
        end = invoke.runtime_done_at or self.loop.time()
        record: dict[str, Any] = {
            "requestId": invoke.job.request_id, "status": status,
            "metrics": {"durationMs": round((end - invoke.dispatched_at) * 1000, 3),
                        "producedBytes": len(invoke.result.body) if invoke.result else 0},
            "tracing": {"type": "X-Amzn-Trace-Id", "value": invoke.job.trace_id},
        }
        if error_type:
            record["errorType"] = error_type
        if invoke.result is not None:
            start_epoch = time.time() - (self.loop.time() - invoke.dispatched_at)
            latency = (invoke.result.at - invoke.dispatched_at) * 1000
            record["spans"] = [
                {"name": "responseLatency", "start": _iso(start_epoch), "durationMs": round(latency, 3)},
                {"name": "responseDuration", "start": _iso(start_epoch + latency / 1000), "durationMs": 0.0},
            ]
        self.platform.emit("platform.runtimeDone", record)

    # --- Runtime API -----------------------------------------------------------------------------

    async def runtime_next(self) -> Any:
        if self.stopping:
            return GONE
        if self.runtime_poll is not None and not self.runtime_poll.done():
            raise ApiError(403, "InvalidStateTransition", "the runtime is already waiting on /next")
        invoke = self.current
        if invoke is not None:
            if invoke.result is None:
                raise ApiError(403, "InvalidStateTransition",
                               f"invocation {invoke.job.request_id} has no response yet: post /response or /error")
            if invoke.runtime_done_at is None:
                invoke.runtime_done_at = self.loop.time()
        elif self.phase == "init" and not self.runtime_ready:
            self.runtime_ready = True
            self.registration_open = False
        poll: asyncio.Future[Any] = self.loop.create_future()
        self.runtime_poll = poll
        self._notify()
        return await poll

    def _invoke_for(self, request_id: str) -> Invoke:
        invoke = self.current
        if invoke is None or invoke.job.request_id != request_id:
            raise ApiError(400, "InvalidRequestID", f"{request_id} is not the current invocation")
        if invoke.result is not None:
            raise ApiError(403, "InvalidStateTransition", f"invocation {request_id} was already answered")
        return invoke

    def runtime_response(self, request_id: str, body: bytes, content_type: str) -> None:
        invoke = self._invoke_for(request_id)
        job = invoke.job
        if len(body) > MAX_RESPONSE_BYTES:
            message = (f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                       f"({MAX_RESPONSE_BYTES} bytes).")
            error = json.dumps({"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}).encode()
            invoke.result = Result("error", error, "application/json", "Function.ResponseSizeTooLarge",
                                   self.loop.time())
            job.answer(Reply(error, "application/json", "Unhandled"))
            self._notify()
            raise ApiError(413, "RequestEntityTooLarge", message)
        invoke.result = Result("response", body, content_type, None, self.loop.time())
        job.answer(Reply(body, content_type))  # early return: the caller has its answer now
        self._notify()

    def runtime_error(self, request_id: str, body: bytes, error_type_header: str | None) -> None:
        invoke = self._invoke_for(request_id)
        error_type = normalise_error_type(error_type_header)
        body = _error_body(body, error_type)
        invoke.result = Result("error", body, "application/json", error_type, self.loop.time())
        invoke.job.answer(Reply(body, "application/json", "Unhandled"))
        self._notify()

    def runtime_init_error(self, body: bytes, error_type_header: str | None) -> None:
        if self.phase != "init" or self.runtime_ready:
            raise ApiError(403, "InvalidStateTransition", "/runtime/init/error is only accepted during init")
        error_type = normalise_error_type(error_type_header)
        body = _error_body(body, error_type)
        try:
            message = str(json.loads(body).get("errorMessage", ""))
        except (ValueError, AttributeError):
            message = ""
        self.fail(Failure("error", error_type, message or error_type, "failure", body=body))

    # --- Extensions API --------------------------------------------------------------------------

    def _extension(self, identifier: str | None) -> Extension:
        if not identifier:
            raise ApiError(403, "Extension.MissingExtensionIdentifier", "missing Lambda-Extension-Identifier header")
        try:
            uuid.UUID(identifier)
        except ValueError:
            raise ApiError(403, "Extension.InvalidExtensionIdentifier",
                           f"{identifier!r} is not an extension identifier") from None
        ext = self.extensions.get(identifier)
        if ext is None:
            raise ApiError(403, "Extension.UnknownExtensionIdentifier", f"no extension has identifier {identifier}")
        return ext

    def register(self, name: str | None, body: bytes, accept_feature: str | None) -> tuple[str, dict[str, str]]:
        if not name:
            raise ApiError(403, "Extension.InvalidExtensionName", "missing Lambda-Extension-Name header")
        if not self.registration_open or self.stopping:
            raise ApiError(403, "Extension.RegistrationClosed", "extensions register during init, before the runtime")
        if name in self.by_name:
            raise ApiError(403, "Extension.InvalidExtensionName", f"an extension named {name!r} is already registered")
        if len(self.extensions) >= MAX_EXTENSIONS:
            raise ApiError(403, "Extension.TooManyExtensions", f"at most {MAX_EXTENSIONS} extensions may register")
        try:
            request = json.loads(body) if body.strip() else {}
        except ValueError:
            raise ApiError(403, "InvalidRequestFormat", "the register body is not valid JSON") from None
        if not isinstance(request, dict):
            raise ApiError(403, "InvalidRequestFormat", "the register body must be a JSON object")
        if "configurationKeys" in request:
            raise ApiError(403, "InvalidRequestFormat", "configurationKeys is no longer supported")
        events = request.get("events", [])
        if not isinstance(events, list) or not all(isinstance(item, str) for item in events):
            raise ApiError(403, "InvalidRequestFormat", "events must be a list of event type names")
        unknown = sorted(set(events) - EVENT_TYPES)
        if unknown:
            raise ApiError(403, "Extension.InvalidEventType", f"unknown event type(s) {unknown}; use INVOKE, SHUTDOWN")
        internal = name not in self.launched
        if internal and "SHUTDOWN" in events:
            raise ApiError(403, "Extension.InvalidEventType",
                           f"{name!r} is not an executable in /opt/extensions, so it registers as an internal "
                           "extension, and internal extensions cannot subscribe to SHUTDOWN")
        ext = Extension(id=str(uuid.uuid4()), name=name, events=frozenset(events), internal=internal,
                        child=self.launched.get(name))
        self.extensions[ext.id] = ext
        self.by_name[name] = ext
        self._notify()
        answer = {"functionName": self.config.function_name, "functionVersion": self.config.version,
                  "handler": self.config.handler}
        if accept_feature and "accountId" in [part.strip() for part in accept_feature.split(",")]:
            answer["accountId"] = self.config.account_id
        return ext.id, answer

    async def extension_next(self, identifier: str | None) -> Any:
        ext = self._extension(identifier)
        if ext.errored:
            raise ApiError(403, "Extension.InvalidExtensionState", f"{ext.name} reported an {ext.errored} error")
        if ext.poll is not None and not ext.poll.done():
            raise ApiError(403, "Extension.InvalidExtensionState", f"{ext.name} is already waiting on event/next")
        ext.ready = True
        invoke = self.current
        if invoke is not None and ext.id in invoke.pending_extensions:
            invoke.pending_extensions.discard(ext.id)
            if not invoke.pending_extensions:
                invoke.extensions_done_at = self.loop.time()
        self._notify()
        # While the environment stops, an extension that will still hear SHUTDOWN waits for it on this call,
        # as on Lambda; only one with nothing more coming gets the closing answer at once.
        if self.stopping and not ext.queue and (self.shutdown_delivered or "SHUTDOWN" not in ext.events):
            return GONE
        if ext.queue:
            return ext.queue.popleft()
        poll: asyncio.Future[Any] = self.loop.create_future()
        ext.poll = poll
        return await poll

    def extension_error(self, identifier: str | None, kind: str, error_type: str | None, body: bytes) -> None:
        ext = self._extension(identifier)
        if not error_type:
            raise ApiError(403, "Extension.MissingHeader", "missing Lambda-Extension-Function-Error-Type header")
        if kind == "init" and self.phase != "init":
            raise ApiError(403, "Extension.InvalidExtensionState", "/extension/init/error is only accepted during init")
        ext.errored = kind
        label = "Extension.InitError" if kind == "init" else "Extension.ExitError"
        detail = body.decode("utf-8", errors="replace").strip()
        message = f"extension {ext.name} reported {error_type}" + (f": {detail}" if detail else "")
        if not self.stopping:
            self.fail(Failure("error", label, message, "failure"))

    def subscribe(self, identifier: str | None, body: bytes, legacy: bool) -> None:
        ext = self._extension(identifier)
        if not self.subscriptions_open or self.stopping:
            api = "Logs" if legacy else "Telemetry"
            raise ApiError(403, f"{api}.SubscriptionClosed", f"{api} API subscriptions are accepted during init only")
        subscription = self.platform.hub.subscribe(ext.name, body, legacy)
        types = sorted(subscription.types)
        event = "platform.logsSubscription" if legacy else "platform.telemetrySubscription"
        self.platform.emit(event, {"name": ext.name, "state": "Subscribed", "types": types})

    # --- shutdown --------------------------------------------------------------------------------

    async def shutdown(self, reason: str) -> Shutdown:
        """Lambda's shutdown: the runtime first (SIGTERM or SIGKILL), then SHUTDOWN to the extensions that
        asked for it, each of which must exit by deadlineMs; stragglers and the rest are SIGKILLed."""
        self.stopping = True
        self.phase = "shutdown"
        self.thaw()
        self.registration_open = self.subscriptions_open = False
        if not self.fatal.done():
            self.fatal.set_result(Failure("failure", "Sandbox.Shutdown", "the environment is shutting down", reason))
        self._notify()
        externals = [ext for ext in self.extensions.values() if ext.child is not None]
        budget = 2.0 if self.launched else (0.5 if self.extensions else 0.3)
        started = self.loop.time()
        deadline_ms = int((time.time() + budget) * 1000)
        runtime = self.runtime
        if runtime is not None and runtime.alive:
            if reason == "spindown" and self.extensions:
                runtime.terminate()
                if not await runtime.wait(0.3):
                    runtime.kill()
            else:
                runtime.kill()
            await runtime.wait(2.0)
        if runtime is not None:
            runtime.kill()  # whatever the function left running in its process group
        self._release(self.runtime_poll)
        self.runtime_poll = None
        # what the extensions are owed (the last platform.report, say) goes out before they hear SHUTDOWN
        await self.platform.hub.drain_all(timeout=min(0.5, budget / 4))
        sent: list[str] = []
        shutdown_event = json.dumps({"eventType": "SHUTDOWN", "shutdownReason": reason,
                                     "deadlineMs": deadline_ms}).encode()
        for ext in sorted(externals, key=lambda ext: ext.name):
            assert ext.child is not None
            if ext.child.alive and "SHUTDOWN" in ext.events and ext.errored is None:
                ext.deliver(shutdown_event)
                sent.append(ext.name)
            else:
                ext.child.kill()
        self.shutdown_delivered = True
        for name, child in self.launched.items():
            if name not in self.by_name:  # launched but never registered
                child.kill()
        remaining = budget - (self.loop.time() - started)
        if sent:
            await asyncio.wait([asyncio.ensure_future(self.launched[name].wait(remaining)) for name in sent])
        for child in self.launched.values():
            child.kill()
        await asyncio.gather(*(child.wait(2.0) for child in self.children()))
        for ext in self.extensions.values():
            self._release(ext.poll)
            ext.poll = None
        for child in self.children():
            child.close()
        self.freezer.close()
        await self.platform.hub.close_all(timeout=0.5)
        return Shutdown(reason=reason, extensions=tuple(sent), deadline_ms=deadline_ms, time=time.time())

    @staticmethod
    def _release(poll: asyncio.Future[Any] | None) -> None:
        if poll is not None and not poll.done():
            poll.set_result(GONE)


_RUNTIME_KEY, _EXTENSION_KEY = "runtime", "extension-"  # an extension may be named "runtime"


def _peak_rss_kb(pid: int) -> int:
    try:  # raw reads: this runs after every invoke
        descriptor = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        try:
            status = os.read(descriptor, 8192)
        finally:
            os.close(descriptor)
        start = status.index(b"VmHWM:") + 6
        return int(status[start : status.index(b"kB", start)])
    except (OSError, ValueError):
        return 0


def _error_body(body: bytes, error_type: str) -> bytes:
    """The runtime's error JSON as posted; anything else is wrapped so the caller still gets JSON."""
    try:
        if isinstance(json.loads(body), dict):
            return body
    except ValueError:
        pass
    return json.dumps({"errorMessage": body.decode("utf-8", errors="replace"), "errorType": error_type}).encode()


def _iso(epoch: float) -> str:
    return iso_time(epoch)


def _iso_now() -> str:
    return _iso(time.time())


def _report_line(report: Report, with_extensions: bool, failed: bool) -> str:
    parts = [
        f"REPORT RequestId: {report.request_id}",
        f"Duration: {report.duration_ms:.2f} ms",
        f"Billed Duration: {report.billed_duration_ms} ms",
        f"Memory Size: {report.memory_size_mb} MB",
        f"Max Memory Used: {report.max_memory_used_mb} MB",
    ]
    if report.init_duration_ms is not None:
        parts.append(f"Init Duration: {report.init_duration_ms:.2f} ms")
    if with_extensions and report.post_runtime_extensions_ms is not None:
        parts.append(f"Post-Runtime Extension Duration: {report.post_runtime_extensions_ms:.2f} ms")
    if failed:  # as Lambda: a handler's own error shows in the log, not as a REPORT status
        parts.append(f"Status: {report.status}")
        if report.error_type:
            parts.append(f"Error Type: {report.error_type}")
    return "\t".join(parts)
