"""The ground floor of the project's errors: ``UserError`` and the one check that a required file exists.

A user's mistake (a bad config value, a missing or malformed file, a checkpoint that does not fit, bad
demo input) raises a subclass of ``UserError``; ``lib.cli.run_main`` prints it as one line and exits with
code 2 instead of a traceback. Each subclass keeps the built-in base its callers catch (``ValueError``,
``FileNotFoundError``, ``RuntimeError``...), so deriving from ``UserError`` changes no ``except`` clause.
Every other exception is a bug and keeps its traceback. This module imports nothing of the project, so
every layer can raise these errors without importing the layers that catch them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """An error caused by the user's input; ``str(err)`` says what went wrong and what to do."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the user provides or fetches is absent; the message names it and how to get it."""


def require_file(path: str | os.PathLike, missing: Callable[[Path], Exception]) -> Path:
    """``path`` as a Path when it names an existing file, else raise ``missing(path)``.

    The check is the same everywhere; the message differs by layer (where a body-model file or a dataset
    file comes from), so the caller builds the error.
    """
    path = Path(path)
    if not path.is_file():
        raise missing(path)
    return path
