"""Camera from predictions: a closed-form weak-perspective fit per frame, smoothed over time.

For each frame the scale ``s`` (pixels per metre) and the offset ``t`` (pixels) minimise
``sum_j w_j || s * X_j[:2] + t - x_j ||^2`` over the predicted root-relative joints X (metres, camera
axes: x right, y down, z forward) and the 2D keypoints x (pixels) weighted by their confidences w, a
weighted linear least-squares problem with a closed-form solution. ``log s`` and ``t`` are then smoothed
with a confidence-weighted Gaussian over time, and turned into a camera-frame translation for a pinhole
camera of focal length f (pixels) and principal point c:  ``T = ((t - c) / s, f / s)``, i.e. the root is
placed at the depth where perspective matches the fitted scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.keypoints import project_pinhole


@dataclass(frozen=True)
class CameraFit:
    """Per-frame cameras of one track (N frames)."""

    scale: np.ndarray  # (N,) s, pixels per metre (weak perspective)
    offset: np.ndarray  # (N, 2) t, pixels: the root joint's image position
    translation: np.ndarray  # (N, 3) camera-frame root translation, metres
    focal: float  # pixels
    center: np.ndarray  # (2,) principal point, pixels

    @property
    def weak_perspective(self) -> np.ndarray:
        """(N, 3) [s, tx, ty]: image pixels = s * X[:2] + (tx, ty)."""
        return np.concatenate([self.scale[:, None], self.offset], axis=1)


def fit_weak_perspective(
    joints: np.ndarray, keypoints: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form weighted fit of ``s * X[:2] + t`` to ``x``, per frame.

    Args:
        joints: (N, J, 3) predicted 3D joints, metres.
        keypoints: (N, J, 2) 2D keypoints, pixels.
        weights: (N, J) non-negative confidences.

    Returns:
        scale (N,), offset (N, 2) and the per-frame fit weight (N,): the sum of the confidences, 0 where
        nothing could be fitted (scale and offset NaN), 1e-3 of it where the best scale was not positive
        (the scale of the spreads is used there).
    """
    p3, p2 = joints[..., :2].astype(np.float64), keypoints.astype(np.float64)  # X[:2] and x
    w = np.clip(weights.astype(np.float64), 0, None)
    total = w.sum(axis=1)  # (N,)
    safe = np.maximum(total, 1e-12)[:, None]
    mean3 = (w[..., None] * p3).sum(axis=1) / safe  # (N, 2) weighted means
    mean2 = (w[..., None] * p2).sum(axis=1) / safe
    c3, c2 = p3 - mean3[:, None], p2 - mean2[:, None]
    num = (w * (c3 * c2).sum(-1)).sum(axis=1)
    den = (w * (c3 * c3).sum(-1)).sum(axis=1)
    ok = (total > 0) & (den > 1e-12)
    safe_den = np.where(ok, den, 1.0)
    # A non-positive optimum means the prediction does not match the keypoints' layout (e.g. mirrored):
    # keep the scale of the spreads instead, with a tiny weight so that good neighbours dominate smoothing.
    mismatch = ok & (num <= 0)
    spread = np.sqrt((w * (c2 * c2).sum(-1)).sum(axis=1) / safe_den)
    scale = np.where(ok, np.where(mismatch, spread, num / safe_den), np.nan)
    ok &= scale > 0
    scale[~ok] = np.nan
    offset = mean2 - scale[:, None] * mean3
    offset[~ok] = np.nan
    weight = np.where(ok, total, 0.0) * np.where(mismatch, 1e-3, 1.0)
    return scale, offset, weight


def smooth(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Weighted Gaussian smoothing over time (axis 0): sum_k g(k) w_k v_k / sum_k g(k) w_k.

    values: (N, C); weights: (N,), 0 for frames without a value (their NaNs are ignored and filled
    from the neighbours). sigma in frames; 0 returns the values (with gaps filled by interpolation).
    """
    values = np.asarray(values, dtype=np.float64)
    good = weights > 0
    if not good.any():
        raise ValueError("no frame with a value to smooth")
    n = len(values)
    if sigma <= 0:
        frames = np.arange(n)
        return np.stack([np.interp(frames, frames[good], values[good, c]) for c in range(values.shape[1])], 1)
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    w = np.where(good, weights, 0.0)
    v = np.where(good[:, None], values, 0.0)
    num = np.zeros_like(v)
    den = np.zeros(n)
    for k, g in zip(offsets, kernel, strict=True):  # edges: only the frames that exist contribute
        lo, hi = max(0, -k), min(n, n - k)
        num[lo:hi] += g * w[lo + k : hi + k, None] * v[lo + k : hi + k]
        den[lo:hi] += g * w[lo + k : hi + k]
    out = num / np.maximum(den, 1e-12)[:, None]
    if not (den > 0).all():  # frames farther than 3 sigma from any value
        frames = np.arange(n)
        has = den > 0
        out = np.stack([np.interp(frames, frames[has], out[has, c]) for c in range(out.shape[1])], 1)
    return out


def fit_camera(
    joints: np.ndarray,
    keypoints: np.ndarray,
    weights: np.ndarray,
    width: int,
    height: int,
    focal: float = 0.0,
    sigma: float = 2.0,
) -> CameraFit:
    """Per-frame fit, temporal smoothing (``log s`` and ``t``) and the perspective translation.

    joints (N, J, 3) metres; keypoints (N, J, 2) pixels; weights (N, J); focal in pixels (<= 0: the
    frame diagonal, about a 53 degree horizontal field of view for 16:9); sigma in frames.
    """
    focal = float(focal) if focal > 0 else float(np.hypot(width, height))
    center = np.array([width / 2, height / 2])
    scale, offset, total = fit_weak_perspective(joints, keypoints, weights)
    if not (total > 0).any():
        raise ValueError("no frame has keypoints with confidence > 0; the camera cannot be fitted")
    params = smooth(np.concatenate([np.log(scale)[:, None], offset], axis=1), total, sigma)
    scale, offset = np.exp(params[:, 0]), params[:, 1:]
    translation = np.concatenate([(offset - center) / scale[:, None], (focal / scale)[:, None]], axis=1)
    return CameraFit(scale, offset, translation, focal, center)


def project(points: np.ndarray, translation: np.ndarray, focal: float, center: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (N, P, 3) after adding translation (N, 3) -> (N, P, 2)."""
    return project_pinhole(points + translation[:, None], focal, center)
