# Every set-up step lives here, so a fresh machine needs only python3 and make.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench matrix

# One stamp per set of extras: the demo needs only the sandbox extra; the tests and benchmarks need the full
# set (test, bench), which includes the sandbox's, so its stamp stands for both. `make test` after `make demo`
# installs what the tests add; `make demo` after `make test` installs nothing.
$(BIN)/python:
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(BIN)/.installed-sandbox: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip uninstall --quiet --yes afterglow 2>/dev/null || true; rm -rf afterglow.egg-info  # the former name
	$(BIN)/pip install --quiet -e '.[sandbox]'
	touch $@

$(BIN)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip uninstall --quiet --yes afterglow 2>/dev/null || true; rm -rf afterglow.egg-info  # the former name
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@ $(BIN)/.installed-sandbox

## demo: build the layer, run the example function in the local sandbox, show its trace
demo: $(BIN)/.installed-sandbox
	$(BIN)/afterglow layer build --output build/afterglow-layer.zip
	$(BIN)/afterglow run --task-root examples/hello --handler app.handler --event examples/hello/event.json \
		--layer build/afterglow-layer.zip

## test: lint, type-check, check the import contracts (pyproject.toml, DESIGN.md's import table), then the whole suite
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

## matrix: unit and functional tests against the lowest and the newest allowed dependencies, on every Python
## installed (noxfile.py; one cell: .venv/bin/nox -s "tests-3.10(deps='floor')")
matrix: $(BIN)/.installed
	$(BIN)/nox

## bench: the side-by-side benchmarks (python -m benchmarks)
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks
