"""2D keypoint conventions shared by the data pipeline, the generator and the demo (numpy, torch-free).

* COCO-19 = COCO-17 + Pelvis (mean of the hips) + Neck (mean of the shoulders), the official input set;
  a derived joint's confidence is the lower of its two parents'.
* Screen normalisation (paper eq. 5): x / w * 2 - 1, y / w * 2 - h / w, so x lies in [-1, 1] and the
  aspect ratio is kept.
* Pinhole projection of camera-frame points to pixels, with the caller's choice of depth clamp.
* The target frame of a window: the one frame of the T input frames whose pose and mesh are predicted.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

COCO17_L_SHOULDER, COCO17_R_SHOULDER, COCO17_L_HIP, COCO17_R_HIP = 5, 6, 11, 12


def add_pelvis_neck(points: np.ndarray) -> np.ndarray:
    """(..., 17, C) COCO-17 points (2D or 3D) -> (..., 19, C) COCO-19."""
    pelvis = (points[..., COCO17_L_HIP, :] + points[..., COCO17_R_HIP, :]) / 2
    neck = (points[..., COCO17_L_SHOULDER, :] + points[..., COCO17_R_SHOULDER, :]) / 2
    return np.concatenate([points, pelvis[..., None, :], neck[..., None, :]], axis=-2)


def add_pelvis_neck_scores(scores: np.ndarray) -> np.ndarray:
    """(..., 17) COCO-17 confidences -> (..., 19): a derived joint is as sure as its less sure parent."""
    pelvis = np.minimum(scores[..., COCO17_L_HIP], scores[..., COCO17_R_HIP])
    neck = np.minimum(scores[..., COCO17_L_SHOULDER], scores[..., COCO17_R_SHOULDER])
    return np.concatenate([scores, pelvis[..., None], neck[..., None]], axis=-1)


def add_pelvis_neck_scored(kp: np.ndarray) -> np.ndarray:
    """(..., 17, C + 1) points with a confidence last -> (..., 19, C + 1)."""
    return np.concatenate(
        [add_pelvis_neck(kp[..., :-1]), add_pelvis_neck_scores(kp[..., -1])[..., None]], axis=-1
    )


def normalize_screen(xy: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Pixels (..., J, 2) -> eq. 5; ``size`` (w, h) of the frame: (2,) or one per leading index (..., 2)."""
    size = np.asarray(size, dtype=np.float64)
    w, h = size[..., None, 0:1], size[..., None, 1:2]
    return xy / w * 2 - np.concatenate(np.broadcast_arrays(np.ones_like(h), h / w), axis=-1)


def denormalize_screen(xy: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize_screen`."""
    size = np.asarray(size, dtype=np.float64)
    w, h = size[..., None, 0:1], size[..., None, 1:2]
    return (xy + np.concatenate(np.broadcast_arrays(np.ones_like(h), h / w), axis=-1)) * w / 2


DepthClamp = Literal["none", "floor", "nonzero"]


def project_pinhole(
    points: np.ndarray,
    focal: np.ndarray | tuple[float, float] | float,
    center: np.ndarray | tuple[float, float],
    *,
    clamp: DepthClamp = "none",
    eps: float = 0.0,
) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels, ``xy / z * focal + center``; ``focal`` and
    ``center`` (fx, fy), (cx, cy) broadcast against (..., 2), e.g. (2,) or one pair per frame (N, 1, 2).

    Callers differ on points near or behind the camera, so the depth clamp is theirs to state:
    'none' (the demo: fitted depths are positive by construction); 'floor' (z < eps becomes eps: a point
    behind the camera lands far outside the image; the synthetic generator); 'nonzero' (only |z| < eps
    becomes eps, which keeps the division finite and leaves every other point as the official readers
    project it).
    """
    z = points[..., 2:3]
    if clamp == "floor":
        z = np.maximum(z, eps)
    elif clamp == "nonzero":
        z = np.where(np.abs(z) < eps, eps, z)
    elif clamp != "none":
        raise ValueError(f"unknown depth clamp {clamp!r}; expected 'none', 'floor' or 'nonzero'")
    return points[..., :2] / z * focal + center  # no np.asarray: a float focal keeps float32 points float32


def resolve_target_index(seq_len: int, target_index: int | None) -> int:
    """The window position that is predicted: ``target_index``, or ``seq_len // 2`` when None or -1."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if target_index is None or target_index == -1:
        return seq_len // 2
    if not 0 <= target_index < seq_len:
        raise ValueError(f"target_index must be -1, None or in [0, {seq_len - 1}], got {target_index}")
    return target_index
