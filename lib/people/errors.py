"""The error people backends show to users: a message that says what went wrong and what to do."""

from __future__ import annotations

from lib.errors import UserError


class PeopleError(UserError, RuntimeError):
    """A missing model file, a broken detection file or another bad input of a people backend.
    ``str(err)`` is meant for the user; entry points print it and exit with code 2."""
