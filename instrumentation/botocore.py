"""botocore: one CLIENT span per AWS API call (``BaseClient._make_api_call``), boto3 included.

The span suppresses the HTTP layers below it (botocore sends through urllib3 and http.client), so an AWS
call is one span. Messages sent through SQS, SNS, Lambda and EventBridge carry the span's context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from tracer._safe import swallowed

from . import _aws_services, _spans
from ._base import Instrumentor


class BotocoreInstrumentor(Instrumentor):
    name = "botocore"
    module = "botocore.client"
    supported = ((1, 31), (2,))

    def _patch(self, module: ModuleType) -> None:
        self._tracer = _spans.tracer("botocore")
        self._wrap(module.BaseClient, "_make_api_call", self._make_api_call)

    def _make_api_call(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _spans.suppressed():
            return wrapped(*args, **kwargs)
        # _make_api_call(operation_name, api_params)
        operation = args[0] if args else kwargs.get("operation_name")
        params = args[1] if len(args) > 1 else kwargs.get("api_params")
        if not isinstance(operation, str) or not isinstance(params, Mapping):
            return wrapped(*args, **kwargs)
        span = token = None
        try:
            meta = instance.meta
            service = str(meta.service_model.service_id)
            attributes: dict[str, Any] = {
                "rpc.system": "aws-api",
                "rpc.service": service,
                "rpc.method": operation,
                "cloud.region": meta.region_name,
            }
            describe = _aws_services.REQUEST_ATTRIBUTES.get(service)
            if describe is not None:
                attributes.update(describe(operation, params))
            span, token = _spans.start_client(self._tracer, f"{service}.{operation}", attributes)
            call_args, call_kwargs = args, kwargs
            injected = _aws_services.inject(service, operation, params)
            if injected is not None:
                if len(args) > 1:
                    call_args = (args[0], injected, *args[2:])
                else:
                    call_kwargs = {**kwargs, "api_params": injected}
        except Exception as error:
            _spans.abandon(span, token)
            swallowed("botocore instrumentation", error)
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*call_args, **call_kwargs)
        except BaseException as error:
            _spans.detach(token)
            self._failed(span, error)
            raise
        _spans.detach(token)
        try:
            span.set_attributes(_aws_services.response_attributes(service, operation, result))
            span.end()
        except Exception as error:
            swallowed("botocore response instrumentation", error)
        return result

    @staticmethod
    def _failed(span: Any, error: BaseException) -> None:
        error_type = None
        try:
            # ClientError and friends carry the service's answer: request id, status, error code.
            response = getattr(error, "response", None)
            if isinstance(response, Mapping):
                span.set_attributes(_aws_services.response_attributes("", "", response))
                code = response.get("Error", {}).get("Code")
                error_type = code if isinstance(code, str) and code else None
        except Exception as inner:
            swallowed("botocore error instrumentation", inner)
        _spans.fail(span, error, error_type)
