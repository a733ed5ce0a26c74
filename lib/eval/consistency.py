"""Pose quality without a per-frame target: how rigid and how steady a 3D skeleton is over time, and its
limb error after alignment. Used by the demo's statistics on real footage and by the evaluation's
detector baseline (BlazePose's world landmarks on the same frames).

Joints are COCO-17 (N, >=17, 3) in metres; NaN frames are skipped.

* bone-length std: over frames, of 12 bones (upper and lower arms and legs, shoulders, hips, flanks),
  averaged over the bones, mm; a rigid body has 0.
* acceleration: mean |x[t+1] - 2 x[t] + x[t-1]| of the hip-centred joints, mm/frame^2.
* limb PA-MPJPE: the 12 limb joints (shoulders, elbows, wrists, hips, knees, ankles) after a similarity
  Procrustes alignment per frame, mm.
"""

from __future__ import annotations

import numpy as np

COCO17_BONES = (
    (5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16),
    (5, 6), (11, 12), (5, 11), (6, 12),
)  # fmt: skip
COCO17_LIMB_JOINTS = tuple(range(5, 17))
COCO17_HIPS = (11, 12)


def bone_length_std_mm(joints: np.ndarray) -> float:
    """Mean over the bones of the std over frames of each bone's length (frames with NaN skipped)."""
    a, b = np.array(COCO17_BONES).T
    lengths = np.linalg.norm(joints[:, a] - joints[:, b], axis=-1)  # (N, bones)
    lengths = lengths[np.isfinite(lengths).all(axis=1)]
    return float(1000 * lengths.std(axis=0).mean()) if len(lengths) > 1 else float("nan")


def acceleration_mm(joints: np.ndarray) -> float:
    """Mean joint acceleration of the hip-centred COCO-17 joints, mm/frame^2 (triples with NaN skipped)."""
    centred = joints[:, :17] - joints[:, list(COCO17_HIPS)].mean(axis=1, keepdims=True)
    accel = np.linalg.norm(centred[2:] - 2 * centred[1:-1] + centred[:-2], axis=-1)  # (N - 2, 17)
    accel = accel[np.isfinite(accel).all(axis=1)]
    return float(1000 * accel.mean()) if len(accel) else float("nan")


def limb_pa_mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) PA-MPJPE of the 12 limb joints of (N, >=17, 3) predictions against the targets, mm."""
    p, g = pred[:, list(COCO17_LIMB_JOINTS)], gt[:, list(COCO17_LIMB_JOINTS)]
    p, g = p - p.mean(axis=1, keepdims=True), g - g.mean(axis=1, keepdims=True)
    u, sigma, vt = np.linalg.svd(np.einsum("nji,njk->nik", p, g))
    flip = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    sigma[:, -1] *= flip
    u[:, :, -1] *= flip[:, None]
    rotation = np.einsum("nij,njk->nik", u, vt)  # p @ rotation ~ g
    scale = sigma.sum(axis=1) / np.maximum((p**2).sum(axis=(1, 2)), 1e-12)
    aligned = scale[:, None, None] * np.einsum("nji,nik->njk", p, rotation)
    return 1000 * np.linalg.norm(aligned - g, axis=-1).mean(axis=1)
