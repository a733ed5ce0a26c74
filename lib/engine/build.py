"""Build the training objects from the config: optimiser, learning-rate schedule, loss, settings."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from yacs.config import CfgNode

from lib.engine.trainer import TrainSettings
from lib.losses import LossWeights, mesh_losses, pose_losses

TARGET_KEYS = {"h36m17": "pose3d_h36m", "coco19": "pose3d"}  # DATA.TARGET_JOINT_SET -> item key


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    optimizer = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.TRAIN.OPTIMIZER]
    return optimizer(model.parameters(), lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY)


def lr_factor(cfg: CfgNode) -> Callable[[int], float]:
    """Epoch -> multiplier of TRAIN.LR: linear warm-up, then multi-step decay or a cosine to zero."""
    t = cfg.TRAIN
    warmup, steps, factor, epochs, kind = (
        t.WARMUP_EPOCHS,
        tuple(t.LR_STEPS),
        t.LR_FACTOR,
        t.EPOCHS,
        t.SCHEDULER,
    )

    def at(epoch: int) -> float:
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        if kind == "cosine":
            progress = (epoch - warmup) / max(1, epochs - warmup)
            return 0.5 * (1 + math.cos(math.pi * progress))
        return factor ** sum(epoch >= milestone for milestone in steps)

    return at


def build_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per epoch (the official MultiStepLR semantics with TRAIN.LR_STEPS as milestones)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))


def loss_weights(cfg: CfgNode) -> LossWeights:
    w = cfg.LOSS
    return LossWeights(pose=w.POSE_WEIGHT, mesh=w.MESH_WEIGHT, joint=w.JOINT_WEIGHT, normal=w.NORMAL_WEIGHT,
                       edge=w.EDGE_WEIGHT)  # fmt: skip


def build_loss_fn(cfg: CfgNode, faces: torch.Tensor | None = None, regressor: torch.Tensor | None = None):
    """(output, batch, epoch) -> loss terms for the stage of ``cfg``.

    Stage 'mesh' needs the mesh ``faces`` (F, 3) and the ``regressor`` (K, V) of DATA.TARGET_JOINT_SET.
    """
    weights = loss_weights(cfg)
    if cfg.STAGE == "pose":
        return lambda output, batch, epoch: pose_losses(output, batch, weights)
    target_key, edge_start = TARGET_KEYS[cfg.DATA.TARGET_JOINT_SET], cfg.TRAIN.EDGE_LOSS_START

    def mesh_loss(output, batch, epoch):
        return mesh_losses(output, batch, faces, regressor, target_key, weights, use_edge=epoch > edge_start)

    return mesh_loss


def train_settings(cfg: CfgNode) -> TrainSettings:
    t = cfg.TRAIN
    return TrainSettings(
        epochs=t.EPOCHS,
        val_every=t.VAL_EVERY,
        save_every=t.SAVE_EVERY,
        checkpoint_every_iters=t.CHECKPOINT_EVERY_ITERS,
        stop_after_iters=t.STOP_AFTER_ITERS,
        grad_clip=t.GRAD_CLIP,
        amp=t.AMP,
        log_every=t.LOG_EVERY,
        select_metric="PVE" if cfg.STAGE == "mesh" else "MPJPE",
    )
