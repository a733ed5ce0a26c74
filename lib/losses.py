"""Training losses, all in metres (paper section 3.3).

Every term is masked by its validity flags and averaged over the valid elements only (the official
code multiplies by the mask but divides by all elements, and lets invalid meshes supervise the surface
terms; both are fixed here). Shapes: B batch, J joints, V vertices, F faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_l1(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Mean |pred - target| over valid entries. pred, target: (B, N, 3); valid: (B, N) or (B,)."""
    mask = valid.reshape(valid.shape + (1,) * (pred.ndim - valid.ndim)).to(pred.dtype).expand_as(pred)
    return ((pred - target).abs() * mask).sum() / mask.sum().clamp(min=1.0)


def _edges(vertices: Tensor, faces: Tensor) -> Tensor:
    """Edge vectors v1-v0, v2-v0, v2-v1 of every face. vertices: (B, V, 3) -> (B, F, 3, 3)."""
    corners = vertices.index_select(1, faces.reshape(-1)).view(vertices.shape[0], -1, 3, 3)  # (B, F, 3, 3)
    v0, v1, v2 = corners.unbind(dim=2)  # one gather: its backward is much cheaper than three
    return torch.stack([v1 - v0, v2 - v0, v2 - v1], dim=2)


def _per_sample_mean(values: Tensor, valid: Tensor) -> Tensor:
    """values: (B, ...) averaged over valid samples (B,) and all other axes."""
    per_sample = values.flatten(1).mean(dim=1)
    weights = valid.to(values.dtype)
    return (per_sample * weights).sum() / weights.sum().clamp(min=1.0)


def normal_loss(pred: Tensor, target: Tensor, faces: Tensor, valid: Tensor) -> Tensor:
    """Mean |cos| between each ground-truth face normal and the predicted face's edges.

    pred, target: (B, V, 3); faces: (F, 3) long; valid: (B,) mesh validity.
    """
    gt_edges = _edges(target, faces)
    gt_normal = F.normalize(torch.cross(gt_edges[:, :, 0], gt_edges[:, :, 1], dim=-1), dim=-1)  # (B, F, 3)
    pred_dirs = F.normalize(_edges(pred, faces), dim=-1)  # (B, F, 3, 3)
    cosines = (pred_dirs * gt_normal.unsqueeze(2)).sum(-1).abs()  # (B, F, 3)
    return _per_sample_mean(cosines, valid)


def edge_length_loss(pred: Tensor, target: Tensor, faces: Tensor, valid: Tensor) -> Tensor:
    """Mean |length_pred - length_gt| over the three edges of every face; (B, V, 3), (F, 3), (B,)."""
    lengths = (_edges(pred, faces).norm(dim=-1) - _edges(target, faces).norm(dim=-1)).abs()
    return _per_sample_mean(lengths, valid)


@dataclass(frozen=True)
class LossWeights:
    pose: float = 1.0  # stage 1 and the pose-stream term of stage 2
    mesh: float = 1.0  # lambda_m
    joint: float = 1.0  # lambda_j, each joint term
    normal: float = 0.1  # lambda_n
    edge: float = 20.0  # lambda_e


def pose_losses(pred_pose3d: Tensor, batch: dict[str, Tensor], weights: LossWeights) -> dict[str, Tensor]:
    """Stage 1: L1 on the target-frame 3D pose of the input joint set."""
    term = masked_l1(pred_pose3d, batch["pose3d"], batch["pose3d_valid"])
    return {"pose": term, "total": weights.pose * term}


def mesh_losses(
    output,
    batch: dict[str, Tensor],
    faces: Tensor,
    mesh_regressor: Tensor,
    target_key: str,
    weights: LossWeights,
    use_edge: bool,
) -> dict[str, Tensor]:
    """Stage 2 terms and their weighted sum.

    ``output``: PMCEOutput (mesh (B, V, 3), joints (B, J, 3), pose3d (B, J, 3)). ``mesh_regressor``
    (K, V) maps meshes to the target joint set, compared with ``batch[target_key]`` (B, K, 3)
    ('pose3d_h36m' or 'pose3d') under ``batch[target_key + '_valid']``.
    """
    mesh_valid = batch["mesh_valid"]
    mesh_joints = torch.einsum("kv,bvc->bkc", mesh_regressor, output.mesh)
    terms = {
        "mesh": masked_l1(output.mesh, batch["mesh"], mesh_valid),
        "mesh_joint": masked_l1(mesh_joints, batch[target_key], batch[f"{target_key}_valid"]),
        "refined_joint": masked_l1(output.joints, batch["pose3d"], batch["pose3d_valid"]),
        "pose": masked_l1(output.pose3d, batch["pose3d"], batch["pose3d_valid"]),
        "normal": normal_loss(output.mesh, batch["mesh"], faces, mesh_valid),
    }
    total = (
        weights.mesh * terms["mesh"]
        + weights.joint * (terms["mesh_joint"] + terms["refined_joint"])
        + weights.pose * terms["pose"]
        + weights.normal * terms["normal"]
    )
    if use_edge:
        terms["edge"] = edge_length_loss(output.mesh, batch["mesh"], faces, mesh_valid)
        total = total + weights.edge * terms["edge"]
    terms["total"] = total
    return terms
