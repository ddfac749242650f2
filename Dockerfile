# syntax=docker/dockerfile:1
# genai-service: one image for every process of docs/deployment.md (web worker, model host,
# ingestion worker). It installs exactly what `make install` installs, by running it: the locked
# packages, hash-checked, and llama-cpp-python compiled with the Makefile's flags.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The install first, from a stand-in package: the compiled layer is kept while only code changes.
COPY Makefile pyproject.toml requirements.lock.txt README.md ./
RUN mkdir -p src/genai_service && touch src/genai_service/__init__.py
# Empty: the Makefile's choice for the CPU that builds (AVX2, plus AVX-512 where it has it). An
# image meant for other machines sets the flags of the oldest, e.g.
# --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
ARG LLAMA_CMAKE_ARGS=""
# The lock pins torch's CPU build, which PyPI does not have (docs/development.md); the Makefile
# hands this index to the installer.
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN make install PYTHON=python3 ${LLAMA_CMAKE_ARGS:+"LLAMA_CMAKE_ARGS=${LLAMA_CMAKE_ARGS}"}
COPY src ./src

FROM ${PYTHON_IMAGE}
# libgomp: llama.cpp's threads. The service runs as an unprivileged user and writes only /data.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/genai genai \
    && mkdir /data && chown genai:genai /data
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GENAI_ENV=production \
    GENAI_DATA_DIR=/data
USER genai
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Exec form: SIGTERM reaches the server itself, which drains (docs/deployment.md).
CMD ["genai-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
