# Perdure's developer entry points. Needs only Python >= 3.11 (with venv and pip).
#
#   make demo    the crash-recovery demo (python -m demo), in a .venv created if missing
#   make test    lint (ruff), type-check (mypy), import layers (import-linter) and the test
#                suite (pytest); fails if any fails
#   make bench   the benchmarks in bench/
#   make browser Chromium for the dashboard's browser tests (the Debian package), if missing

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test bench venv clean browser

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

# The dashboard's browser tests drive the system's Chromium (Playwright never downloads a
# browser here). Installed when missing and apt-get can; otherwise those tests skip, saying why.
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	  && export DEBIAN_FRONTEND=noninteractive && { apt-get install -y -q chromium \
	  || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null; } \
	  || echo "make browser: could not install chromium; the dashboard's browser tests will skip"

test: $(VENV)/.installed-dev browser
	$(PY) -m ruff check perdure tests demo bench chaos examples
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) -m bench

# Remove the demo's data (the venv stays).
clean:
	rm -rf demo-data
