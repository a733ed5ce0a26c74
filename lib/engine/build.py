"""Build the training objects from the config: body assets, loaders, model, optimiser, schedule, loss."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Subset
from yacs.config import CfgNode

from lib.body.build import build_body_model, build_coarse_mesh_from_cfg
from lib.body.coarse_mesh import CoarseMesh
from lib.body.regressors import coco19_from_coco17
from lib.body.smpl import BodyModel
from lib.config import ConfigError, check_model_config
from lib.constants import flip_permutation
from lib.data.build import LIST_KEYS, build_dataset
from lib.data.sampling import build_sampler
from lib.data.silhouette import mirror_silhouette_features
from lib.data.synthetic.generate import SHAPE_CODE_DIM
from lib.data.temporal_groups import TemporalGroups, collate_groups
from lib.engine.distributed import DistEnv
from lib.engine.trainer import TrainSettings
from lib.eval.scorer import Scorer
from lib.eval.selection import protocol_cameras
from lib.losses import LossWeights, mesh_losses, pose_losses
from lib.models.build import build_model
from lib.models.mirror import Mirror, vertex_mirror
from lib.models.weights import load_model_weights

TARGET_KEYS = {"h36m17": "pose3d_h36m", "coco19": "pose3d"}  # DATA.TARGET_JOINT_SET -> item key


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    optimizer = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.TRAIN.OPTIMIZER]
    params = list(model.parameters())
    # The fused kernel: one pass over all parameters (measured on 2 CPU cores for the CPU-sized full
    # model's 16M parameters: 18 ms a step instead of 105 ms for the per-tensor loop).
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return optimizer(params, lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY, fused=fused)


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
                       edge=w.EDGE_WEIGHT, accel=w.ACCEL_WEIGHT, group=cfg.DATA.TEMPORAL_GROUP)  # fmt: skip


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
        max_nonfinite_steps=t.MAX_NONFINITE_STEPS,
    )


@dataclass(frozen=True)
class BodyAssets:
    """Everything the engine needs from the body-model layer."""

    body_model: BodyModel
    coarse_mesh: CoarseMesh
    regressors: dict[str, torch.Tensor]  # joint set -> (J, V): h36m17, coco17, coco19, smpl24

    @property
    def faces(self) -> torch.Tensor:
        return self.body_model.faces


def build_body_assets(cfg: CfgNode) -> BodyAssets:
    body = build_body_model(cfg)
    regressors = {
        "h36m17": body.regressor_h36m17,
        "coco17": body.regressor_coco17,
        "coco19": coco19_from_coco17(body.regressor_coco17),
        "smpl24": body.regressor_smpl24,
    }
    return BodyAssets(body, build_coarse_mesh_from_cfg(cfg), regressors)


def build_mirror(cfg: CfgNode, assets: BodyAssets, features: str, enabled: bool) -> Mirror | None:
    """The mirror of the network's inputs and outputs for test-time flip augmentation
    (lib/models/mirror.py) when ``enabled`` (EVAL.FLIP_TEST or DEMO.FLIP_TEST) and the model's image
    features can be mirrored, else None. ``features``: the image features the model is fed,
    'silhouette', 'zeros' or 'spin' (SPIN's cannot be mirrored without the images)."""
    m = cfg.MODEL
    if not enabled or (features == "spin" and (m.POSE_STREAM.USE_IMG_FEAT or m.DECODER.USE_IMG_FEAT)):
        return None
    template = next(iter(assets.body_model.layers.values())).v_template
    code = SHAPE_CODE_DIM if cfg.DATA.SYNTHETIC.SHAPE_CODE_NOISE >= 0 else 0  # a shape code is not mirrored
    return Mirror(
        joints=torch.tensor(flip_permutation(m.INPUT_JOINT_SET)),
        vertices=vertex_mirror(template, assets.faces) if cfg.STAGE == "mesh" else None,
        features=partial(mirror_silhouette_features, keep=code) if features == "silhouette" else lambda f: f,
    )


def build_scorer(cfg: CfgNode, assets: BodyAssets, protocol: str | None = None) -> Scorer:
    """The run's scorer: the input joint set, the SMPL-24 / Human3.6M-17 regressors and ``protocol``
    (default EVAL.PROTOCOL)."""
    regressors = assets.regressors
    return Scorer(
        joint_set=cfg.MODEL.INPUT_JOINT_SET,
        smpl_regressor=regressors["smpl24"],
        h36m_regressor=regressors["h36m17"],
        protocol=cfg.EVAL.PROTOCOL if protocol is None else protocol,
    )


def build_loader(
    cfg: CfgNode, split: str, names: Sequence[str], assets: BodyAssets, env: DistEnv
) -> torch.utils.data.DataLoader:
    """Training: the datasets mixed by DATA.TRAIN_RATIOS through the deterministic sampler, this rank's
    share of TRAIN.BATCH_SIZE per step. Evaluation: one dataset in order, EVAL.BATCH_SIZE."""
    if not names:
        raise ConfigError(f"{LIST_KEYS[split]} is empty: name at least one dataset, e.g. [synthetic]")
    datasets = [build_dataset(cfg, name, split, assets.body_model, assets.regressors) for name in names]
    if split != "train":
        return DataLoader(datasets[0], batch_size=cfg.EVAL.BATCH_SIZE, shuffle=False,
                          num_workers=cfg.DATA.WORKERS)  # fmt: skip
    if cfg.TRAIN.BATCH_SIZE % env.world_size:
        raise ConfigError(
            f"TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} must divide over {env.world_size} processes"
        )
    sampler = build_sampler(cfg, [len(d) for d in datasets], env.rank, env.world_size)
    group, collate = cfg.DATA.TEMPORAL_GROUP, None
    if group > 1:  # each sample: consecutive windows, for the acceleration loss
        share, seed = cfg.DATA.TEMPORAL_GROUP_SHARE, cfg.SEED
        datasets, collate = [TemporalGroups(d, group, share, seed) for d in datasets], collate_groups
    return DataLoader(EpochConcat(datasets), batch_size=cfg.TRAIN.BATCH_SIZE // env.world_size,
                      sampler=sampler, num_workers=cfg.DATA.WORKERS, collate_fn=collate)  # fmt: skip


class EpochConcat(ConcatDataset):
    """ConcatDataset that passes ``set_epoch`` on (the training noise is redrawn every epoch)."""

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)


def protocol_pad_mode(cfg: CfgNode) -> str:
    """The test windows follow EVAL.PROTOCOL alone: 'official' the official set (DATA.PAD_MODE is not
    consulted), 'full' every frame, padded by DATA.PAD_MODE."""
    if cfg.EVAL.PROTOCOL == "official":
        return "official"
    if cfg.DATA.PAD_MODE == "official":
        raise ConfigError(
            "EVAL.PROTOCOL full predicts every frame, but DATA.PAD_MODE official leaves the video ends "
            "out: set DATA.PAD_MODE replicate (or reflect), or EVAL.PROTOCOL official"
        )
    return cfg.DATA.PAD_MODE


def build_test_loader(cfg: CfgNode, name: str, assets: BodyAssets) -> DataLoader:
    """The test windows of dataset ``name`` that EVAL.PROTOCOL predicts, in order (lib/eval/selection.py):
    its window set (``protocol_pad_mode``) and, of those, the windows whose target camera it evaluates."""
    dataset = build_dataset(
        cfg, name, "test", assets.body_model, assets.regressors, pad_mode=protocol_pad_mode(cfg)
    )
    cameras = dataset.table.camera_id[dataset.windows.target]
    windows = np.flatnonzero(protocol_cameras(name, cfg.EVAL.PROTOCOL, cameras))
    return DataLoader(Subset(dataset, windows.tolist()), batch_size=cfg.EVAL.BATCH_SIZE, shuffle=False,
                      num_workers=cfg.DATA.WORKERS)  # fmt: skip


def target_regressor(cfg: CfgNode, assets: BodyAssets) -> torch.Tensor:
    """(K, V) regressor of DATA.TARGET_JOINT_SET, for the mesh -> joint loss."""
    return assets.regressors[cfg.DATA.TARGET_JOINT_SET]


def build_training_model(
    cfg: CfgNode, assets: BodyAssets, device: torch.device, load_pose: bool
) -> nn.Module:
    """The stage's network on ``device``; stage 2 starts its pose stream from MODEL.POSE_CHECKPOINT."""
    model = build_model(cfg, assets.coarse_mesh)
    if cfg.STAGE == "mesh" and cfg.MODEL.POSE_CHECKPOINT and load_pose:
        path = cfg.MODEL.POSE_CHECKPOINT
        saved = load_model_weights(model.pose_lifter, path, prefix="pose_lifter.")
        check_model_config(cfg, saved, path, pose_stream_only=True)
    return model.to(device)
