# Everything needs only python3 (3.11+), make and git; dependencies come from the lock files.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run test test-pg lint format typecheck lock clean bench bench-smoke docker-smoke

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sms-sender needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv from the lock file

run: install ## the service on the embedded default: SQLite file, console provider, port 8000
	$(BIN)/sms-sender serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: lint typecheck ## lint, types and every test (PostgreSQL half when SMS_SENDER_TEST_POSTGRES_URL is set)
	$(BIN)/pytest

test-pg: install ## every test, with a throwaway PostgreSQL started for the run
	scripts/with-postgres $(MAKE) test

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## the benchmark suite at full size on SQLite and PostgreSQL (see docs/benchmarks.md)
	$(BIN)/python -m benchmarks run --size full --db both --json benchmarks/results/full.json

bench-smoke: install ## the benchmark suite at tiny size (CI): fails only on a crash or a wrong result
	$(BIN)/python -m benchmarks run --size tiny --db both --json benchmarks/results/smoke.json

docker-smoke: install ## build the image, run compose.yaml with 3 workers, kill one mid-mailing (root; see docs/deploy.md)
	scripts/docker-smoke

lock: ## re-resolve the lock files after editing pyproject.toml (needs uv)
	uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
