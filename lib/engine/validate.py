"""Validation during training: predict every window of a loader and score it with the protocols; render
one fixed window's mesh for TensorBoard.

Shapes: N windows (one target frame each), J joints, V vertices.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from lib import metrics
from lib.constants import JOINT_SETS
from lib.eval.mesh_view import compare_meshes
from lib.eval.protocols import (
    MM_PER_M,
    evaluate_joints,
    evaluate_mesh_pve,
    h36m_joints_from_mesh,
    uses_annotated_joints,
)
from lib.eval.selection import sequence_ids

TARGET_KEYS = ("mesh", "mesh_valid", "pose3d", "pose3d_valid", "pose3d_h36m", "pose3d_h36m_valid")
# Metadata of each window's target frame that the protocols use (lib/data/video_dataset.py).
META_KEYS = ("frame", "segment", "camera_id", "frame_valid")
PREVIEW_HEIGHT = 256  # pixels of the validation mesh image (kept small: it is rendered every validation)


@torch.no_grad()
def predict(model: nn.Module, loader: torch.utils.data.DataLoader, device: torch.device) -> dict:
    """Run ``model`` over ``loader`` in order; concatenate on the CPU the predictions, the targets and,
    per window, its target frame's video id, frame number, segment, camera id and valid flag (N,)."""
    model.eval()
    parts: dict[str, list] = {"video": [], **{key: [] for key in META_KEYS}}
    for batch in loader:
        preds = prediction_dict(model(batch["pose2d"].to(device), batch["img_feat"].to(device)))
        for key, value in [*preds.items(), *((k, batch[k]) for k in TARGET_KEYS if k in batch)]:
            parts.setdefault(key, []).append(value.float().cpu())
        parts["video"].extend(batch["video"])
        for key in META_KEYS:
            parts[key].append(batch[key])
    return {k: v if k == "video" else torch.cat(v) for k, v in parts.items()}


def select_frames(predictions: dict, keep: Tensor) -> dict:
    """The frames of ``predict``'s output where ``keep`` (N,) bool is True."""
    videos = [v for v, k in zip(predictions["video"], keep.tolist(), strict=True) if k]
    return {k: videos if k == "video" else v[keep] for k, v in predictions.items()}


def prediction_dict(output: Tensor | tuple) -> dict[str, Tensor]:
    """The model's output by name: 'pred_pose3d' (stage 1), or 'pred_mesh', 'pred_joints', 'pred_pose3d'."""
    if isinstance(output, Tensor):
        return {"pred_pose3d": output}
    return {f"pred_{k}": v for k, v in output._asdict().items()}


def pose_metrics(pred: Tensor, gt: Tensor, seq_ids: Sequence[Hashable], root: int) -> dict[str, float]:
    """Stage-1 scores (mm) on all joints of the input set, rooted at ``root``: MPJPE, PA-MPJPE, ACCEL."""
    pred_mm = (pred - pred[:, root : root + 1]) * MM_PER_M
    gt_mm = (gt - gt[:, root : root + 1]) * MM_PER_M
    accel = metrics.accel_interior_mean(metrics.accel_per_sequence(pred_mm, gt_mm, seq_ids))
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
    dataset: str = "",
) -> dict[str, float]:
    """Metrics (mm) of ``predict``'s output under ``dataset``'s protocol (lib/eval/protocols.py).

    Stage 1 (no mesh): pose-stream scores. Stage 2 (needs the SMPL-24 and H36M-17 regressors): the
    Human3.6M-17 joints regressed from the predicted mesh against the protocol's ground truth on the
    frames that have it, and PVE on the frames with a valid ground-truth mesh.
    """
    p = predictions
    seq_ids = sequence_ids(p["video"], p["segment"].tolist())
    if "pred_mesh" not in p:
        return pose_metrics(p["pred_pose3d"], p["pose3d"], seq_ids, JOINT_SETS[joint_set].index("Pelvis"))
    mesh_ok = p["mesh_valid"].bool()
    if uses_annotated_joints(dataset):
        gt, has_gt = p["pose3d_h36m"], p["pose3d_h36m_valid"][:, 0].bool()
    else:
        gt, has_gt = h36m_joints_from_mesh(p["mesh"], smpl_regressor, h36m_regressor), mesh_ok
    pred = h36m_joints_from_mesh(p["pred_mesh"], smpl_regressor, h36m_regressor)
    values = evaluate_joints(dataset, pred[has_gt], gt[has_gt], seq_ids[has_gt.numpy()],
                             p["frame_valid"][has_gt], mode)  # fmt: skip
    if mesh_ok.any():
        values["PVE"] = evaluate_mesh_pve(p["pred_mesh"][mesh_ok], p["mesh"][mesh_ok], smpl_regressor)
    return values


def make_validator(
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    joint_set: str,
    smpl_regressor: Tensor | None = None,
    h36m_regressor: Tensor | None = None,
    mode: str = "full",
    dataset: str = "",
) -> Callable[[nn.Module], dict[str, float]]:
    """model -> ``score`` of its predictions on ``loader`` (the training mode is restored after)."""

    def validate(model: nn.Module) -> dict[str, float]:
        was_training = model.training
        predictions = predict(model, loader, device)
        model.train(was_training)
        return score(predictions, joint_set, smpl_regressor, h36m_regressor, mode, dataset)

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
