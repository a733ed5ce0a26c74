"""A harmless stand-in for a hostile pickle: loading it with plain ``pickle`` runs a shell command that
creates a marker file, so a test can check that a loader refused it before anything ran."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

SYSTEM_GLOBAL = f"{os.system.__module__}.system"  # the global such a pickle names, e.g. 'posix.system'


class MarkerPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)
