"""Experiment folders: ``OUTPUT_DIR/<EXPERIMENT>/<timestamp>/`` for training runs and
``OUTPUT_DIR/<EXPERIMENT>/<group>/<timestamp>/`` for other jobs on the experiment (``eval``), never
overwritten, with the frozen config saved first and a ``latest`` link to the newest run of each folder
(an evaluation never moves the training runs' ``latest``).

Entry points call :func:`check_output_dir` before any data is loaded, so an output folder that cannot be
written is reported at once; a job whose files are complete only at its end writes into
:func:`staged_run_dir`, which appears under its final name only when the job succeeds. Errors caused by
a full disk (``ENOSPC`` anywhere in an exception's chain, e.g. torch.save's "unexpected pos") are
reported as a :class:`DiskFullError` naming the file or folder (:func:`reporting_disk_full`).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from yacs.config import CfgNode

from lib.config import ConfigError, save_cfg
from lib.io import current_umask

LATEST = "latest"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class OutputDirError(ConfigError):
    """An output folder cannot hold the run: it is a file, it is not writable, or its ``latest`` is not a
    link. The message names the path and what to do (often: another OUTPUT_DIR)."""


class DiskFullError(OutputDirError):
    """No space was left on the disk an output file was being written to."""


def experiment_dir(cfg: CfgNode, group: str = "") -> Path:
    """``OUTPUT_DIR/EXPERIMENT`` (``/group`` when given): the folder that holds the run folders."""
    return Path(cfg.OUTPUT_DIR) / cfg.EXPERIMENT / group


def check_output_dir(cfg: CfgNode, group: str = "") -> Path:
    """The experiment folder of ``cfg`` (see :func:`experiment_dir`) if a new run folder can be made in
    it: it is a writable folder or can be created as one, and its ``latest`` is a link or absent.
    Creates nothing; an OutputDirError otherwise."""
    folder = experiment_dir(cfg, group)
    check_writable_dir(folder, f"OUTPUT_DIR {folder}")
    latest = folder / LATEST
    if latest.exists() and not latest.is_symlink():
        kind = "folder" if latest.is_dir() else "file"
        raise OutputDirError(
            f"{latest} is a real {kind}, but runs keep a link to the newest run there: move or rename it, "
            "then start again"
        )
    return folder


def check_writable_dir(folder: Path, what: str) -> None:
    """OutputDirError unless ``folder`` is a writable folder or can be created as one (its nearest
    existing ancestor is a writable folder); ``what`` names the setting and its value, e.g.
    'OUTPUT_DIR output/x' or '--out demo/'."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputDirError(f"{what}: {existing} is a file, not a folder; choose a folder (made if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"{what}: {existing} is not writable (read-only disk or no permission); choose a folder you can "
            "write to, or change its permissions"
        )


def create_run_dir(cfg: CfgNode, name: str | None = None, group: str = "") -> Path:
    """Make a new, empty run folder (inside ``group`` when given), save the config in it and point
    ``latest`` at it. When any of that fails, the folders it made are removed again."""
    experiment = check_output_dir(cfg, group)
    made = _make_folders(experiment)
    try:
        run_dir = _claim_name(experiment, name or time.strftime("%Y%m%d-%H%M%S"), Path.mkdir)
        try:
            save_cfg(cfg, run_dir / "config.yaml")
            point_latest(run_dir)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
    except BaseException:
        _remove_if_empty(made)
        raise
    return run_dir


@dataclass
class StagedRun:
    """The folder to write while a :func:`staged_run_dir` block runs; the run folder after it."""

    path: Path


@contextmanager
def staged_run_dir(cfg: CfgNode, group: str = "") -> Iterator[StagedRun]:
    """A new run folder whose files appear together: the block writes into ``run.path``, a hidden folder
    next to the runs; when the block ends normally it becomes a new run folder (``run.path`` then names
    it) and ``latest`` points at it; when the block raises, it is removed with everything in it and
    ``latest`` stays where it was (and so do the folders above it that it made)."""
    experiment = check_output_dir(cfg, group)
    made = _make_folders(experiment)
    stage = Path(tempfile.mkdtemp(dir=experiment, prefix=".staging."))
    try:
        save_cfg(cfg, stage / "config.yaml")
        run = StagedRun(stage)
        yield run
        os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp makes it owner-only: an ordinary folder
        # Claim the name with an empty folder (atomic, so two jobs never share one), then move the stage
        # over it: renaming a folder onto an empty one replaces it.
        run.path = _claim_name(experiment, time.strftime("%Y%m%d-%H%M%S"), Path.mkdir)
        os.replace(stage, run.path)
        point_latest(run.path)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_if_empty(made)
        raise


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed job made (deepest first), where nothing else has appeared in them."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another job wrote there meanwhile) or already gone
            return


def _claim_name(experiment: Path, stem: str, make: Callable[[Path], None]) -> Path:
    """``experiment/stem`` (or ``stem-1``, ``stem-2``, ... if taken) made by ``make``, which must fail
    with FileExistsError when the name exists."""
    for attempt in range(1000):
        run_dir = experiment / (stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            make(run_dir)
            return run_dir
        except FileExistsError:
            continue
    raise OutputDirError(f"could not create a new run folder under {experiment}: 1000 names are taken")


def point_latest(run_dir: Path) -> None:
    """Atomically (re)point ``<experiment>/latest`` at ``run_dir``; a ``latest`` that is a real folder
    is an OutputDirError (and no stray link is left)."""
    link = run_dir.parent / LATEST
    if link.exists() and not link.is_symlink():
        raise OutputDirError(
            f"{link} is a real folder, but runs keep a link to the newest run there: move or rename it"
        )
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------------------
# A full disk
# ------------------------------------------------------------------------------------------------------
def disk_full_error(err: BaseException, path: str | os.PathLike, advice: str) -> DiskFullError | None:
    """A one-line DiskFullError when ``err`` was caused by a full disk (ENOSPC / EDQUOT anywhere in its
    chain), naming the file the error names or else ``path``, followed by ``advice`` (what to do);
    None for any other error."""
    cause = _disk_full_cause(err)
    if cause is None:
        return None
    where = Path(cause.filename) if cause.filename else Path(path)
    return DiskFullError(
        f"disk full: no space left on the device writing {where} ({_free_space(where)}); {advice}"
    )


@contextmanager
def reporting_disk_full(path: str | os.PathLike, advice: str) -> Iterator[None]:
    """Re-raise an error caused by a full disk inside the block as a DiskFullError (see
    :func:`disk_full_error`); other errors pass unchanged. A background writer thread that fails on the
    full disk (TensorBoard's) prints no traceback: it hands its error to the next write or close of its
    owner in the block's thread, which then reports it."""
    previous = threading.excepthook

    def quiet_when_disk_full(args: threading.ExceptHookArgs) -> None:
        if _disk_full_cause(args.exc_value) is None:
            previous(args)

    threading.excepthook = quiet_when_disk_full
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        full = disk_full_error(err, path, advice)
        if full is None:
            raise
        raise full from err
    finally:
        threading.excepthook = previous


def _disk_full_cause(err: BaseException | None) -> OSError | None:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            return err
        err = err.__cause__ or err.__context__
    return None


def _free_space(path: Path) -> str:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        return f"{shutil.disk_usage(existing).free / 2**20:.1f} MB free"
    except OSError:
        return "free space unknown"
