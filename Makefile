# adaptermix — the README's two commands are `make demo` and `make test`; both set up everything first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Data pack location: configuration, not code. Override with `make demo ADAPTERMIX_DATA=/path/to/data`.
# Unset, it is ../shared/data when a data pack is there; else unset, and the tool uses the small data
# pack embedded in the package (src/adaptermix/resources/datapack).
ifeq ($(origin ADAPTERMIX_DATA),undefined)
ifneq ($(wildcard ../shared/data/*/dataset.json),)
ADAPTERMIX_DATA := $(abspath ../shared/data)
endif
endif
ifdef ADAPTERMIX_DATA
export ADAPTERMIX_DATA
endif
export TOKENIZERS_PARALLELISM = false

.PHONY: setup demo test test-fast test-reference lint typecheck bench clean

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

# The suite without the `slow` (end-to-end on the packaged MiniLM) and `ray` (local Ray instance) markers.
test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow and not ray"

# Agreement with the reference implementations (mergekit, fusion-bench) in their own environment,
# .venv-ref, made by scripts/reference-env.sh (see docs/reference-agreement.md).
REF_VENV ?= .venv-ref
$(REF_VENV)/.installed: pyproject.toml scripts/reference-env.sh
	VENV=$(REF_VENV) PYTHON=$(PYTHON) bash scripts/reference-env.sh
	touch $@

test-reference: $(REF_VENV)/.installed
	$(REF_VENV)/bin/python -m pytest tests/reference -m reference

lint: setup
	$(BIN)/ruff check src tests bench

# mypy over the whole package; the configuration (strict modules, untyped third-party packages) is in
# pyproject.toml under [tool.mypy].
typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf runs .pytest_cache
