# Both targets create .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ate run --config configs/demo.json

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

test: $(STAMP) lint
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	for f in bench/bench_*.py; do $(VENV)/bin/python $$f || exit 1; done

clean:
	rm -rf $(VENV) state build *.egg-info
