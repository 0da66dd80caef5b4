#!/bin/sh
# The managed Python runtime's entry point, as in Lambda's python3.x images: honour AWS_LAMBDA_EXEC_WRAPPER,
# then start bootstrap.py. The sandbox fills in the two paths when it creates the execution environment.
export AWS_EXECUTION_ENV="${AWS_EXECUTION_ENV:-@EXECUTION_ENV@}"
if [ -n "$AWS_LAMBDA_EXEC_WRAPPER" ]; then
    wrapper="$AWS_LAMBDA_EXEC_WRAPPER"
    if [ ! -e "$wrapper" ]; then
        echo "$wrapper: does not exist"
        exit 127
    fi
    if [ ! -f "$wrapper" ] || [ ! -x "$wrapper" ]; then
        echo "$wrapper: is not an executable"
        exit 126
    fi
    exec "$wrapper" @PYTHON@ @BOOTSTRAP_PY@
fi
exec @PYTHON@ @BOOTSTRAP_PY@
