"""The two kinds of trouble the platform deals in: API answers and environment failures."""

from __future__ import annotations

import json


class ApiError(Exception):
    """A 4xx/5xx answer to a Runtime, Extensions or Telemetry API call; the sandbox carries on."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"errorType": self.error_type, "errorMessage": self.message}).encode()


class Failure(Exception):
    """The execution environment cannot go on: init or invoke fails and the environment is reset.

    ``status`` is what telemetry reports (``error``, ``failure``, ``timeout``); ``reason`` is the
    SHUTDOWN reason the extensions get (``failure``, ``timeout``, ``spindown``); ``body`` is what the
    caller receives when this failure is the invoke's answer (None: build Lambda's standard error).
    """

    def __init__(self, status: str, error_type: str, message: str, reason: str, body: bytes | None = None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason
        self.body = body

    def caller_body(self, request_id: str) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps({
            "errorType": self.error_type,
            "errorMessage": f"RequestId: {request_id} Error: {self.message}",
        }).encode()
