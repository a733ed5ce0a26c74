#!/usr/bin/env python
"""Train one PMCE stage.

    python train.py --cfg configs/<experiment>.yaml [--resume PATH|auto] [KEY VALUE ...]
    torchrun --nproc_per_node N train.py --cfg ...        # data-parallel on N processes

STAGE in the config selects stage 1 (pose stream) or stage 2 (full model, initialised from
MODEL.POSE_CHECKPOINT). Outputs go to OUTPUT_DIR/EXPERIMENT/<timestamp>/: config.yaml, last.pth,
best.pth (chosen on the validation split), epoch_NNN.pth, log.txt, metrics.csv, tensorboard/ (stage 2
also logs one validation window's mesh next to its ground truth as an image).
``--resume`` continues a run exactly where its checkpoint left off, in the same folder, with the
run's saved config (command-line overrides still apply, e.g. TRAIN.EPOCHS to extend it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from lib.cli import UserError, make_parser, run_main
from lib.config import get_cfg
from lib.engine import build as B
from lib.engine.checkpoint import load_checkpoint
from lib.engine.distributed import init_distributed, seed_everything, shutdown_distributed
from lib.engine.logger import RunLogger
from lib.engine.run_dir import LATEST, create_run_dir
from lib.engine.trainer import Trainer
from lib.engine.validate import make_preview, make_validator


def resume_path(cfg, resume: str | None) -> Path | None:
    """The checkpoint to resume from: an explicit path, or 'auto' = the latest run's last.pth if any."""
    if resume is None:
        return None
    if resume != "auto":
        return Path(resume)
    latest = Path(cfg.OUTPUT_DIR) / cfg.EXPERIMENT / LATEST / "last.pth"
    return latest if latest.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--resume", metavar="PATH|auto", help="continue a run from its checkpoint")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.cfg, args.opts)
    checkpoint_path = resume_path(cfg, args.resume)
    if checkpoint_path is not None:
        if not checkpoint_path.is_file():
            raise UserError(f"--resume: checkpoint not found: {checkpoint_path}")
        cfg = get_cfg(checkpoint_path.parent / "config.yaml", args.opts)
    env = init_distributed(cfg.DEVICE)
    try:
        train(cfg, env, checkpoint_path)
    finally:
        shutdown_distributed()
    return 0


def train(cfg, env, checkpoint_path: Path | None) -> None:
    seed_everything(cfg.SEED, cfg.TRAIN.DETERMINISTIC)
    assets = B.build_body_assets(cfg)
    model = B.build_training_model(cfg, assets, env.device, load_pose=checkpoint_path is None)
    if env.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    train_loader = B.build_loader(cfg, "train", cfg.DATA.TRAIN_LIST, assets, env)
    val_loader = B.build_loader(cfg, "val", cfg.DATA.VAL_LIST[:1], assets, env) if cfg.DATA.VAL_LIST else None
    run_dir = checkpoint_path.parent if checkpoint_path else (create_run_dir(cfg) if env.is_main else None)
    logger = RunLogger(run_dir, enabled=env.is_main)
    optimizer = B.build_optimizer(cfg, model)
    loss_fn = B.build_loss_fn(
        cfg, assets.faces.to(env.device), B.target_regressor(cfg, assets).to(env.device)
    )
    validate = preview = None
    if val_loader is not None:
        validate = make_validator(val_loader, env.device, cfg.MODEL.INPUT_JOINT_SET,
                                  assets.regressors["smpl24"], assets.regressors["h36m17"],
                                  dataset=cfg.DATA.VAL_LIST[0])  # fmt: skip
        if cfg.STAGE == "mesh" and env.is_main:
            preview = make_preview(val_loader.dataset, assets.faces, env.device)
    trainer = Trainer(
        model=model,
        optimizer=optimizer,
        scheduler=B.build_scheduler(cfg, optimizer),
        loss_fn=loss_fn,
        loader=train_loader,
        validate=validate,
        preview=preview,
        logger=logger,
        run_dir=run_dir,
        settings=B.train_settings(cfg),
        device=env.device,
        config_text=cfg.dump(),
        rank=env.rank,
        world_size=env.world_size,
    )
    if checkpoint_path is not None:
        trainer.resume(load_checkpoint(checkpoint_path))
        logger.info(
            f"resumed from {checkpoint_path} at epoch {trainer.state.epoch}, step {trainer.state.iteration}"
        )
    logger.info(f"training {cfg.EXPERIMENT} (stage {cfg.STAGE}) in {run_dir}")
    state = trainer.fit()
    metric = trainer.settings.select_metric
    logger.info(
        f"done: {state.epoch} epochs, {state.iteration} steps, best validation {metric} {state.best:.2f}"
    )
    logger.close()


if __name__ == "__main__":
    sys.exit(run_main(main))
