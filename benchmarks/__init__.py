"""afterglow's benchmarks against the field, side by side in one run: ``python -m benchmarks [--quick]``.

Each configuration (no tracing, afterglow three ways, the standard OpenTelemetry setup from PyPI, the X-Ray
SDK) runs the same function in the local Lambda sandbox with awslambdaric, in every scenario, taking turns
so that noise hits all alike; the results are differences and ratios measured within the run.
"""
