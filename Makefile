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

setup: $(BIN)/.installed

demo: setup
	$(BIN)/adaptermix reproduce configs/demo.yaml

test: setup
	$(BIN)/python -m pytest tests

lint: setup
	$(BIN)/ruff check src tests bench

clean:
	rm -rf runs .pytest_cache
