# The two commands of the README:  make lab   and   make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: lab test unit notebooks bench clean-venv

# Create the virtual environment and install histolib (editable) with everything
# the notebooks and tests need. Re-runs only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

## JupyterLab on the series (built-in data, no download needed)
lab: $(VENV)/.installed
	cd notebooks && ../$(VENV)/bin/jupyter lab

## unit tests of histolib + every notebook executed by nbval, in quick mode
test: $(VENV)/.installed
	HISTOLIB_QUICK=1 $(PY) -m pytest

## unit tests only (no notebooks)
unit: $(VENV)/.installed
	HISTOLIB_QUICK=1 $(PY) -m pytest tests

## re-execute every notebook in place with its full teaching settings (commit the result)
notebooks: $(VENV)/.installed
	$(PY) .ci/execute_notebooks.py notebooks/*.ipynb

## speed and memory benchmarks (ratios measured side by side)
bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
