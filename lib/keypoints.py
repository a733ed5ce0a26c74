"""2D keypoint conventions shared by the data pipeline, the generator and the demo (numpy, torch-free).

* COCO-19 = COCO-17 + Pelvis (mean of the hips) + Neck (mean of the shoulders), the official input set;
  a derived joint's confidence is the lower of its two parents'.
* Screen normalisation (paper eq. 5): x / w * 2 - 1, y / w * 2 - h / w, so x lies in [-1, 1] and the
  aspect ratio is kept.
"""

from __future__ import annotations

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
