"""Experiment folders: ``OUTPUT_DIR/<EXPERIMENT>/<timestamp>/`` for training runs and
``OUTPUT_DIR/<EXPERIMENT>/<group>/<timestamp>/`` for other jobs on the experiment (``eval``), never
overwritten, with the frozen config saved first and a ``latest`` link to the newest run of each folder
(an evaluation never moves the training runs' ``latest``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from yacs.config import CfgNode

from lib.config import save_cfg

LATEST = "latest"


def create_run_dir(cfg: CfgNode, name: str | None = None, group: str = "") -> Path:
    """Make a new, empty run folder (inside ``group`` when given), save the config in it and point
    ``latest`` at it."""
    experiment = Path(cfg.OUTPUT_DIR) / cfg.EXPERIMENT / group
    experiment.mkdir(parents=True, exist_ok=True)
    stem = name or time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        run_dir = experiment / (stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise RuntimeError(f"could not create a new run folder under {experiment}")
    save_cfg(cfg, run_dir / "config.yaml")
    point_latest(run_dir)
    return run_dir


def point_latest(run_dir: Path) -> None:
    """Atomically (re)point ``<experiment>/latest`` at ``run_dir``."""
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)
