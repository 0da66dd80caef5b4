"""The ``afterglow`` command: ``sandbox``, ``run``, ``layer build`` (and ``extension``, which the help leaves out).

Each subcommand imports its implementation only when chosen, so ``afterglow extension`` pays for nothing else.
Help texts are plain text (no markup): they are read in a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DESCRIPTION = """\
OpenTelemetry tracing for Python AWS Lambda functions: build the layer that
traces your function, and run functions locally in a faithful Lambda sandbox
(the real runtime, its extensions, their telemetry)."""

EXAMPLES = """\
examples:
  afterglow layer build --output build/afterglow-layer.zip
  afterglow run --task-root examples/hello --handler app.handler \\
      --event examples/hello/event.json --layer build/afterglow-layer.zip
  afterglow sandbox --task-root examples/hello --handler app.handler \\
      --layer build/afterglow-layer.zip

'afterglow COMMAND --help' explains each command."""

RUN_DESCRIPTION = """\
Invoke a function in the local Lambda sandbox, print what CloudWatch would
show (START, the function's and the extensions' output, END, REPORT), a COST
line after each REPORT (every process's CPU, the billed time) and each response,
then shut the environment down as Lambda does. The exit code is 1
when an invocation failed, 2 for a usage error."""

RUN_EXAMPLE = """\
example:
  afterglow run --task-root examples/hello --handler app.handler \\
      --event examples/hello/event.json --layer build/afterglow-layer.zip \\
      --repeat 3"""

SANDBOX_DESCRIPTION = """\
Serve a function in the local Lambda sandbox at the invoke endpoint of AWS's
Runtime Interface Emulator until Ctrl-C (or SIGTERM), printing what CloudWatch
would show. Init happens on the first invoke."""

SANDBOX_EXAMPLE = """\
example:
  afterglow sandbox --task-root examples/hello --handler app.handler \\
      --layer build/afterglow-layer.zip
  # in another terminal:
  curl -XPOST -d '{"name": "you"}' \\
      http://127.0.0.1:9000/2015-03-31/functions/function/invocations"""

LAYER_DESCRIPTION = """\
Build the afterglow Lambda layer: the tracer, the extension and the zero-code
wrapper."""

LAYER_EXAMPLE = """\
example:
  afterglow layer build --python 3.12 --arch arm64 --output afterglow-layer.zip"""

BUILD_DESCRIPTION = """\
Write the layer zip for a Lambda runtime and architecture. Its dependencies
come from PyPI for that target (wheels only), so a build on x86_64 for arm64
gets arm64 binaries. The same inputs give the same zip. The size of each
package is printed."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written (line breaks kept); a wider column for the options."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _add_function_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task-root", required=True, metavar="DIR",
                        help="directory holding the function's code (Lambda's /var/task)")
    parser.add_argument("--handler", required=True, metavar="MODULE.FUNCTION",
                        help="the handler, as in Lambda's handler setting (e.g. app.handler)")
    parser.add_argument("--layer", action="append", default=[], metavar="ZIP_OR_DIR",
                        help="a layer to unpack into /opt, in order; repeatable (default: none)")
    own = f"python{sys.version_info.major}.{sys.version_info.minor}"
    parser.add_argument("--runtime", default=None, metavar="python3.X",
                        help="Lambda's runtime setting: the Python that runs the function, python3.10 to "
                             "python3.14, if installed here (on PATH or in pyenv); awslambdaric is installed for "
                             f"it once (default: this interpreter's, {own})")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                        help="function timeout (default: 3)")
    parser.add_argument("--memory", type=int, default=128, metavar="MB", help="memory size (default: 128)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment variable for the function and its extensions; repeatable")
    parser.add_argument("--function-name", default=None, metavar="NAME",
                        help="function name (default: the task root's directory name)")
    parser.add_argument("--no-freeze", dest="freeze", action="store_false",
                        help="let the processes run between invocations (default: frozen, as Lambda does)")
    parser.add_argument("--cpu-limit", action="store_true",
                        help="give the environment Lambda's CPU share for --memory, 1,769 MB being one vCPU "
                             "(default: the machine's)")


def build_parser() -> argparse.ArgumentParser:
    from afterglow.layer import SUPPORTED_PYTHONS, this_machine
    from tracer import __version__

    parser = argparse.ArgumentParser(prog="afterglow", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    run = commands.add_parser("run", help="invoke a function in the local Lambda sandbox, then shut down",
                              description=RUN_DESCRIPTION, epilog=RUN_EXAMPLE, formatter_class=_HelpFormatter)
    _add_function_options(run)
    run.add_argument("--event", default=None, metavar="FILE",
                     help="the event: a JSON file, or - for standard input (default: {})")
    run.add_argument("--repeat", type=int, default=1, metavar="N", help="invoke N times (default: 1)")
    run.add_argument("--tail", action="store_true",
                     help="invoke as a caller asking for the log (X-Amz-Log-Type: Tail): no early return")

    sandbox = commands.add_parser("sandbox", help="serve a function in the local Lambda sandbox until Ctrl-C",
                                  description=SANDBOX_DESCRIPTION, epilog=SANDBOX_EXAMPLE,
                                  formatter_class=_HelpFormatter)
    _add_function_options(sandbox)
    sandbox.add_argument("--port", type=int, default=9000, help="port of the invoke endpoint (default: 9000)")

    layer = commands.add_parser("layer", help="build the afterglow Lambda layer", description=LAYER_DESCRIPTION,
                                epilog=LAYER_EXAMPLE, formatter_class=_HelpFormatter)
    layer_commands = layer.add_subparsers(dest="layer_command", required=True, metavar="ACTION", title="actions")
    here = this_machine()
    build = layer_commands.add_parser("build", help="write the layer zip", description=BUILD_DESCRIPTION,
                                      epilog=LAYER_EXAMPLE, formatter_class=_HelpFormatter)
    build.add_argument("--output", default="afterglow-layer.zip", metavar="FILE",
                       help="where to write the zip (default: afterglow-layer.zip)")
    build.add_argument("--python", default=None, metavar="X.Y",
                       help=f"the target Lambda runtime's Python version, {SUPPORTED_PYTHONS[0]} to "
                            f"{SUPPORTED_PYTHONS[-1]} (default: this interpreter's, {here.python})")
    build.add_argument("--arch", default=None, choices=("x86_64", "arm64"),
                       help=f"the target architecture (default: this machine's, {here.arch})")
    build.add_argument("--with-grpc", action="store_true",
                       help="include what OTLP/gRPC needs: grpcio, opentelemetry-proto (default: HTTP only)")

    # The layer's launcher runs the extension; no help entry, so it stays out of the list of commands.
    commands.add_parser("extension", description="Run the afterglow Lambda extension (started inside Lambda).")
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
