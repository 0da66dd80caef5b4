"""Per-call overhead of a patched botocore call beyond the span: ``python -m benchmarks.instrumentation_overhead``.

Three measurements taken in turns, in one process, so machine noise hits them alike:

- ``bare``: the botocore call with instrumentation off;
- ``traced``: the same call, patched (a CLIENT span, per-service attributes, trace context injected);
- ``span``: the span alone, as the patch would make it (same name, kind and attribute count), nothing else.

``traced - bare - span`` is what the instrumentation adds beyond the span (wrapper, context, attribute and
injection work). Goal: under 15 us on this machine. botocore answers from its own ``before-send`` event,
so every step of a real call (validation, serialisation, signing, parsing) runs except the socket, whose
jitter would swamp microseconds. Printed as medians of per-round means, with each provider: afterglow's
lean one (spans discarded by the sink) and the OpenTelemetry SDK's (no processor).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

GOAL_US = 15.0


class _DiscardingSink:
    def on_end(self, span: Any) -> None:
        pass

    def poke(self) -> None:
        pass


def _canned_response(body: bytes) -> Callable[..., Any]:
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def __init__(self) -> None:
            self._body = body

        def stream(self, **_: Any) -> Any:
            yield self._body

    def answer(request: Any, **_: Any) -> Any:
        return AWSResponse(request.url, 200, {"x-amzn-requestid": "bench-request"}, _Raw())

    return answer


def _clients() -> dict[str, Callable[[], Any]]:
    """One zero-network call per service; botocore does everything but the HTTP round trip."""
    import boto3

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    session = boto3.session.Session(region_name="eu-west-1")

    sqs = session.client("sqs", endpoint_url="http://127.0.0.1:1")
    body = "hello"
    sqs_answer = {"MessageId": "m-1", "MD5OfMessageBody": hashlib.md5(body.encode()).hexdigest()}
    sqs.meta.events.register("before-send.sqs.SendMessage", _canned_response(json.dumps(sqs_answer).encode()))
    queue = "http://127.0.0.1:1/123456789012/bench"

    dynamodb = session.client("dynamodb", endpoint_url="http://127.0.0.1:1")
    item = {"Item": {"id": {"S": "1"}, "n": {"N": "3"}}}
    dynamodb.meta.events.register("before-send.dynamodb.GetItem", _canned_response(json.dumps(item).encode()))

    return {
        "SQS.SendMessage": lambda: sqs.send_message(QueueUrl=queue, MessageBody=body),
        "DynamoDB.GetItem": lambda: dynamodb.get_item(TableName="bench", Key={"id": {"S": "1"}}),
    }


def _span_alone(tracer: Any, name: str) -> Callable[[], None]:
    from opentelemetry.trace import SpanKind

    attributes = {
        "rpc.system": "aws-api",
        "rpc.service": name.split(".")[0],
        "rpc.method": name.split(".")[1],
        "cloud.region": "eu-west-1",
        "aws.sqs.queue.url": "http://127.0.0.1:1/123456789012/bench",
        "messaging.destination.name": "bench",
    }
    response = {"aws.request_id": "bench-request", "http.response.status_code": 200}

    def make() -> None:
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        span.set_attributes(response)
        span.end()

    return make


def _per_call_us(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - start) / calls / 1000


def _install_provider(kind: str) -> Any:
    from opentelemetry import trace

    if kind == "afterglow":
        from tracer._provider import LeanTracerProvider

        provider: Any = LeanTracerProvider(_DiscardingSink())
    else:
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider()
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE._done = False
    trace.set_tracer_provider(provider)
    return trace.get_tracer("bench")


def measure(provider_kind: str, rounds: int, calls: int) -> list[dict[str, Any]]:
    """Rounds of (bare, traced, span) in shuffled order; paired per-round differences cancel slow drift."""
    import instrumentation

    tracer = _install_provider(provider_kind)
    instrumentation.uninstrument()
    instrumentation.instrument(["botocore"])
    clients = _clients()  # imports botocore: the import hook patches it now
    from instrumentation import _registry

    botocore_patch: Any = _registry.instrumentor("botocore")
    order = random.Random(7)
    rows = []
    for name, call in clients.items():
        span_alone = _span_alone(tracer, name)

        def bare(call: Callable[[], Any] = call) -> float:
            botocore_patch.uninstrument()  # truly unpatched: the original method is back on the class
            return _per_call_us(call, calls)

        def traced(call: Callable[[], Any] = call) -> float:
            botocore_patch.instrument()
            return _per_call_us(call, calls)

        def span(span_alone: Callable[[], None] = span_alone) -> float:
            return _per_call_us(span_alone, calls)

        kinds = {"bare": bare, "traced": traced, "span": span}
        for measure_once in kinds.values():  # warm-up: models, caches, first wrappers
            measure_once()
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(rounds):
            turn = list(kinds)
            order.shuffle(turn)
            for kind in turn:
                samples[kind].append(kinds[kind]())
        beyond = [t - b - s for t, b, s in zip(samples["traced"], samples["bare"], samples["span"], strict=True)]
        rows.append(
            {
                "provider": provider_kind,
                "call": name,
                "bare_us": statistics.median(samples["bare"]),
                "traced_us": statistics.median(samples["traced"]),
                "span_us": statistics.median(samples["span"]),
                "overhead_us": statistics.median(beyond),
                "overhead_iqr_us": _iqr(beyond),
            }
        )
    botocore_patch.instrument()
    instrumentation.uninstrument()
    return rows


def wrapper_alone(provider_kind: str, calls: int) -> dict[str, Any]:
    """Our wrapper around a stand-in client whose call returns at once: our code, span included, nothing else."""
    import types

    from instrumentation.botocore import BotocoreInstrumentor

    tracer = _install_provider(provider_kind)

    class _ServiceModel:
        service_id = "SQS"

    class _Meta:
        service_model = _ServiceModel()
        region_name = "eu-west-1"

    class _Client:
        meta = _Meta()

        def _make_api_call(self, operation: str, params: Any) -> Any:
            return {"MessageId": "m-1", "ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": 200}}

    patch = BotocoreInstrumentor()
    patch.enabled = True
    patch._patch(types.SimpleNamespace(BaseClient=_Client))
    client = _Client()
    params = {"QueueUrl": "http://127.0.0.1:1/123456789012/bench", "MessageBody": "hello"}
    traced = min(_per_call_us(lambda: client._make_api_call("SendMessage", params), calls) for _ in range(7))
    patch.uninstrument()
    bare = min(_per_call_us(lambda: client._make_api_call("SendMessage", params), calls) for _ in range(7))
    span = min(_per_call_us(_span_alone(tracer, "SQS.SendMessage"), calls) for _ in range(7))
    return {"provider": provider_kind, "traced_us": traced - bare, "span_us": span, "overhead_us": traced - bare - span}


def _iqr(values: list[float]) -> float:
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[2] - quartiles[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=120, help="rounds of turns (default 120)")
    parser.add_argument("--calls", type=int, default=20, help="calls per turn (default 20)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON as well")
    args = parser.parse_args(argv)
    if args.rounds < 4 or args.calls < 1:
        parser.error("--rounds must be at least 4 and --calls at least 1")

    rows = measure("afterglow", args.rounds, args.calls) + measure("otel-sdk", args.rounds, args.calls)
    print(f"botocore call, zero network: median of {args.rounds} shuffled rounds x {args.calls} calls, us per call")
    header = ("provider", "call", "bare", "traced", "span", "beyond span", "IQR", "goal")
    print("{:<10} {:<18} {:>7} {:>7} {:>6} {:>12} {:>6} {:>5}".format(*header))
    for row in rows:
        verdict = "ok" if row["overhead_us"] < GOAL_US else "over"
        print(
            f"{row['provider']:<10} {row['call']:<18} {row['bare_us']:7.1f} {row['traced_us']:7.1f} "
            f"{row['span_us']:6.1f} {row['overhead_us']:12.1f} {row['overhead_iqr_us']:6.1f} {verdict:>5}"
        )
    print(f"beyond span = traced - bare - span, paired per round; goal < {GOAL_US:.0f} us")
    print()
    print("the wrapper alone (stand-in client that returns at once; best of 7 x 20000 calls, us per call)")
    alone = [wrapper_alone("afterglow", 20000), wrapper_alone("otel-sdk", 20000)]
    for row in alone:
        print(f"{row['provider']:<10} wrapper+span {row['traced_us']:6.1f}   span {row['span_us']:6.1f}   "
              f"beyond span {row['overhead_us']:6.1f}")  # fmt: skip
    if args.json:
        print(json.dumps({"calls": rows, "wrapper_alone": alone}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
