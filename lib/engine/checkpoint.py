"""Training checkpoints: atomic writes, everything needed to resume exactly, clear errors on bad files.

A checkpoint is a dict with ``model`` (state dict), ``optimizer``, ``scheduler``, ``scaler``, ``epoch``
(completed epochs), ``epoch_step`` (batches done in the running epoch), ``iteration`` (global step),
``best`` (best validation value so far), ``rng`` (Python, NumPy, torch, CUDA states) and ``config``
(the run's YAML text), so that it describes itself.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from lib.engine.run_dir import disk_full_error
from lib.io import write_atomic
from lib.models.weights import CheckpointError, read_checkpoint

# What to do when a checkpoint cannot be written for lack of space (the previous one stays intact).
RESUME_ADVICE = (
    "nothing was written there and earlier checkpoints are intact: free space on that disk, then continue "
    "with --resume auto (or start anew if the run had no checkpoint yet)"
)
REQUIRED_KEYS = ("model", "optimizer", "scheduler", "epoch", "epoch_step", "iteration", "rng", "config")


def save_checkpoint(payload: dict, path: str | os.PathLike) -> None:
    """Write ``payload`` to ``path`` atomically; the previous file at ``path`` stays intact until the new
    one is complete on disk. A full disk is a DiskFullError naming ``path``."""
    try:
        write_atomic(path, lambda f: torch.save(payload, f))
    except Exception as err:
        full = disk_full_error(err, path, RESUME_ADVICE)
        if full is None:
            raise
        raise full from err


def remove_stale_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writes into ``run_dir`` left when their process was killed
    (``.last.<random>.tmp.pth`` of lib/io.py's atomic writes, up to a checkpoint's size each); return
    their paths. Only for a run folder no other process writes to, e.g. the one being resumed."""
    stale = sorted(Path(run_dir).glob(".*.tmp.*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a training checkpoint; a truncated file or one that is not ours is a ``CheckpointError``."""
    checkpoint = read_checkpoint(path)
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{path} is not a resumable training checkpoint (missing {missing}); to start from its weights "
            "only, use it as MODEL.POSE_CHECKPOINT or EVAL.CHECKPOINT instead"
        )
    return checkpoint


def capture_rng_state() -> dict:
    """Every random generator a training step can touch, in a form ``torch.load(weights_only=True)`` reads."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached_gaussian": cached,
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    """Python's random state is nested tuples; a round trip through a checkpoint may give lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value
