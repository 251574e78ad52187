# Two commands for a fresh machine: `make demo` and `make test`. Both bootstrap .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel of this pin installs from local disk on the project machines; set TORCH_PIN for another build.
TORCH_PIN ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cplir-installed

.PHONY: test test-fast lint demo study bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_PIN)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,data]"
	touch $(STAMP)

test: lint
	$(PY) -m pytest -q

# The inner loop: everything but the tests marked slow (DDP subprocesses, demo runs, published-size models).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check src tests bench

demo: $(STAMP)
	$(PY) -m cplir demo

# The evidence study of docs/evidence.md: five variants x two seeds on the embedded data, about 1.5 h on 2 cores;
# run it again to continue an interrupted study.
study: $(STAMP)
	$(PY) -m cplir study

bench: $(STAMP)
	$(PY) bench/run_all.py

clean-venv:
	rm -rf $(VENV)
