"""The sampling decision: a fast path for the default ``parentbased_always_on``, the SDK's samplers otherwise.

The SDK (about 65 ms to import here) is loaded only when ``OTEL_TRACES_SAMPLER`` names another sampler;
a custom name is looked up in the ``opentelemetry_traces_sampler`` entry points, as the SDK does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracer import config
from tracer._safe import warn_once

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.sampling import Sampler

DEFAULT = "parentbased_always_on"
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


def sampler_from_env() -> Sampler | None:
    """The configured SDK sampler, or None for the built-in fast path (``parentbased_always_on``)."""
    name = config.read_str("OTEL_TRACES_SAMPLER", DEFAULT).lower()
    if name == DEFAULT:
        return None
    try:
        return _load(name)
    except Exception as error:  # a missing SDK or a broken plug-in: trace with the default
        warn_once(
            "sampler", "afterglow: cannot load OTEL_TRACES_SAMPLER=%r (%s); using %s", name, error, DEFAULT
        )
        return None


def _load(name: str) -> Sampler | None:
    from opentelemetry.sdk.trace import sampling

    fixed: dict[str, Any] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "parentbased_always_off": sampling.DEFAULT_OFF,
    }
    if name in fixed:
        return fixed[name]  # type: ignore[no-any-return]
    argument = config.raw("OTEL_TRACES_SAMPLER_ARG")
    if name in _RATIO_SAMPLERS:
        rate = _rate(argument)
        if name == "traceidratio":
            return sampling.TraceIdRatioBased(rate)
        return sampling.ParentBasedTraceIdRatio(rate)
    from importlib.metadata import entry_points

    found = list(entry_points(group="opentelemetry_traces_sampler", name=name))
    if not found:
        warn_once("sampler", "afterglow: unknown OTEL_TRACES_SAMPLER=%r; using %s", name, DEFAULT)
        return None
    factory = found[0].load()
    sampler = factory(argument)
    if not isinstance(sampler, sampling.Sampler):
        warn_once("sampler", "afterglow: OTEL_TRACES_SAMPLER=%r did not give a Sampler; using %s", name, DEFAULT)
        return None
    return sampler


def _rate(argument: str | None) -> float:
    if argument is None:
        return 1.0
    try:
        rate = float(argument)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        warn_once("sampler_arg", "afterglow: OTEL_TRACES_SAMPLER_ARG=%r is not a ratio in [0, 1]; using 1.0", argument)
        return 1.0
    return rate
