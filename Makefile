# The README's two set-up commands: `make demo` and `make test`.
# Each creates its own virtual environment (.venv) and installs what it needs.

PYTHON ?= python3
VENV ?= .venv
DEMO_OUTPUT ?= demo_output
DEMO_SIZE ?= 4096
DEMO_NREADS ?= 10
BIN := $(VENV)/bin

.PHONY: demo test test-fast test-c test-python chromium lint docs clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the packaging or the C sources change.
$(VENV)/.installed: $(BIN)/activate pyproject.toml setup.py $(wildcard iris_readout/src/*.c iris_readout/src/*.h iris_readout/src/*.inc iris_readout/include/*.h liger_iris_pipeline/readout/_build_ffi.py)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# spectral-cube and specutils, for the tests that open our products with them, in a folder of their
# own (see tests/interop.py): in the pipeline's environment they would slow every process.
$(VENV)/interop/.installed: $(VENV)/.installed tests/interop_requirements.txt
	rm -rf $(VENV)/interop
	$(BIN)/python -m pip install --quiet --no-deps --target $(VENV)/interop -r tests/interop_requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(BIN)/liger-iris-demo --output $(DEMO_OUTPUT) --size $(DEMO_SIZE) --nreads $(DEMO_NREADS)

test: test-c test-python

test-c: $(VENV)/.installed
	@if ! pkg-config --exists cfitsio 2>/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing cfitsio for the iris_readout command-line tool"; \
		apt-get update -qq && apt-get install -y -qq libcfitsio-dev pkg-config >/dev/null; \
	fi
	$(MAKE) -C iris_readout test PYTHON=$(abspath $(BIN))/python

# The night report's test renders it in a real headless browser.
chromium:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the night report's browser test"; \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	fi

PYTEST = cd tests && ../$(BIN)/python -m pytest -q -p no:cacheprovider --rootdir=.. -c ../pyproject.toml

# Every test, spread over the cores like test-fast (one test file per worker).
test-python: $(VENV)/.installed $(VENV)/interop/.installed chromium
	$(PYTEST) -n auto --dist loadfile .

# The edit-test loop (under two minutes): every test but the end-to-end and documentation runs,
# spread over the cores (one test file per worker: module fixtures are built once).
test-fast: test-c $(VENV)/interop/.installed chromium
	$(PYTEST) -m "not slow" -n auto --dist loadfile .

lint: $(VENV)/.installed
	$(BIN)/ruff check .

docs: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet ".[docs]"
	$(BIN)/sphinx-build -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(DEMO_OUTPUT) build *.egg-info docs/_build
	$(MAKE) -C iris_readout clean
