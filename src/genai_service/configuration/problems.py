"""What is wrong with a configuration, and where: the file and line, or the variable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    location: str
    """`genai-service.toml:12`, `environment variable GENAI_LOG_LEVEL`, or `settings`."""
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ConfigError(ValueError):
    """The configuration cannot be used; every problem found is listed, each with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems
