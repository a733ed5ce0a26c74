"""Atomic file output: a file, or a whole folder, appears complete under its final name or not at all.

Writers fill a temporary file in the destination folder; on success it is flushed to disk, given the
usual permissions and renamed over the destination (the previous file stays intact until then); on
failure it is removed. :func:`staged_dir` does the same for a folder of outputs (the demo's, a generated
dataset).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` with the same suffix (writers that go by the extension
    work); it replaces ``path`` when the block ends normally and is deleted when the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync(tmp, os.O_RDONLY)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates owner-only files
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary binary file, then move it to ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _fsync(path: str | os.PathLike, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield a hidden staging folder next to ``out_dir``; on success it becomes ``out_dir`` (a previous
    ``out_dir`` is moved aside first and then removed, so the folder never mixes two runs' files), on
    error it is removed and ``out_dir`` stays as it was."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging."))
    old = stage.with_name(stage.name.replace(".staging.", ".replaced."))
    try:
        yield stage
        os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp makes it owner-only: an ordinary folder
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
