"""Keep requirements.lock.txt in step with pyproject.toml and the Makefile.

`make lock` writes the lock with pip-compile and then runs `stamp`, which records a digest of
pyproject.toml's dependency declarations in the lock's header. `check` (run by `make test`,
offline, standard library only) fails when pyproject.toml's dependencies changed since, or when
the lock pins another llama-cpp-python than the one the Makefile builds.

    python3 tools/dependency_lock.py check|stamp
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock.txt"
PYPROJECT = ROOT / "pyproject.toml"
MAKEFILE = ROOT / "Makefile"
DIGEST_LINE = re.compile(r"^# pyproject-dependencies-sha256: (?P<digest>[0-9a-f]{64})$", re.M)
MAKEFILE_LLAMA = re.compile(r"^LLAMA_CPP_VERSION := (?P<version>\S+)$", re.M)
LOCK_LLAMA = re.compile(r"^llama-cpp-python==(?P<version>\S+)", re.M)


def dependency_digest(pyproject_text: str) -> str:
    """A digest of what the lock is resolved from; other edits of pyproject.toml do not count."""
    data = tomllib.loads(pyproject_text)
    project = data.get("project", {})
    declared = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "build-system": data.get("build-system", {}).get("requires", []),
    }
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def stamped(lock_text: str, digest: str) -> str:
    """The lock with its digest line set, placed after pip-compile's header comment."""
    line = f"# pyproject-dependencies-sha256: {digest}"
    if DIGEST_LINE.search(lock_text):
        return DIGEST_LINE.sub(line, lock_text)
    header_end = 0
    for current in lock_text.splitlines(keepends=True):
        if not current.startswith("#"):
            break
        header_end += len(current)
    return lock_text[:header_end] + line + "\n#\n" + lock_text[header_end:]


def problems(lock_text: str, pyproject_text: str, makefile_text: str) -> list[str]:
    found: list[str] = []
    recorded = DIGEST_LINE.search(lock_text)
    if recorded is None:
        found.append("requirements.lock.txt records no pyproject digest: run `make lock`")
    elif recorded["digest"] != dependency_digest(pyproject_text):
        found.append(
            "pyproject.toml's dependencies changed since requirements.lock.txt was written: "
            "run `make lock` and commit the lock"
        )
    built = MAKEFILE_LLAMA.search(makefile_text)
    locked = LOCK_LLAMA.search(lock_text)
    if built is None or locked is None or built["version"] != locked["version"]:
        found.append(
            f"the lock pins llama-cpp-python {locked['version'] if locked else 'nowhere'}, "
            f"the Makefile builds {built['version'] if built else 'nothing'}: they must agree"
        )
    return found


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) == 2 else ""
    pyproject_text = PYPROJECT.read_text()
    if command == "stamp":
        LOCK.write_text(stamped(LOCK.read_text(), dependency_digest(pyproject_text)))
        return 0
    if command == "check":
        found = problems(LOCK.read_text(), pyproject_text, MAKEFILE.read_text())
        for problem in found:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
