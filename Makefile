# Conveyor's everyday commands. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: venv run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,bench]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## run: the whole platform on this machine (`conveyor dev`); ARGS="--port 9000 --workers 2"
run: venv
	@scripts/ensure-rabbitmq
	$(BIN)/conveyor dev $(ARGS)

## test: every test, against real RabbitMQ, MongoDB-protocol and S3 servers, and the web
## console's in headless Chromium (installed from Debian's package when missing)
test: venv
	@scripts/ensure-test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff and mypy --strict
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy --strict services shared tests bench

## bench: benchmarks side by side with a peer; QUICK=1 for a shorter run
bench: venv
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .conveyor .mypy_cache .ruff_cache .pytest_cache
