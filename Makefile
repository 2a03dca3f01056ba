# Fresh machine: `make demo` runs the main job, `make test` the suite. Both build .venv first.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-base lint clean
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[all,test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/densitydiff demo

test: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

# The base install (no extras, as `pip install densitydiff`) runs the main commands.
.venv-base/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-base
	.venv-base/bin/python -m pip install -q "$(TORCH)"
	.venv-base/bin/python -m pip install -q -e .
	touch $@

test-base: .venv-base/.installed
	bash tests/base_install.sh .venv-base/bin/python

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .venv-base demo_out .pytest_cache
