"""Measure a DetectionNoise on a synthetic stationary skeleton (used by scripts/noise_stats.py and tests)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.constants import JOINT_SETS
from lib.data.noise import DetectionNoise, noise_rng, person_scale

# A standing person facing the camera, in units of its height, y down, pelvis at the origin.
_STANDING = {
    "Head": (0.0, -0.47), "Nose": (0.0, -0.42), "L_Eye": (0.03, -0.45), "R_Eye": (-0.03, -0.45),
    "L_Ear": (0.07, -0.43), "R_Ear": (-0.07, -0.43), "Neck": (0.0, -0.32), "L_Shoulder": (0.18, -0.30),
    "R_Shoulder": (-0.18, -0.30), "L_Elbow": (0.25, -0.08), "R_Elbow": (-0.25, -0.08),
    "L_Wrist": (0.28, 0.12), "R_Wrist": (-0.28, 0.12), "Torso": (0.0, -0.12), "Pelvis": (0.0, 0.05),
    "L_Hip": (0.10, 0.05), "R_Hip": (-0.10, 0.05), "L_Knee": (0.11, 0.30), "R_Knee": (-0.11, 0.30),
    "L_Ankle": (0.12, 0.53), "R_Ankle": (-0.12, 0.53),
}  # fmt: skip


@dataclass(frozen=True)
class NoiseStats:
    """Per-joint measurements (J,) next to the configured values."""

    names: tuple[str, ...]
    std_config: np.ndarray  # fraction of the person size
    std: np.ndarray  # RMS error per coordinate on frames without swap / miss / outlier
    lag1_config: float
    lag1: np.ndarray  # lag-1 autocorrelation of that error
    swap: np.ndarray  # fraction of frames a joint sits nearer its partner's true position (NaN: no partner)
    miss: np.ndarray  # fraction of frames not visible
    outlier: np.ndarray  # fraction of frames with a gross error

    def std_ratio(self) -> np.ndarray:
        """(J,) measured / configured std (1 where the configured std is 0 and none was measured)."""
        return np.divide(self.std, self.std_config, out=np.ones_like(self.std), where=self.std_config > 0)


def standing_skeleton(joint_set: str, height: float = 1.0) -> np.ndarray:
    """(J, 2) keypoints of a standing person of the given height, pelvis at the origin."""
    if joint_set not in JOINT_SETS:
        raise ValueError(f"joint_set must be one of {sorted(JOINT_SETS)}, got {joint_set!r}")
    missing = [n for n in JOINT_SETS[joint_set] if n not in _STANDING]
    if missing:
        raise ValueError(f"joint_set {joint_set!r}: no standing position for {missing}")
    return height * np.array([_STANDING[n] for n in JOINT_SETS[joint_set]])


def measure_noise(
    noise: DetectionNoise, joint_set: str, num_windows: int = 2000, num_frames: int = 16, seed: int = 0
) -> NoiseStats:
    """Apply ``noise`` to ``num_windows`` windows of a stationary 400-pixel person and measure it."""
    skeleton = standing_skeleton(joint_set, 400.0) + np.array([640.0, 360.0])  # (J, 2) pixels
    if len(skeleton) != len(noise.std):
        raise ValueError(f"joint_set {joint_set!r} has {len(skeleton)} joints, the noise {len(noise.std)}")
    keypoints = np.broadcast_to(skeleton, (num_frames, *skeleton.shape))  # (T, J, 2)
    scale = person_scale(keypoints)  # (T,)
    draws = [noise.draw(num_frames, noise_rng(seed, 0, w)) for w in range(num_windows)]
    noisy, visible = zip(*(noise.compose(keypoints, scale, d) for d in draws), strict=True)
    error = (np.stack(noisy) - keypoints) / scale[:, None, None]  # (W, T, J, 2)
    outlier = np.stack([d.outlier for d in draws])  # (W, T, J)
    clean = ~(outlier | np.stack([d.swapped for d in draws]) | np.stack([d.missed for d in draws]))
    visible = np.stack(visible)
    return NoiseStats(
        names=JOINT_SETS[joint_set],
        std_config=np.asarray(noise.std),
        std=np.sqrt(_masked_mean(error**2, clean)),
        lag1_config=noise.lag1_corr,
        lag1=_lag1(error, clean),
        swap=_swap_rate(noise, np.stack(noisy), keypoints, visible & ~outlier),
        miss=1.0 - visible.mean(axis=(0, 1)),
        outlier=outlier.mean(axis=(0, 1)),
    )


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(J,) mean of (W, T, J, 2) ``values`` over windows, frames and coordinates where ``mask`` (W, T, J)."""
    weight = np.broadcast_to(mask[..., None], values.shape)
    return (values * weight).sum(axis=(0, 1, 3)) / np.maximum(weight.sum(axis=(0, 1, 3)), 1)


def _lag1(error: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """(J,) lag-1 autocorrelation of the zero-mean (W, T, J, 2) error over consecutive clean frames."""
    both = clean[:, 1:] & clean[:, :-1]
    products = _masked_mean(error[:, 1:] * error[:, :-1], both)
    return products / np.maximum(_masked_mean(error[:, :-1] ** 2, both), 1e-12)


def _swap_rate(
    noise: DetectionNoise, noisy: np.ndarray, keypoints: np.ndarray, usable: np.ndarray
) -> np.ndarray:
    """(J,) fraction of frames where a paired joint is nearer its partner's true position, over the frames
    where both joints are ``usable`` (W, T, J)."""
    rate = np.full(len(noise.std), np.nan)
    for pair in noise.pairs:
        for joint, partner in (pair, pair[::-1]):
            own = np.linalg.norm(noisy[:, :, joint] - keypoints[:, joint], axis=-1)  # (W, T)
            other = np.linalg.norm(noisy[:, :, joint] - keypoints[:, partner], axis=-1)
            rate[joint] = (other < own)[usable[:, :, joint] & usable[:, :, partner]].mean()
    return rate
