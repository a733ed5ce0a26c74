"""Resuming a run: which checkpoint ``--resume PATH|auto`` names, and which overrides a resumed run takes.

A resumed run continues the configuration saved in its checkpoint (the ``--cfg`` YAML only locates the
experiment for ``auto``). A command-line override that differs from the saved value is applied only when
its key is in ``RESUMABLE_KEYS``; any other difference would change the model or the optimisation state
(and the weights, the optimiser's moments and the schedule restored from the checkpoint would not
follow), so it is refused with every such key listed. The new checkpoints record the config that is
actually trained, and the run's config.yaml is rewritten with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from yacs.config import CfgNode

from lib.config import ConfigError, get_cfg_from_text
from lib.engine.checkpoint import load_checkpoint
from lib.engine.run_dir import LATEST
from lib.models.weights import CheckpointError

# The one list of the keys a resumed run may change: how long to train and how often to log, validate and
# save; where files are (a run moved to another machine); the device and loader processes. Everything
# else (MODEL.*, STAGE, SEED, TRAIN.LR / OPTIMIZER / WEIGHT_DECAY / SCHEDULER / LR_* / WARMUP_EPOCHS /
# BATCH_SIZE / GRAD_CLIP / AMP / EDGE_LOSS_START, LOSS.*, what DATA.* selects and how inputs are drawn,
# OUTPUT_DIR / EXPERIMENT: the run stays in its folder) is fixed by the checkpoint.
RESUMABLE_KEYS = frozenset(
    {
        "TRAIN.EPOCHS",  # not under the cosine schedule, which spans TRAIN.EPOCHS (see _refused)
        "TRAIN.VAL_EVERY",
        "TRAIN.SAVE_EVERY",
        "TRAIN.CHECKPOINT_EVERY_ITERS",
        "TRAIN.STOP_AFTER_ITERS",
        "TRAIN.LOG_EVERY",
        "TRAIN.MAX_NONFINITE_STEPS",
        "TRAIN.DETERMINISTIC",
        "EVAL.BATCH_SIZE",
        "DEVICE",
        "DATA.WORKERS",
        "DATA.CACHE_DIR",
        "DATA.ROOT",
        "DATA.PW3D_DIR",
        "DATA.H36M_DIR",
        "DATA.MPII3D_DIR",
        "DATA.COCO_DIR",
        "DATA.MPII_DIR",
        "DATA.SYNTHETIC.DIR",
        "BODY.SMPL_DIR",
        "BODY.MEAN_VERTICES",
        "BODY.MESH_DOWNSAMPLING",
        "BODY.J_REGRESSOR_H36M",
        "BODY.J_REGRESSOR_COCO",
    }
)


@dataclass(frozen=True)
class Resume:
    """A checkpoint to continue from and the config to continue with."""

    path: Path
    checkpoint: dict
    cfg: CfgNode  # the saved config with the allowed overrides
    changes: tuple[str, ...]  # 'KEY: saved -> now' of each override that changed a value
    auto: bool  # found by --resume auto

    def describe(self) -> str:
        how = f" (--resume auto: the newest resumable checkpoint of {self.path.parent.parent})"
        how = how if self.auto else ""
        changed = f"; overrides applied: {', '.join(self.changes)}" if self.changes else ""
        state = f"epoch {self.checkpoint['epoch']}, step {self.checkpoint['iteration']}"
        return f"resumed from {self.path}{how} at {state}{changed}"


def load_resume(cfg: CfgNode, resume: str | None, opts: Sequence[str]) -> Resume | None:
    """The checkpoint of ``--resume`` (a path, or 'auto' for the experiment of ``cfg``) and the saved
    config with ``opts`` applied; None without ``--resume``."""
    if resume is None:
        return None
    if resume == "auto":
        path, checkpoint = newest_resumable(Path(cfg.OUTPUT_DIR) / cfg.EXPERIMENT)
    else:
        path = Path(resume)
        if not path.is_file():
            raise CheckpointError(f"--resume: checkpoint not found: {path}")
        checkpoint = load_checkpoint(path)
    resumed, changes = resumed_config(checkpoint["config"], opts, str(path))
    return Resume(path, checkpoint, resumed, changes, auto=resume == "auto")


def newest_resumable(experiment: Path) -> tuple[Path, dict]:
    """The newest (last written) ``last.pth`` over the run folders of ``experiment`` that loads as a
    training checkpoint, and its content; a CheckpointError when there is none."""
    candidates = [p for p in experiment.glob("*/last.pth") if p.parent.name != LATEST]
    skipped = []
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            skipped.append(f"{path}: {str(err).splitlines()[0]}")
    unreadable = "".join(f"\n  skipped {line}" for line in skipped)
    raise CheckpointError(
        f"--resume auto: no run folder of {experiment} holds a resumable last.pth{unreadable}\n"
        "start a new run without --resume, or pass --resume PATH"
    )


def resumed_config(saved_text: str, opts: Sequence[str], source: str) -> tuple[CfgNode, tuple[str, ...]]:
    """The config saved in checkpoint ``source`` with the allowed ``KEY VALUE`` overrides, and the changes
    as 'KEY: saved -> now'. A ConfigError lists every override that is not allowed on resume."""
    saved = get_cfg_from_text(saved_text, source=f"config saved in {source}")
    merged = get_cfg_from_text(saved_text, opts, source=f"config saved in {source} with the overrides")
    changed = {key: (_value(saved, key), _value(merged, key)) for key in opts[0::2]}
    changed = {key: pair for key, pair in changed.items() if pair[0] != pair[1]}
    refused = [key for key in changed if _refused(key, saved)]
    if refused:
        listed = "\n  ".join(
            f"{key}: saved {changed[key][0]!r}, given {changed[key][1]!r}{_reason(key)}" for key in refused
        )
        raise ConfigError(
            f"--resume continues the config saved in {source}; these overrides would change the model, the "
            f"optimisation state or the run's folder and are refused:\n  {listed}\n"
            f"allowed on resume: {', '.join(sorted(RESUMABLE_KEYS))} (lib/engine/resume.py); "
            "start a new run without --resume to train with other settings"
        )
    return merged, tuple(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())


def _refused(key: str, saved: CfgNode) -> bool:
    # Cosine: the learning rate of every epoch depends on TRAIN.EPOCHS, so the epochs done would no longer
    # match the schedule.
    cosine = key == "TRAIN.EPOCHS" and saved.TRAIN.SCHEDULER == "cosine"
    return key not in RESUMABLE_KEYS or cosine


def _reason(key: str) -> str:
    return " (the run's cosine schedule spans TRAIN.EPOCHS)" if key == "TRAIN.EPOCHS" else ""


def _value(cfg: CfgNode, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node
