"""Fit the detection-noise model (lib/data/noise.py) to a real detector's errors against ground truth.

The render-and-detect data (``DATA.SYNTHETIC.DETECTOR blazepose``) gives the demo's detector on videos
whose true 2D joints are known; this turns its errors into DATA.NOISE values, so that the fast default
path (noise drawn around the true joints every epoch) trains on errors of the same size, bias, timing and
kinds as the detector the demo runs. Per joint, in fractions of the person size:

* bias: the median error along the body's axes (``lib.data.noise.body_axes``), on frames without a swap;
* swaps: the joint nearer its partner's true position than its own (where the two are apart);
* outliers: residuals (after the bias) farther than ``OUTLIER_SIGMAS`` robust stds;
* std: the RMS of the other residuals per coordinate; lag-1 correlation over consecutive frames, and the
  share of a slow offset common to all joints (the person box drifting) from the per-frame joint mean;
* misses: frames where the detector returned nothing for the joint (confidence 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lib.constants import flip_pairs
from lib.data.noise import body_axes, person_scale, torso_joints, turned_frames

OUTLIER_SIGMAS = 4.0
SWAP_MIN_APART = 0.1  # fraction of the person size between a left/right pair for a swap to count


@dataclass(frozen=True)
class DetectorVideo:
    """One video's true 2D joints and a detector's output for them."""

    truth: np.ndarray  # (T, J, 2) pixels
    detections: np.ndarray  # (T, J, 3) pixels + confidence (0: not detected)


def fit_noise(videos: Sequence[DetectorVideo], joint_set: str = "coco17") -> dict[str, float | list]:
    """DATA.NOISE values (keys as in lib/config.py) that reproduce the detector's errors."""
    pairs, torso = flip_pairs(joint_set), torso_joints(joint_set)
    parts = [_errors(v, pairs, torso) for v in videos]
    error, up, out, found, swapped = (np.concatenate([p[k] for p in parts]) for k in range(5))
    usable = found & ~swapped
    bias = np.stack([_median(_along(error, up[:, None]), usable), _median(_along(error, out), usable)], 1)
    residual = error - (up[:, None] * bias[None, :, :1] + out * bias[None, :, 1:])
    robust = 1.4826 * np.array(
        [
            np.median(np.abs(residual[usable[:, j], j])) if usable[:, j].any() else 0.0
            for j in range(len(bias))
        ]
    )  # (J,) robust std per coordinate
    outlier = usable & (np.linalg.norm(residual, axis=-1) > OUTLIER_SIGMAS * robust)
    clean = usable & ~outlier
    std = np.sqrt(_mean(residual**2, clean[..., None]))  # (J,)
    lag1, share, drift_corr = _timing(parts, bias, std)
    base = float(std.mean())
    fitted = {
        "STD": base,
        "JOINT_STD_MULT": (std / base).tolist(),
        "JITTER_CORR": float(np.clip((lag1 - share * drift_corr) / max(1 - share, 1e-6), 0.0, 0.99)),
        "DRIFT_SHARE": share,
        "DRIFT_CORR": drift_corr,
        "SWAP_PROB": float(swapped[:, [a for a, _ in pairs]].mean()),
        "MISS_PROB": float(1 - found.mean()),
        "OUTLIER_PROB": float(outlier.sum() / max(usable.sum(), 1)),
        "OUTLIER_STD": float(np.sqrt(_mean(residual**2, outlier[..., None]).mean()))
        if outlier.any()
        else 0.0,
        "JOINT_BIAS": bias.reshape(-1).tolist(),
    }
    for kind, flags in (("SWAP", swapped), ("MISS", ~found), ("OUTLIER", outlier)):
        fitted[f"{kind}_LEN"] = _mean_run(parts, flags)
    return fitted


def orientation_segments(
    videos: Sequence[DetectorVideo], turned: bool, min_tilt_deg: float, min_frames: int = 6
) -> list[DetectorVideo]:
    """The runs of at least ``min_frames`` consecutive frames whose true torso is turned (``turned``) or
    upright (``lib.data.noise.turned_frames``, the turned-body noise's rule), as videos of their own:
    what the noise of each kind of frame is fitted to (short runs say little about timing)."""
    pairs, torso = flip_pairs("coco17"), torso_joints("coco17")
    segments = []
    for video in videos:
        selected = turned_frames(video.truth, pairs, torso, min_tilt_deg) == turned
        edges = np.flatnonzero(np.diff(np.concatenate([[0], selected.astype(int), [0]])))
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if end - start >= min_frames:
                segments.append(DetectorVideo(video.truth[start:end], video.detections[start:end]))
    return segments


def _errors(video: DetectorVideo, pairs, torso) -> tuple[np.ndarray, ...]:
    """(T, J, 2) error / person size, (T, 2) up, (T, J, 2) out, (T, J) found, (T, J) swapped."""
    truth, det = video.truth, video.detections
    scale = person_scale(truth)[:, None, None]
    error = (det[..., :2] - truth) / scale
    up, out = body_axes(truth, pairs, torso)
    found = det[..., 2] > 0
    swapped = np.zeros_like(found)
    for left, right in pairs:
        # only where the pair is apart: joints seen one behind the other swap by noise alone
        apart = np.linalg.norm(truth[:, left] - truth[:, right], axis=-1) > SWAP_MIN_APART * scale[:, 0, 0]
        for joint, partner in ((left, right), (right, left)):
            own = np.linalg.norm(det[:, joint, :2] - truth[:, joint], axis=-1)
            other = np.linalg.norm(det[:, joint, :2] - truth[:, partner], axis=-1)
            swapped[:, joint] |= apart & (other < own)
    return error, up, out, found, swapped & found


def _timing(parts, bias: np.ndarray, std: np.ndarray) -> tuple[float, float, float]:
    """Lag-1 correlation of the standardised residual, the drift share and the drift's lag-1 correlation."""
    products, squares, means = [], [], []
    for error, up, out, found, swapped in parts:
        z = (error - (up[:, None] * bias[None, :, :1] + out * bias[None, :, 1:])) / std[None, :, None]
        ok = found & ~swapped & (np.abs(z).max(axis=-1) < OUTLIER_SIGMAS)
        both = ok[1:] & ok[:-1]
        products.append((z[1:] * z[:-1])[both].ravel())
        squares.append((z[:-1] ** 2)[both].ravel())
        full = ok.all(axis=1)  # frames with every joint usable: the per-frame joint mean
        means.append(np.where(full[:, None], z.mean(axis=1), np.nan))  # (T, 2)
    lag1 = float(np.concatenate(products).sum() / max(np.concatenate(squares).sum(), 1e-12))
    mean = np.concatenate(means)
    joints = len(std)
    var = float(np.nanmean(mean**2))
    share = float(np.clip((var - 1 / joints) / (1 - 1 / joints), 0.0, 1.0))
    pairs_of_frames = [m for m in means if len(m) > 1]
    num = sum(np.nansum(m[1:] * m[:-1]) for m in pairs_of_frames)
    den = sum(np.nansum(np.where(np.isnan(m[1:]), np.nan, m[:-1] ** 2)) for m in pairs_of_frames)
    drift_corr = float(np.clip(num / max(den, 1e-12), 0.0, 0.999))
    return lag1, share, drift_corr


def _along(vectors: np.ndarray, axes: np.ndarray) -> np.ndarray:
    return (vectors * axes).sum(axis=-1)


def _median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(J,) median over frames of (N, J) values where mask."""
    columns = range(mask.shape[1])
    return np.array([np.median(values[mask[:, j], j]) if mask[:, j].any() else 0.0 for j in columns])


def _mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(J,) mean over frames and coordinates of (N, J, C) values where mask (N, J, 1)."""
    weight = np.broadcast_to(mask, values.shape)
    return (values * weight).sum(axis=(0, 2)) / np.maximum(weight.sum(axis=(0, 2)), 1)


def _mean_run(parts, flags: np.ndarray) -> float:
    """Mean length in frames of the runs of True per joint and video (at least 1)."""
    lengths, start = [], 0
    for part in parts:
        count = len(part[0])
        for column in flags[start : start + count].T:
            padded = np.concatenate([[False], column, [False]])
            edges = np.flatnonzero(np.diff(padded.astype(int)))
            lengths.extend(edges[1::2] - edges[::2])
        start += count
    return float(max(np.mean(lengths), 1.0)) if lengths else 1.0
