#!/usr/bin/env python
"""Train one PMCE stage.

    python train.py --cfg configs/<experiment>.yaml [--resume PATH|auto] [KEY VALUE ...]
    torchrun --nproc_per_node N train.py --cfg ...        # data-parallel on N processes

STAGE in the config selects stage 1 (pose stream) or stage 2 (full model, initialised from
MODEL.POSE_CHECKPOINT). Outputs go to OUTPUT_DIR/EXPERIMENT/<timestamp>/: config.yaml, last.pth,
best.pth (chosen on the validation split), epoch_NNN.pth, log.txt, metrics.csv, tensorboard/ (stage 2
also logs one validation window's mesh next to its ground truth as an image).
``--resume`` continues a run exactly where its checkpoint left off, in the same folder, with the
config saved in the checkpoint; ``--resume auto`` takes the newest resumable last.pth over the run
folders of OUTPUT_DIR/EXPERIMENT. Overrides that would change the model or the optimisation are refused;
lib/engine/resume.py lists the keys a resumed run may change (e.g. TRAIN.EPOCHS, logging frequencies).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from lib.cli import make_parser, run_main
from lib.config import get_cfg, save_cfg
from lib.engine import build as B
from lib.engine.checkpoint import RESUME_ADVICE, remove_stale_temporaries
from lib.engine.distributed import init_distributed, seed_everything, shutdown_distributed
from lib.engine.logger import RunLogger
from lib.engine.resume import Resume, load_resume
from lib.engine.run_dir import (
    check_output_dir,
    check_writable_dir,
    create_run_dir,
    experiment_dir,
    reporting_disk_full,
)
from lib.engine.trainer import Trainer
from lib.engine.validate import make_preview, make_validator


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--resume", metavar="PATH|auto", help="continue a run from its checkpoint")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.cfg, args.opts)
    resume = load_resume(cfg, args.resume, args.opts)
    if resume is not None:
        cfg = resume.cfg
    # Before any data is loaded: the folder the run writes to must be writable.
    if resume is None:
        check_output_dir(cfg)
    else:
        check_writable_dir(resume.path.parent, f"--resume {resume.path}")
    env = init_distributed(cfg.DEVICE)
    try:
        with reporting_disk_full(resume.path.parent if resume else experiment_dir(cfg), RESUME_ADVICE):
            train(cfg, env, resume)
    finally:
        shutdown_distributed()
    return 0


def train(cfg, env, resume: Resume | None) -> None:
    seed_everything(cfg.SEED, cfg.TRAIN.DETERMINISTIC)
    assets = B.build_body_assets(cfg)
    model = B.build_training_model(cfg, assets, env.device, load_pose=resume is None)
    if env.world_size > 1:
        # With the official joint input, every block but the last skips its joint branch (its output was
        # discarded; lib/models/decoder.py): those weights get no gradient, which DDP must be told.
        unused = cfg.STAGE == "mesh" and cfg.MODEL.DECODER.JOINT_INPUT == "original"
        model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=unused)
    train_loader = B.build_loader(cfg, "train", cfg.DATA.TRAIN_LIST, assets, env)
    val_loader = B.build_loader(cfg, "val", cfg.DATA.VAL_LIST[:1], assets, env) if cfg.DATA.VAL_LIST else None
    run_dir = resume.path.parent if resume else (create_run_dir(cfg) if env.is_main else None)
    stale = remove_stale_temporaries(run_dir) if resume and env.is_main else []
    if resume and resume.changes and env.is_main:
        save_cfg(cfg, run_dir / "config.yaml")  # the config this run now trains with
    logger = RunLogger(run_dir, enabled=env.is_main)
    optimizer = B.build_optimizer(cfg, model)
    loss_fn = B.build_loss_fn(
        cfg, assets.faces.to(env.device), B.target_regressor(cfg, assets).to(env.device)
    )
    validate = preview = None
    if val_loader is not None:
        scorer = B.build_scorer(cfg, assets, protocol="full")  # best.pth is chosen on the full protocol
        validate = make_validator(val_loader, env.device, scorer, cfg.DATA.VAL_LIST[0])
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
    if resume is not None:
        trainer.resume(resume.checkpoint)
        logger.info(resume.describe())
    if stale:
        logger.info(f"removed {len(stale)} temporary files of interrupted writes: {[p.name for p in stale]}")
    logger.info(f"training {cfg.EXPERIMENT} (stage {cfg.STAGE}) in {run_dir}")
    state = trainer.fit()
    metric = trainer.settings.select_metric
    logger.info(
        f"done: {state.epoch} epochs, {state.iteration} steps, best validation {metric} {state.best:.2f}"
    )
    logger.close()


if __name__ == "__main__":
    sys.exit(run_main(main))
