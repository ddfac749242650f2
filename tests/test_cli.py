from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_is_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "genai_service", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for command in ("serve", "db", "config"):
        assert command in result.stdout


def test_serve_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "genai_service", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "--reload"):
        assert option in result.stdout


def test_document_commands() -> None:
    for command, options in (("worker", ("--drain",)), ("ingest", ("paths", "--email"))):
        result = subprocess.run(
            [sys.executable, "-m", "genai_service", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        for option in options:
            assert option in result.stdout
