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


@dataclass(frozen=True)
class FaceEdges:
    """The edge vectors v1-v0, v2-v0, v2-v1 of every face (B, F, 3, 3) and their lengths (B, F, 3).

    Computed once per mesh and shared by the normal and edge-length terms (the gathers and norms over
    41k face edges are a large part of a CPU training step).
    """

    vectors: Tensor
    lengths: Tensor


def face_edges(vertices: Tensor, faces: Tensor) -> FaceEdges:
    """vertices: (B, V, 3), faces: (F, 3) long -> their FaceEdges."""
    corners = vertices.index_select(1, faces.reshape(-1)).view(vertices.shape[0], -1, 3, 3)  # (B, F, 3, 3)
    v0, v1, v2 = corners.unbind(dim=2)  # one gather: its backward is much cheaper than three
    vectors = torch.stack([v1 - v0, v2 - v0, v2 - v1], dim=2)
    return FaceEdges(vectors, vectors.norm(dim=-1))


def _per_sample_mean(values: Tensor, valid: Tensor) -> Tensor:
    """values: (B, ...) averaged over valid samples (B,) and all other axes."""
    per_sample = values.flatten(1).mean(dim=1)
    weights = valid.to(values.dtype)
    return (per_sample * weights).sum() / weights.sum().clamp(min=1.0)


def normal_loss(pred: FaceEdges, target: FaceEdges, valid: Tensor) -> Tensor:
    """Mean |cos| between each ground-truth face normal and the predicted face's edges; valid: (B,)."""
    gt_normal = torch.cross(target.vectors[:, :, 0], target.vectors[:, :, 1], dim=-1)  # (B, F, 3)
    gt_normal = F.normalize(gt_normal, dim=-1)
    # |e . n| / |e| with F.normalize's guard against zero-length edges
    dots = (pred.vectors * gt_normal.unsqueeze(2)).sum(-1).abs()  # (B, F, 3)
    return _per_sample_mean(dots / pred.lengths.clamp(min=1e-12), valid)


def edge_length_loss(pred: FaceEdges, target: FaceEdges, valid: Tensor) -> Tensor:
    """Mean |length_pred - length_gt| over the three edges of every face; valid: (B,)."""
    return _per_sample_mean((pred.lengths - target.lengths).abs(), valid)


@dataclass(frozen=True)
class LossWeights:
    pose: float = 1.0  # stage 1 and the pose-stream term of stage 2
    mesh: float = 1.0  # lambda_m
    joint: float = 1.0  # lambda_j, each joint term
    normal: float = 0.1  # lambda_n
    edge: float = 20.0  # lambda_e
    accel: float = 0.0  # acceleration of consecutive targets (batches of temporal groups)
    group: int = 1  # consecutive windows per group in the batch (lib/data/temporal_groups.py)


def accel_term(
    pred: Tensor, target: Tensor, valid: Tensor, batch: dict, weights: LossWeights
) -> Tensor | None:
    """The acceleration loss over the batch's leading temporal groups (``batch["temporal_groups"]`` of
    ``weights.group`` items; pred, target (N, K, 3), valid (N,)); 0 for a batch without a group, so that
    every process logs the same terms; None when the term is off."""
    if weights.group < 3 or weights.accel <= 0:
        return None
    n = int(batch["temporal_groups"]) * weights.group
    if n == 0:
        return pred.new_zeros(())
    return accel_loss(pred[:n], target[:n], valid[:n], weights.group)


def pose_losses(pred_pose3d: Tensor, batch: dict[str, Tensor], weights: LossWeights) -> dict[str, Tensor]:
    """Stage 1: L1 on the target-frame 3D pose of the input joint set."""
    term = masked_l1(pred_pose3d, batch["pose3d"], batch["pose3d_valid"])
    terms = {"pose": term, "total": weights.pose * term}
    accel = accel_term(pred_pose3d, batch["pose3d"], batch["pose3d_valid"].all(-1), batch, weights)
    if accel is not None:
        terms["accel"] = accel
        terms["total"] = terms["total"] + weights.accel * accel
    return terms


def accel_loss(pred: Tensor, target: Tensor, valid: Tensor, group: int) -> Tensor:
    """Mean |a_pred - a_target| of the second differences over each group's consecutive items.

    pred, target: (B * G, N, 3), groups contiguous; valid: (B * G,) -> a group counts where all its items
    are valid."""
    p, t = (x.unflatten(0, (-1, group)) for x in (pred, target))  # (B, G, N, 3)
    accel = (p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]) - (t[:, 2:] - 2 * t[:, 1:-1] + t[:, :-2])
    ok = valid.unflatten(0, (-1, group)).all(dim=1).to(pred.dtype)  # (B,)
    per_group = accel.abs().mean(dim=(1, 2, 3))
    return (per_group * ok).sum() / ok.sum().clamp(min=1.0)


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
    }
    pred_edges, target_edges = face_edges(output.mesh, faces), face_edges(batch["mesh"], faces)
    terms["normal"] = normal_loss(pred_edges, target_edges, mesh_valid)
    total = (
        weights.mesh * terms["mesh"]
        + weights.joint * (terms["mesh_joint"] + terms["refined_joint"])
        + weights.pose * terms["pose"]
        + weights.normal * terms["normal"]
    )
    if use_edge:
        terms["edge"] = edge_length_loss(pred_edges, target_edges, mesh_valid)
        total = total + weights.edge * terms["edge"]
    accel = accel_term(output.mesh, batch["mesh"], mesh_valid, batch, weights)
    if accel is not None:
        terms["accel"] = accel
        total = total + weights.accel * accel
    terms["total"] = total
    return terms
