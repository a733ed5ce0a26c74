"""Rotations in torch, batched: axis-angle <-> matrices, cross products, temporal smoothing."""

from __future__ import annotations

import numpy as np
import torch


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices: skew(a) @ b = a x b."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).unflatten(-1, (3, 3))


def cross_of_outer(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) sums of outer products a b^T -> (..., 3) the sums of a x b."""
    return torch.stack(
        [m[..., 1, 2] - m[..., 2, 1], m[..., 2, 0] - m[..., 0, 2], m[..., 0, 1] - m[..., 1, 0]], -1
    )


def rodrigues(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices; Taylor terms near angle 0."""
    theta2 = rotvec.square().sum(-1)[..., None, None]
    small = theta2 < 1e-6
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / safe2)
    k = skew(rotvec)
    return torch.eye(3, dtype=rotvec.dtype, device=rotvec.device) + a * k + b * (k @ k)


def matrix_to_axis_angle(rot: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi]; stable near 0 and pi."""
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = rot.flatten(-2).unbind(-1)
    # Each row is the quaternion (w, x, y, z) times 4 q_i; the row with the largest |q_i| is well conditioned.
    rows = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # (..., 4, 4)
    best = rows.diagonal(dim1=-2, dim2=-1).argmax(-1)
    q = torch.gather(rows, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0)  # w >= 0: angle in [0, pi]
    q = q / q.norm(dim=-1, keepdim=True)
    w, xyz = q[..., 0], q[..., 1:]
    n = xyz.norm(dim=-1)
    angle = 2 * torch.atan2(n, w)
    factor = torch.where(n > 1e-6, angle / n.clamp_min(1e-6), 2 / w.clamp_min(1e-6))
    return xyz * factor[..., None]


def temporal_gaussian_mean(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, ...) values over N frames -> their Gaussian-weighted means over frames (``sigma`` in frames,
    taps within 3 sigma; 0: unchanged); the ends use the frames that exist."""
    if sigma <= 0 or len(values) < 2:
        return values
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    frames = np.arange(len(values))
    index = np.clip(frames[:, None] + offsets, 0, len(values) - 1)  # (N, taps)
    inside = (frames[:, None] + offsets >= 0) & (frames[:, None] + offsets < len(values))
    weights = torch.as_tensor(np.exp(-0.5 * (offsets / sigma) ** 2) * inside, dtype=values.dtype)
    weights = (weights / weights.sum(1, keepdim=True)).to(values.device)
    return torch.einsum("nt,nt...->n...", weights, values[torch.as_tensor(index, device=values.device)])


def smooth_rotations(rot: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, ..., 3, 3) rotations over N frames -> the same, Gaussian-smoothed over frames (``sigma`` in
    frames; 0: unchanged). Each frame's result is the rotation nearest (SVD projection) to the weighted
    mean of the matrices within 3 sigma; the ends use the frames that exist."""
    if sigma <= 0 or len(rot) < 2:
        return rot
    u, _, vh = torch.linalg.svd(temporal_gaussian_mean(rot, sigma))
    fix = torch.ones(u.shape[:-1], dtype=rot.dtype, device=rot.device)
    fix[..., -1] = torch.linalg.det(u @ vh).sign()
    return u @ torch.diag_embed(fix) @ vh
