# Perdure's developer entry points. Needs only Python >= 3.11 (with venv and pip).
#
#   make demo    the crash-recovery demo (python -m demo), in a .venv created if missing
#   make test    lint (ruff), type-check (mypy), import layers (import-linter) and the test
#                suite (pytest); fails if any fails
#   make bench   the benchmarks in bench/

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test bench venv clean

# The venv is created once. Perdure is installed in editable mode, so code changes need no
# reinstall; the stamp files redo the install only when pyproject.toml changes.
$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev,postgres]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m demo

test: $(VENV)/.installed-dev
	$(PY) -m ruff check perdure tests demo bench chaos examples
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) -m bench

# Remove the demo's data (the venv stays).
clean:
	rm -rf demo-data
