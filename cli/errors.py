"""Exit codes that mean something, and the errors that carry them."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CliError", "Exit"]


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # a check failed or the stack refused the operation
    USAGE = 2  # bad arguments or missing configuration (no admin token)
    UNREACHABLE = 3  # the front door (or the service behind it) does not answer


class CliError(Exception):
    def __init__(self, message: str, *, code: Exit) -> None:
        super().__init__(message)
        self.code = code
