# adaptermix — the README's two commands are `make demo` and `make test`; both set up everything first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Data pack location: configuration, not code. Override with `make demo ADAPTERMIX_DATA=/path/to/data`.
ADAPTERMIX_DATA ?= $(abspath ../shared/data)
export ADAPTERMIX_DATA
export TOKENIZERS_PARALLELISM = false

.PHONY: setup demo test lint bench clean

$(BIN)/.installed: pyproject.toml scripts/bootstrap.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/bootstrap.sh
	touch $@

# The system packages are checked on every run (dpkg-query per package, ~0.1 s): one removed since the
# venv was made, or one a non-root set-up could not install, is installed (or its command printed) again.
setup: $(BIN)/.installed
	@bash scripts/bootstrap.sh --system-packages

demo: setup
	$(BIN)/adaptermix reproduce configs/demo.yaml

test: setup
	$(BIN)/python -m pytest tests

lint: setup
	$(BIN)/ruff check src tests bench

clean:
	rm -rf runs .pytest_cache
