"""The managed Python runtime's bootstrap.py: set up ``sys.path`` as Lambda does, then run awslambdaric.

The sandbox copies this file into each execution environment's runtime directory and fills in OPT_DIR
(Lambda's ``/opt``). The handler is read from ``$_HANDLER`` here, after any exec wrapper has run,
because wrappers may change it.
"""

import os
import site
import sys

OPT_DIR = "@OPT_DIR@"


def set_default_sys_path() -> None:
    python_dir = os.path.join(OPT_DIR, "python")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    layer_site_packages = os.path.join(python_dir, "lib", version, "site-packages")
    if "PYTHONPATH" not in os.environ:
        # Lambda's order: task root, then the layers' site-packages, then the layers' python/ folder.
        sys.path.insert(0, python_dir)
        sys.path.insert(0, layer_site_packages)
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    if "PYTHONPATH" not in os.environ and os.path.isdir(layer_site_packages):
        site.addsitedir(layer_site_packages)  # already on the path: only its .pth files are processed


def set_default_pythonpath() -> None:
    if "PYTHONPATH" not in os.environ:
        os.environ["PYTHONPATH"] = os.environ.get("LAMBDA_RUNTIME_DIR", "")


def main() -> None:
    set_default_sys_path()
    set_default_pythonpath()
    handler = os.environ.get("_HANDLER", "")

    from awslambdaric import __main__ as awslambdaric_main

    awslambdaric_main.main([sys.argv[0], handler])


if __name__ == "__main__":
    main()
