"""Validation during training: predict every window of a loader and score it with the protocols; render
one fixed window's mesh for TensorBoard.

Shapes: N windows (one target frame each), J joints, V vertices.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from lib import metrics
from lib.constants import JOINT_SETS
from lib.eval.mesh_view import compare_meshes
from lib.eval.protocols import MM_PER_M, evaluate_mesh_sequences

TARGET_KEYS = ("mesh", "mesh_valid", "pose3d", "pose3d_valid", "pose3d_h36m", "pose3d_h36m_valid")
PREVIEW_HEIGHT = 256  # pixels of the validation mesh image (kept small: it is rendered every validation)


@torch.no_grad()
def predict(model: nn.Module, loader: torch.utils.data.DataLoader, device: torch.device) -> dict:
    """Run ``model`` over ``loader`` in order; concatenate predictions, targets, video ids and target
    frame numbers (N,) on the CPU."""
    model.eval()
    parts: dict[str, list] = {"video": [], "frame": []}
    for batch in loader:
        preds = prediction_dict(model(batch["pose2d"].to(device), batch["img_feat"].to(device)))
        for key, value in [*preds.items(), *((k, batch[k]) for k in TARGET_KEYS if k in batch)]:
            parts.setdefault(key, []).append(value.float().cpu())
        parts["video"].extend(batch["video"])
        parts["frame"].append(batch["frame"])
    return {k: v if k == "video" else torch.cat(v) for k, v in parts.items()}


def prediction_dict(output: Tensor | tuple) -> dict[str, Tensor]:
    """The model's output by name: 'pred_pose3d' (stage 1), or 'pred_mesh', 'pred_joints', 'pred_pose3d'."""
    if isinstance(output, Tensor):
        return {"pred_pose3d": output}
    return {f"pred_{k}": v for k, v in output._asdict().items()}


def pose_metrics(pred: Tensor, gt: Tensor, videos: list, root: int) -> dict[str, float]:
    """Stage-1 scores (mm) on all joints of the input set, rooted at ``root``: MPJPE, PA-MPJPE, ACCEL."""
    pred_mm = (pred - pred[:, root : root + 1]) * MM_PER_M
    gt_mm = (gt - gt[:, root : root + 1]) * MM_PER_M
    accel = metrics.accel_interior_mean(metrics.accel_per_sequence(pred_mm, gt_mm, videos))
    return {
        "MPJPE": float(metrics.mpjpe(pred_mm, gt_mm)),
        "PA-MPJPE": float(metrics.pa_mpjpe(pred_mm, gt_mm)),
        "ACCEL": float(accel),
    }


def score(
    predictions: dict,
    joint_set: str,
    smpl_regressor: Tensor | None = None,
    h36m_regressor: Tensor | None = None,
    mode: str = "full",
) -> dict[str, float]:
    """Metrics (mm) of ``predict``'s output: pose-stream scores when there is no mesh (stage 1), else the
    3DPW mesh protocol on the frames with a valid ground-truth mesh (needs the SMPL-24 and H36M-17
    regressors)."""
    p = predictions
    if "pred_mesh" not in p:
        return pose_metrics(p["pred_pose3d"], p["pose3d"], p["video"], JOINT_SETS[joint_set].index("Pelvis"))
    keep = p["mesh_valid"].bool()
    videos = [v for v, k in zip(p["video"], keep.tolist(), strict=True) if k]
    return evaluate_mesh_sequences(p["pred_mesh"][keep], p["mesh"][keep], videos, smpl_regressor,
                                   h36m_regressor, mode)  # fmt: skip


def make_validator(
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    joint_set: str,
    smpl_regressor: Tensor | None = None,
    h36m_regressor: Tensor | None = None,
    mode: str = "full",
) -> Callable[[nn.Module], dict[str, float]]:
    """model -> ``score`` of its predictions on ``loader`` (the training mode is restored after)."""

    def validate(model: nn.Module) -> dict[str, float]:
        was_training = model.training
        predictions = predict(model, loader, device)
        model.train(was_training)
        return score(predictions, joint_set, smpl_regressor, h36m_regressor, mode)

    return validate


def make_preview(
    dataset: torch.utils.data.Dataset, faces: Tensor, device: torch.device, index: int | None = None
) -> Callable[[nn.Module], np.ndarray]:
    """model -> (PREVIEW_HEIGHT, W, 3) uint8 RGB image of its mesh for one fixed window of ``dataset``
    (the middle one by default) next to the ground truth; the training mode is restored after."""
    item = default_collate([dataset[len(dataset) // 2 if index is None else index]])
    caption = f"{item['video'][0]} frame {int(item['frame'][0])}"
    faces_np = faces.cpu().numpy()

    @torch.no_grad()
    def preview(model: nn.Module) -> np.ndarray:
        was_training = model.training
        model.eval()
        mesh = prediction_dict(model(item["pose2d"].to(device), item["img_feat"].to(device)))["pred_mesh"]
        model.train(was_training)
        image = compare_meshes(mesh[0].float().cpu().numpy(), item["mesh"][0].numpy(), faces_np,
                               height=PREVIEW_HEIGHT, caption=caption)  # fmt: skip
        return np.ascontiguousarray(image[..., ::-1])  # OpenCV's BGR -> TensorBoard's RGB

    return preview
