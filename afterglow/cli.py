"""The ``afterglow`` command: ``sandbox``, ``run``, ``layer build`` and ``extension``.

Each subcommand imports its implementation only when chosen, so ``afterglow extension`` (started by
the layer's launcher on every cold start) pays for nothing else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _add_function_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task-root", required=True, help="directory holding the function's code")
    parser.add_argument("--handler", required=True, help="MODULE.FUNC, as in Lambda's handler setting")
    parser.add_argument("--layer", action="append", default=[], metavar="ZIP_OR_DIR",
                        help="a layer to unpack into /opt, in order (repeatable)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="function timeout (default 3)")
    parser.add_argument("--memory", type=int, default=128, metavar="MB", help="memory size in MB (default 128)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment variable for the function and extensions (repeatable)")
    parser.add_argument("--function-name", default=None, help="function name (default: the task root's name)")


def build_parser() -> argparse.ArgumentParser:
    from tracer import __version__

    parser = argparse.ArgumentParser(prog="afterglow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sandbox = commands.add_parser("sandbox", help="serve a function in the local Lambda sandbox until interrupted")
    _add_function_options(sandbox)
    sandbox.add_argument("--port", type=int, default=9000, help="port of the invoke endpoint (default 9000)")

    run = commands.add_parser("run", help="invoke a function in the local Lambda sandbox, then shut down")
    _add_function_options(run)
    run.add_argument("--event", default=None, metavar="FILE|-", help="event JSON file, or - for stdin (default {})")
    run.add_argument("--repeat", type=int, default=1, metavar="N", help="invoke N times (default 1)")

    layer = commands.add_parser("layer", help="build the afterglow Lambda layer")
    layer_commands = layer.add_subparsers(dest="layer_command", required=True, metavar="ACTION")
    build = layer_commands.add_parser("build", help="write the layer zip")
    build.add_argument("--output", default="afterglow-layer.zip", metavar="FILE")
    build.add_argument("--python", default=None, metavar="X.Y", help="target runtime (default: this interpreter)")
    build.add_argument("--arch", default=None, choices=("x86_64", "arm64"), help="target architecture")
    build.add_argument("--with-grpc", action="store_true", help="include the OTLP/gRPC exporter")

    commands.add_parser("extension", help="run the afterglow Lambda extension (started by the layer's launcher)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "extension":
        from extension.main import main as extension_main

        return extension_main()
    if args.command == "layer":
        from afterglow.layer import build_command

        return build_command(args)
    from afterglow.extras import MissingExtra, require

    try:
        require("sandbox", f"afterglow {args.command}")
    except MissingExtra as error:
        print(error, file=sys.stderr)
        return 1
    from sandbox.cli import run_command, sandbox_command

    return sandbox_command(args) if args.command == "sandbox" else run_command(args)


if __name__ == "__main__":
    sys.exit(main())
