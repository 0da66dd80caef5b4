"""An invoke request on its way through the platform, and the answer its caller gets."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field

_ERROR_TYPE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+\Z")


@dataclass(frozen=True)
class Reply:
    body: bytes
    content_type: str
    function_error: str | None = None  # "Unhandled" for handler, init, timeout and crash errors


@dataclass
class Job:
    event: bytes
    trace_id: str
    client_context: str | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received: float = field(default_factory=time.time)
    reply: asyncio.Future[Reply] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    tail: bool = False  # the caller asked for the log (X-Amz-Log-Type: Tail): answer once the phase is over
    log: list[str] = field(default_factory=list)  # the invocation's log lines, kept when ``tail``
    finished: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def answer(self, reply: Reply) -> None:
        """The caller's answer; the first one wins (a late runtime response after a timeout is ignored)."""
        if not self.reply.done():
            self.reply.set_result(reply)

    @property
    def answered(self) -> bool:
        return self.reply.done()

    def finish(self) -> None:
        """The invoke phase is over, extensions included."""
        if not self.finished.done():
            self.finished.set_result(None)

    def log_tail(self, limit: int = 4096) -> str:
        """Base64 of the last ``limit`` bytes of the invocation's log, as Lambda's X-Amz-Log-Result."""
        import base64

        return base64.b64encode("\n".join(self.log).encode()[-limit:] + b"\n").decode()


def new_trace_header() -> str:
    """What Lambda passes when the caller sent no X-Amzn-Trace-Id (PassThrough tracing, not sampled)."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def normalise_error_type(header: str | None) -> str:
    """RAPID keeps ``Runtime.X`` / ``Function.X`` error types and folds anything else into ``*.Unknown``."""
    if header and _ERROR_TYPE.match(header):
        return header
    if header and header.startswith("Function."):
        return "Function.Unknown"
    return "Runtime.Unknown"
