# Both targets create .venv on first use and reinstall when pyproject.toml or requirements.lock changes.
# Every package is installed at the version pinned in requirements.lock (the versions the tests passed with).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean lock

$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ate run --config configs/demo.json

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

test: $(STAMP) lint
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	for f in bench/bench_*.py; do $(VENV)/bin/python $$f || exit 1; done

# Re-pin after changing dependencies: resolve pyproject.toml's ranges afresh in a scratch venv, freeze it.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q --upgrade pip
	.venv-lock/bin/pip install -q -e '.[dev]'
	{ sed -n '1,2p' requirements.lock; .venv-lock/bin/pip freeze --exclude-editable | grep -vi '^ate=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock

clean:
	rm -rf $(VENV) state build *.egg-info
