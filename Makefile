# The two set-up commands on a fresh machine: `make run` and `make test`.
# Each creates or updates .venv from requirements.lock (exact versions), then does its job.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= demo-home

.PHONY: install system-deps run test lint typecheck unit bench bench-ingest clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

# DCMTK (dcmconv, dcmcrle, dcmcjpeg, dcmcjpls: one Debian package) re-encodes DICOM files
# for tests/test_fingerprint_toolkits.py; `make run` does not need it. sudo only when not root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
system-deps:
	@command -v dcmconv >/dev/null || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk)

run: install
	$(BIN)/python -m radledger.demo $(HOME_DIR)

lint: install
	$(BIN)/ruff check src tests bench tools

typecheck: install
	$(BIN)/mypy

unit: install system-deps
	$(BIN)/pytest

test: lint typecheck unit

bench: install
	$(BIN)/python bench/run.py

# DICOM ingestion and fixity against openssl, sha256sum, bagit and git-annex, at 1 and 4 GiB
bench-ingest: install
	@command -v git-annex >/dev/null || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git-annex)
	$(BIN)/python bench/ingest.py --full --repeat 2

clean:
	rm -rf $(VENV) $(HOME_DIR) .mypy_cache .pytest_cache .ruff_cache .hypothesis
