"""Evaluation metrics: MPJPE, PA-MPJPE, PVE, ACCEL, PCK / AUC and per-group means.

Units. Every function here except ``pck`` / ``auc`` is unit-agnostic: errors come out in the unit of the
inputs and nothing is rescaled. ``pck`` / ``auc`` compare errors with thresholds that the MPI-INF-3DHP
protocol defines in millimetres, so their arguments are named ``*_mm`` and must be millimetres. The
protocol functions in ``lib/eval/protocols.py`` take metres (the model's unit), convert to millimetres
once on entry, exactly like the official Tester, and report millimetres.

Shapes: N frames, J joints, V vertices, P points (J or V), S sequences. Functions are batched over N,
keep the input dtype (pass float64 for reference-grade numbers) and device, and never move data.

ACCEL follows VIBE / HMMR: the second finite difference ``x[t-1] - 2 x[t] + x[t+1]`` of prediction and
ground truth, Euclidean norm of their difference, mean over joints, one value per interior frame of a
sequence, in <unit>/frame^2 (no fps scaling). Two aggregations over sequences:
* ``accel_official``: the official PMCE quirk; each sequence's L-2 values are zero-padded to L, averaged
  and weighted by L, and the total is divided by the number of frames, so boundary frames count as 0.
* ``accel_interior_mean``: the plain mean over all interior frames (the corrected protocol).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(5.0 * i for i in range(31))  # 0, 5, ..., 150 mm


def point_errors(pred: Tensor, gt: Tensor) -> Tensor:
    """Euclidean distance per point. pred, gt: (N, P, 3) -> (N, P)."""
    return torch.linalg.vector_norm(pred - gt, dim=-1)


def mpjpe(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean per-joint position error over frames and joints. pred, gt: (N, J, 3) -> scalar."""
    return point_errors(pred, gt).mean()


def pve(pred_verts: Tensor, gt_verts: Tensor) -> Tensor:
    """Mean per-vertex error, no re-alignment. pred_verts, gt_verts: (N, V, 3) -> scalar."""
    return point_errors(pred_verts, gt_verts).mean()


class Similarity(NamedTuple):
    """Result of ``similarity_procrustes``: ``aligned = scale * R @ pred + t`` per frame."""

    aligned: Tensor  # (N, P, 3)
    scale: Tensor  # (N,)
    rotation: Tensor  # (N, 3, 3)
    translation: Tensor  # (N, 3)


def similarity_procrustes(pred: Tensor, gt: Tensor) -> Similarity:
    """Per-frame least-squares similarity transform (Umeyama) of pred onto gt, with reflection fix.

    Same computation as the official ``rigid_transform_3D`` / ``rigid_align``: H = A_c^T B_c / P,
    U S V^T = H, R = V D U^T with D = diag(1, 1, sign det(V U^T)), scale = tr(D S) / total variance of
    A, t = mu_B - scale R mu_A. pred, gt: (N, P, 3). A frame holding NaN / inf gets a NaN scale, translation
    and alignment (its SVD would fail: LinAlgError), so its errors are NaN.
    """
    mu_pred, mu_gt = pred.mean(dim=1, keepdim=True), gt.mean(dim=1, keepdim=True)  # (N, 1, 3)
    pred_c, gt_c = pred - mu_pred, gt - mu_gt
    cov = pred_c.transpose(1, 2) @ gt_c / pred.shape[1]  # (N, 3, 3)
    finite = torch.isfinite(cov).all(dim=(1, 2))  # (N,)
    u, s, vh = torch.linalg.svd(torch.where(finite[:, None, None], cov, torch.zeros_like(cov)))
    v_ut = vh.transpose(1, 2) @ u.transpose(1, 2)
    sign = torch.where(torch.linalg.det(v_ut) < 0, -1.0, 1.0).to(pred.dtype)  # (N,)
    fix = torch.ones_like(s)
    fix[:, -1] = sign
    rotation = vh.transpose(1, 2) @ torch.diag_embed(fix) @ u.transpose(1, 2)
    variance = pred_c.square().sum(dim=(1, 2)) / pred.shape[1]  # (N,) sum of per-axis variances
    scale = torch.where(finite, (s * fix).sum(dim=1) / variance, torch.nan)
    translation = mu_gt[:, 0] - scale[:, None] * (rotation @ mu_pred[:, 0, :, None])[..., 0]
    aligned = scale[:, None, None] * pred @ rotation.transpose(1, 2) + translation[:, None]
    return Similarity(aligned, scale, rotation, translation)


def pa_point_errors(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-joint error after per-frame similarity Procrustes. pred, gt: (N, J, 3) -> (N, J)."""
    return point_errors(similarity_procrustes(pred, gt).aligned, gt)


def pa_mpjpe(pred: Tensor, gt: Tensor) -> Tensor:
    """Procrustes-aligned MPJPE (per-frame similarity). pred, gt: (N, J, 3) -> scalar."""
    return pa_point_errors(pred, gt).mean()


def acceleration(points: Tensor) -> Tensor:
    """Second finite difference per interior frame of one sequence. points: (L, P, 3) -> (L-2, P, 3)."""
    return points[:-2] - 2 * points[1:-1] + points[2:]


def accel_error(pred: Tensor, gt: Tensor) -> Tensor:
    """Acceleration error of one sequence, per interior frame. pred, gt: (L, J, 3) -> (L-2,).

    Sequences shorter than 3 frames give an empty tensor.
    """
    return point_errors(acceleration(pred), acceleration(gt)).mean(dim=-1)


def sequence_spans(seq_ids: Sequence[Hashable] | Tensor) -> list[tuple[int, int]]:
    """[start, end) of each run of equal consecutive ids, in order. seq_ids: (N,)."""
    ids = seq_ids.tolist() if isinstance(seq_ids, Tensor) else list(seq_ids)
    starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]
    return list(zip(starts, [*starts[1:], len(ids)], strict=True))


def accel_per_sequence(
    pred: Tensor, gt: Tensor, seq_ids: Sequence[Hashable] | Tensor, valid: Tensor | None = None
) -> list[Tensor]:
    """ACCEL per interior frame of every sequence (runs of equal consecutive ``seq_ids``).

    pred, gt: (N, J, 3); seq_ids: (N,); valid: (N,) bool or None. Returns S tensors of shape (L_s - 2,);
    with ``valid``, a value is kept only when its three frames t-1, t, t+1 are valid (VIBE's ``vis``).
    """
    errors = []
    for start, end in sequence_spans(seq_ids):
        err = accel_error(pred[start:end], gt[start:end])
        if valid is not None:
            v = valid[start:end]
            err = err[v[:-2] & v[1:-1] & v[2:]]
        errors.append(err)
    return errors


def accel_official(per_sequence: Sequence[Tensor], num_frames: int) -> Tensor:
    """Official PMCE aggregation: sum of all interior errors / number of frames (ends count as 0).

    Equals sum_s L_s * mean(zero-padded errors of s) / sum_s L_s. per_sequence: S tensors (L_s - 2,).
    """
    return torch.cat(list(per_sequence)).sum() / num_frames


def accel_interior_mean(per_sequence: Sequence[Tensor]) -> Tensor:
    """Mean over all interior frames of all sequences (NaN when there is none). S tensors (L_s - 2,)."""
    return torch.cat(list(per_sequence)).mean()


def pck(errors_mm: Tensor, threshold_mm: float = PCK_THRESHOLD_MM) -> Tensor:
    """Fraction of joint errors strictly below the threshold (MPI-INF-3DHP PCK). errors_mm: (N, J)."""
    return (errors_mm < threshold_mm).to(errors_mm.dtype).mean()


def auc(errors_mm: Tensor, thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM) -> Tensor:
    """Area under the PCK curve: mean PCK over the thresholds (0..150 mm, 31 steps). errors_mm: (N, J)."""
    return torch.stack([pck(errors_mm, t) for t in thresholds_mm]).mean()


def group_means(values: Tensor, groups: Sequence[Hashable]) -> dict[Hashable, Tensor]:
    """Mean of ``values`` per group label, in order of first appearance. values: (N,), groups: (N,)."""
    positions = {label: i for i, label in enumerate(dict.fromkeys(groups))}
    labels = list(positions)
    index = torch.tensor([positions[g] for g in groups], device=values.device)
    sums = torch.zeros(len(labels), dtype=values.dtype, device=values.device).index_add_(0, index, values)
    counts = torch.bincount(index, minlength=len(labels)).to(values.dtype)
    return {label: mean for label, mean in zip(labels, sums / counts, strict=True)}
