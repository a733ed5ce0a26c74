"""Synthetic 2D detection noise that behaves like a real keypoint detector over time.

Units: every length is a fraction of the person's size ``scale`` (the larger side of the box around the
clean 2D keypoints, :func:`person_scale`), given in the keypoints' own units. The same settings therefore
apply to pixel keypoints and to keypoints normalised by the image (paper eq. 5).

For joint ``j`` at frame ``t`` (per coordinate), with ``s = drift_share``:

    error = std_j * (sqrt(1 - s) * a_j(t) + sqrt(s) * d(t))

``a_j`` is a unit-variance stationary AR(1) process with lag-1 correlation ``jitter_corr`` (independent per
joint and coordinate) and ``d`` a slow unit-variance AR(1) with correlation ``drift_corr`` shared by all
joints (a misplaced person box). So the marginal std is exactly ``std_j`` and the lag-1 autocorrelation
is ``(1 - s) * jitter_corr + s * drift_corr``. On top of it, as bursts of a stationary two-state Markov
chain (fraction of frames ``*_prob``, mean length ``*_len`` frames):

* swaps: a left/right pair exchanges its positions (``swap_prob`` per pair and frame);
* outliers: the joint lands at a gross error ``N(0, outlier_std^2)`` from the truth, still "visible";
* misses: the joint is not detected (``visible`` False) and its last detected position in the sequence
  is held, as a tracker would (a miss at the first frame keeps that frame's noisy position).

A detector's joints are not the body model's (BlazePose's hips sit higher and wider than the COCO
regressor's): ``bias`` adds a fixed offset per joint in the body's own axes, ``(up, out)`` fractions of
the person size along the torso (lower joints' mean -> upper joints' mean, ``torso``) and away from the
joint's left/right partner; it is applied before swaps and misses, like the rest of the error.

Noise is redrawn every epoch but is a pure function of ``(seed, epoch, key)`` via :func:`noise_rng`, so it
does not depend on DataLoader workers or on the order of the samples. Apply it to the joints a detector
outputs (COCO-17) and derive COCO-19's pelvis and neck from the noisy hips and shoulders afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from yacs.config import CfgNode

from lib.constants import COCO17_JOINTS, JOINT_SETS, flip_pairs, num_joints

# COCO keypoint OKS sigmas (per-joint annotation spread relative to the object scale). Pelvis / Neck /
# Torso / Head, which COCO lacks, borrow the sigma of the hips / shoulders / shoulders / ears.
_OKS_SIGMAS = {
    "Nose": 0.026, "L_Eye": 0.025, "R_Eye": 0.025, "L_Ear": 0.035, "R_Ear": 0.035,
    "L_Shoulder": 0.079, "R_Shoulder": 0.079, "L_Elbow": 0.072, "R_Elbow": 0.072, "L_Wrist": 0.062,
    "R_Wrist": 0.062, "L_Hip": 0.107, "R_Hip": 0.107, "L_Knee": 0.087, "R_Knee": 0.087, "L_Ankle": 0.089,
    "R_Ankle": 0.089, "Pelvis": 0.107, "Neck": 0.079, "Torso": 0.079, "Head": 0.035,
}  # fmt: skip


def default_std_multipliers(joint_set: str) -> np.ndarray:
    """(J,) per-joint std multipliers: the OKS sigmas divided by their COCO-17 mean (mean 1 on COCO-17)."""
    if joint_set not in JOINT_SETS:
        raise ValueError(f"joint_set must be one of {sorted(JOINT_SETS)}, got {joint_set!r}")
    missing = [n for n in JOINT_SETS[joint_set] if n not in _OKS_SIGMAS]
    if missing:
        raise ValueError(f"joint_set {joint_set!r} has no default noise for {missing}; give the multipliers")
    mean = np.mean([_OKS_SIGMAS[n] for n in COCO17_JOINTS])
    return np.array([_OKS_SIGMAS[n] / mean for n in JOINT_SETS[joint_set]])


@dataclass(frozen=True)
class NoiseDraw:
    """The random part of one noise sample, independent of the keypoints (T frames, J joints)."""

    offset: np.ndarray  # (T, J, 2) Gaussian error (jitter + drift), fraction of the person size
    outlier_offset: np.ndarray  # (T, J, 2) gross error where ``outlier``, fraction of the person size
    outlier: np.ndarray  # (T, J) bool
    swapped: np.ndarray  # (T, J) bool, both joints of a swapped pair
    missed: np.ndarray  # (T, J) bool


@dataclass(frozen=True)
class DetectionNoise:
    """Temporally correlated detector-like noise; see the module docstring for the model."""

    std: tuple[float, ...]  # (J,) std per coordinate of the Gaussian error, fraction of the person size
    pairs: tuple[tuple[int, int], ...] = ()  # (left, right) joint indices that can swap
    jitter_corr: float = 0.6  # lag-1 autocorrelation of the per-joint AR(1) jitter
    drift_share: float = 0.3  # fraction of each joint's variance in the drift shared by all joints
    drift_corr: float = 0.98  # lag-1 autocorrelation of the drift
    swap_prob: float = 0.01  # fraction of frames in which a pair is swapped
    swap_len: float = 3.0  # mean burst length, frames (same for miss_len and outlier_len)
    miss_prob: float = 0.02  # fraction of joint-frames missed
    miss_len: float = 4.0
    outlier_prob: float = 0.005  # fraction of joint-frames with a gross error
    outlier_std: float = 0.25  # std per coordinate of a gross error, fraction of the person size
    outlier_len: float = 1.5
    bias: tuple[tuple[float, float], ...] = ()  # (J, 2) (up, out) offsets, fraction of the person size
    torso: tuple[tuple[int, ...], tuple[int, ...]] = ()  # (lower joints, upper joints) giving "up"

    def __post_init__(self) -> None:
        if len(self.std) == 0 or min(self.std) < 0:
            raise ValueError(f"std must be a non-empty sequence of values >= 0, got {self.std}")
        for name in ("jitter_corr", "drift_share", "drift_corr"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        for kind in ("swap", "miss", "outlier"):
            _check_bursts(kind, getattr(self, f"{kind}_prob"), getattr(self, f"{kind}_len"))
        if self.outlier_std < 0:
            raise ValueError(f"outlier_std must be >= 0, got {self.outlier_std}")
        bad = [p for p in self.pairs if not all(0 <= i < len(self.std) for i in p)]
        if bad:
            raise ValueError(f"pairs {bad} index joints outside [0, {len(self.std) - 1}]")
        if self.bias and (len(self.bias) != len(self.std) or len(self.torso) != 2):
            raise ValueError(f"bias needs one (up, out) pair per joint ({len(self.std)}) and torso joints")

    @property
    def lag1_corr(self) -> float:
        """Lag-1 autocorrelation of the Gaussian error implied by the settings."""
        return (1 - self.drift_share) * self.jitter_corr + self.drift_share * self.drift_corr

    def draw(self, num_frames: int, rng: np.random.Generator) -> NoiseDraw:
        """Draw the noise of ``num_frames`` consecutive frames (always in the same order of draws)."""
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        num_joints = len(self.std)
        jitter = _ar1(rng, (num_frames, num_joints, 2), self.jitter_corr)
        drift = _ar1(rng, (num_frames, 1, 2), self.drift_corr)
        share = self.drift_share
        offset = np.asarray(self.std)[:, None] * (np.sqrt(1 - share) * jitter + np.sqrt(share) * drift)
        outlier = _bursts(rng, (num_frames, num_joints), self.outlier_prob, self.outlier_len)
        outlier_offset = rng.normal(0.0, self.outlier_std, (num_frames, num_joints, 2))
        pair_swapped = _bursts(rng, (num_frames, len(self.pairs)), self.swap_prob, self.swap_len)
        missed = _bursts(rng, (num_frames, num_joints), self.miss_prob, self.miss_len)
        swapped = np.zeros((num_frames, num_joints), dtype=bool)
        for p, pair in enumerate(self.pairs):
            swapped[:, list(pair)] |= pair_swapped[:, p : p + 1]
        return NoiseDraw(offset, outlier_offset, outlier, swapped, missed)

    def compose(
        self, keypoints: np.ndarray, scale: float | np.ndarray, draw: NoiseDraw
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply a drawn noise to clean ``keypoints`` (T, J, 2) of person size ``scale`` (scalar or (T,)).

        Returns:
            noisy: (T, J, 2) keypoints in the input's units; visible: (T, J) bool, False where missed.
        """
        num_frames = _check_keypoints(keypoints, len(self.std))
        if draw.offset.shape != keypoints.shape:
            raise ValueError(f"draw is for shape {draw.offset.shape}, keypoints are {keypoints.shape}")
        size = _check_scale(scale, num_frames)[:, None, None]  # (T, 1, 1)
        noisy = keypoints + size * np.where(draw.outlier[..., None], draw.outlier_offset, draw.offset)
        if self.bias:
            noisy = noisy + size * self.bias_offset(keypoints)
        noisy = np.take_along_axis(noisy, self._swap_source(draw)[..., None], axis=1)
        visible = ~draw.missed
        held = np.maximum.accumulate(np.where(visible, np.arange(num_frames)[:, None], 0), axis=0)  # (T, J)
        noisy = noisy[held, np.arange(len(self.std))]
        return noisy, visible

    def apply(
        self, keypoints: np.ndarray, scale: float | np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noisy (T, J, 2) keypoints and (T, J) visibility; ``draw`` then ``compose``."""
        num_frames = _check_keypoints(keypoints, len(self.std))
        return self.compose(keypoints, scale, self.draw(num_frames, rng))

    def bias_offset(self, keypoints: np.ndarray) -> np.ndarray:
        """(T, J, 2) the ``bias`` in image axes for clean ``keypoints`` (T, J, 2), fraction of the size."""
        up, out = body_axes(keypoints, self.pairs, self.torso)
        bias = np.asarray(self.bias)  # (J, 2)
        return up[:, None] * bias[None, :, :1] + out * bias[None, :, 1:]

    def _swap_source(self, draw: NoiseDraw) -> np.ndarray:
        """(T, J) index of the joint whose position each joint takes (itself unless swapped)."""
        source = np.broadcast_to(np.arange(len(self.std)), draw.swapped.shape).copy()
        for left, right in self.pairs:
            frames = draw.swapped[:, left]
            source[frames, left], source[frames, right] = right, left
        return source


@dataclass(frozen=True)
class PoseDependentNoise:
    """Detector noise that depends on how the body is turned in the image: ``upright`` noise on frames
    whose torso (hips -> shoulders) points within ``min_tilt_deg`` of the image's up, ``turned`` noise on
    the others (lying, crawling, inverted, mid-flip), where a detector errs far more: BlazePose on the
    rendered acrobatic videos misses 25 % of the joints of turned frames against 4 % of upright ones
    (docs/synthetic_data.md). Both noises are drawn over the whole sequence and each frame takes the one
    of its orientation, so every burst and held miss keeps its timing within either kind of frame."""

    upright: DetectionNoise
    turned: DetectionNoise
    min_tilt_deg: float = 60.0

    def __post_init__(self) -> None:
        if len(self.upright.std) != len(self.turned.std):
            raise ValueError("upright and turned noise must be for the same joints")
        if not self.turned.torso:
            raise ValueError("turned noise needs the torso joints to tell the orientation")
        _check_range("min_tilt_deg", self.min_tilt_deg, 0.0, 180.0)

    def turned_frames(self, keypoints: np.ndarray) -> np.ndarray:
        """(T,) bool: the clean ``keypoints`` (T, J, 2) turned beyond the threshold (``turned_frames``)."""
        return turned_frames(keypoints, self.turned.pairs, self.turned.torso, self.min_tilt_deg)

    def draw(self, num_frames: int, rng: np.random.Generator) -> tuple[NoiseDraw, NoiseDraw]:
        """The upright draw first: without turned frames the result equals ``upright``'s alone."""
        return self.upright.draw(num_frames, rng), self.turned.draw(num_frames, rng)

    def compose(
        self, keypoints: np.ndarray, scale: float | np.ndarray, draw: tuple[NoiseDraw, NoiseDraw]
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`DetectionNoise.compose`, each frame from the noise of its orientation."""
        upright, seen = self.upright.compose(keypoints, scale, draw[0])
        turned, turned_seen = self.turned.compose(keypoints, scale, draw[1])
        frames = self.turned_frames(keypoints)
        return np.where(frames[:, None, None], turned, upright), np.where(frames[:, None], turned_seen, seen)

    def apply(
        self, keypoints: np.ndarray, scale: float | np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noisy (T, J, 2) keypoints and (T, J) visibility; ``draw`` then ``compose``."""
        num_frames = _check_keypoints(keypoints, len(self.upright.std))
        return self.compose(keypoints, scale, self.draw(num_frames, rng))


Noise = DetectionNoise | PoseDependentNoise


def body_axes(
    keypoints: np.ndarray, pairs: Sequence[tuple[int, int]], torso: tuple[Sequence[int], Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The body's own axes in the image: (T, 2) unit "up" (from the lower torso joints' mean to the upper
    ones') and (T, J, 2) unit "out" (from each paired joint's partner to it; 0 for unpaired joints)."""
    lower, upper = (keypoints[:, list(idx)].mean(axis=1) for idx in torso)
    up = _unit(upper - lower)
    out = np.zeros_like(keypoints)
    for left, right in pairs:
        out[:, left] = _unit(keypoints[:, left] - keypoints[:, right])
        out[:, right] = -out[:, left]
    return up, out


def turned_frames(
    keypoints: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    torso: tuple[Sequence[int], Sequence[int]],
    min_tilt_deg: float,
) -> np.ndarray:
    """(T,) bool: frames whose torso (hips -> shoulders, ``body_axes``) in ``keypoints`` (T, J, 2), image
    axes with y down, points more than ``min_tilt_deg`` away from the image's up."""
    up, _ = body_axes(keypoints, pairs, torso)
    return -up[:, 1] < np.cos(np.radians(min_tilt_deg))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def torso_joints(joint_set: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(hips, shoulders) indices of a joint set: the lower and upper ends of the torso."""
    names = JOINT_SETS[joint_set]
    return tuple(names.index(n) for n in ("L_Hip", "R_Hip")), tuple(
        names.index(n) for n in ("L_Shoulder", "R_Shoulder")
    )


def build_noise(cfg: CfgNode) -> Noise:
    """The detection noise of DATA.NOISE, with DATA.TURNED_NOISE on turned frames where enabled."""
    upright = detection_noise(cfg.DATA.NOISE, "DATA.NOISE", cfg.DATA.NOISE.JOINT_SET)
    node = cfg.DATA.TURNED_NOISE
    if not node.ENABLED:
        return upright
    turned = detection_noise(node, "DATA.TURNED_NOISE", cfg.DATA.NOISE.JOINT_SET, always_torso=True)
    return PoseDependentNoise(upright, turned, node.MIN_TILT_DEG)


def detection_noise(node: CfgNode, name: str, joint_set: str, always_torso: bool = False) -> DetectionNoise:
    """DetectionNoise from a config node with DATA.NOISE's keys (``name`` for messages); ``always_torso``:
    the torso joints even without a bias (the orientation needs them)."""
    if node.JOINT_STD_MULT:
        multipliers = np.asarray(node.JOINT_STD_MULT, dtype=float)
    else:
        multipliers = default_std_multipliers(joint_set)
    expected = num_joints(joint_set)
    if len(multipliers) != expected:
        raise ValueError(
            f"{name}.JOINT_STD_MULT has {len(multipliers)} values, {joint_set} has {expected} joints"
        )
    return DetectionNoise(
        std=tuple(float(m) * node.STD for m in multipliers),
        pairs=flip_pairs(joint_set),
        jitter_corr=node.JITTER_CORR,
        drift_share=node.DRIFT_SHARE,
        drift_corr=node.DRIFT_CORR,
        swap_prob=node.SWAP_PROB,
        swap_len=node.SWAP_LEN,
        miss_prob=node.MISS_PROB,
        miss_len=node.MISS_LEN,
        outlier_prob=node.OUTLIER_PROB,
        outlier_std=node.OUTLIER_STD,
        outlier_len=node.OUTLIER_LEN,
        bias=tuple(tuple(float(v) for v in b) for b in _pairs(node.JOINT_BIAS, expected, name)),
        torso=torso_joints(joint_set) if node.JOINT_BIAS or always_torso else (),
    )


def _pairs(flat: Sequence[float], num: int, name: str) -> list[tuple[float, float]]:
    """``name``.JOINT_BIAS: [] or 2 values (up, out) per joint, flattened."""
    if flat and len(flat) != 2 * num:
        raise ValueError(f"{name}.JOINT_BIAS needs 2 values per joint ({2 * num}), got {len(flat)}")
    return [(flat[2 * j], flat[2 * j + 1]) for j in range(num)] if flat else []


def noise_rng(seed: int, epoch: int, key: int | str) -> np.random.Generator:
    """The generator of one sample's noise: a pure function of (seed, epoch, key).

    ``key`` identifies the sample (window index, or a string such as ``"3dpw/courtyard_0/412"``); strings
    are hashed with BLAKE2 (Python's ``hash`` is salted per process and would differ between workers).
    """
    if isinstance(key, str):
        key = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    if min(seed, epoch, key) < 0:
        raise ValueError(f"seed, epoch and key must be >= 0, got {seed}, {epoch}, {key}")
    return np.random.default_rng([seed, epoch, key])


def person_scale(keypoints: np.ndarray) -> np.ndarray:
    """(T,) person size per frame: the larger side of the box around the (T, J, 2) keypoints."""
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must be (T, J, 2), got {keypoints.shape}")
    return (keypoints.max(axis=1) - keypoints.min(axis=1)).max(axis=-1)


def _ar1(rng: np.random.Generator, shape: Sequence[int], corr: float) -> np.ndarray:
    """Unit-variance stationary AR(1) processes along axis 0: x_t = corr * x_{t-1} + sqrt(1 - corr^2) e_t."""
    noise = rng.standard_normal(shape)
    innovation = np.sqrt(1 - corr**2)
    for t in range(1, shape[0]):
        noise[t] = corr * noise[t - 1] + innovation * noise[t]
    return noise


def _bursts(rng: np.random.Generator, shape: Sequence[int], prob: float, mean_len: float) -> np.ndarray:
    """(T, K) bool: stationary on/off Markov chains along axis 0, on a fraction ``prob`` of the time in
    bursts of mean length ``mean_len`` frames."""
    stop = 1.0 / mean_len
    start = prob * stop / (1 - prob) if prob < 1 else 1.0
    uniform = rng.random(shape)
    state = np.empty(shape, dtype=bool)
    state[0] = uniform[0] < prob
    for t in range(1, shape[0]):
        state[t] = np.where(state[t - 1], uniform[t] >= stop, uniform[t] < start)
    return state


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def _check_bursts(kind: str, prob: float, mean_len: float) -> None:
    _check_range(f"{kind}_prob", prob, 0.0, 1.0)
    if mean_len < 1:
        raise ValueError(f"{kind}_len must be >= 1 frame, got {mean_len}")
    if prob < 1 and prob / (1 - prob) > mean_len:
        raise ValueError(f"{kind}_prob = {prob} is too high for bursts of {kind}_len = {mean_len} frames")


def _check_keypoints(keypoints: np.ndarray, num_joints: int) -> int:
    if keypoints.ndim != 3 or keypoints.shape[1:] != (num_joints, 2):
        raise ValueError(f"keypoints must be (T, {num_joints}, 2), got {keypoints.shape}")
    return keypoints.shape[0]


def _check_scale(scale: float | np.ndarray, num_frames: int) -> np.ndarray:
    size = np.asarray(scale, dtype=float)
    if size.ndim > 1 or (size.ndim == 1 and len(size) != num_frames) or np.any(size <= 0):
        raise ValueError(f"scale must be a positive scalar or ({num_frames},) array, got {scale!r}")
    return np.broadcast_to(size, (num_frames,))
