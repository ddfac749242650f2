"""genai-service: a self-hostable generative-AI backend on FastAPI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genai-service")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
