"""The one error the demo shows to users: a message that says what went wrong and what to do."""

from __future__ import annotations

from lib.errors import UserError


class DemoError(UserError, RuntimeError):
    """Bad input or a missing resource. ``str(err)`` is meant for the user; entry points print it and
    exit with ``exit_code`` (non-zero) instead of a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
