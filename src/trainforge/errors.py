"""User-facing errors: each carries a message that names the problem and the fix.

The CLI prints these as one paragraph and exits with their ``exit_code``; any other exception is a bug or a
training failure and is reported with its type (exit code 1).
"""

from __future__ import annotations


class TrainforgeError(Exception):
    """An expected failure whose message is written for the user."""

    exit_code = 1


class ConfigError(TrainforgeError):
    """The configuration is invalid; ``problems`` lists every issue as ``(dotted.key, message)``."""

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"invalid configuration{where} ({len(problems)} problem{'s' if len(problems) != 1 else ''}):"]
        lines += [f"  - {key}: {message}" if key else f"  - {message}" for key, message in problems]
        super().__init__("\n".join(lines))


class DataError(TrainforgeError):
    """The dataset cannot be used as configured (missing file/column, bad labels, empty split...)."""

    exit_code = 2


class RunDirError(TrainforgeError):
    """The output directory is in a state that would lose or mix results."""

    exit_code = 2
