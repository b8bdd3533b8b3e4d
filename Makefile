# The two set-up commands on a fresh machine: `make run` and `make test`.
# Each creates or updates .venv from requirements.lock (exact versions), then does its job.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= demo-home

.PHONY: install system-deps contract run test lint typecheck unit bench bench-ingest bench-backends bench-api clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# Node.js and npm (Debian's, if missing): contracts/ pins solc-js, which builds the anchor
# contract (tools/build_contract.py), and Hardhat 2, the dev chain tests/test_anchor.py starts.
# npm ci installs exactly contracts/package-lock.json, running no install scripts.
CONTRACT_DEPS := contracts/node_modules/.package-lock.json
$(CONTRACT_DEPS): contracts/package.json contracts/package-lock.json
	@command -v npm >/dev/null || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm)
	npm ci --ignore-scripts --no-audit --no-fund --prefix contracts
	touch $@

# after editing contracts/RadledgerAnchor.sol: rebuild contracts/RadledgerAnchor.json
contract: install $(CONTRACT_DEPS)
	$(BIN)/python tools/build_contract.py

# DCMTK (dcmconv, dcmcrle, dcmcjpeg, dcmcjpls, storescu, dcmsend, echoscu) re-encodes and sends
# DICOM files in the tests; Orthanc (Debian's) is the PACS tests/test_orthanc.py starts as a
# plain process; PostgreSQL's initdb/pg_ctl start the tests' own throwaway cluster
# (tests/pgcluster.py); Debian's Chromium is the browser Playwright drives in
# tests/test_web_browser.py (`playwright install` is never run). `make run` needs none of them.
# sudo only when not root.
system-deps: $(CONTRACT_DEPS)
	@command -v dcmconv >/dev/null || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk)
	@command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)
	@[ -x /usr/bin/chromium ] || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

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

# the HTTP API under load: `radledger serve` driven by wrk (Debian's) on loopback
bench-api: install
	@command -v wrk >/dev/null || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python bench/api_load.py

# PostgreSQL against SQLite in one run: appends/s and inclusion-proof latency (bench/backends.py)
bench-backends: install system-deps
	$(BIN)/python bench/backends.py

clean:
	rm -rf $(VENV) $(HOME_DIR) .mypy_cache .pytest_cache .ruff_cache .hypothesis
