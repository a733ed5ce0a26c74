"""The fixed silhouette feature extractor (the embedded default image features) and its crop.

No pretrained image backbone can be downloaded here, so the synthetic dataset's per-frame "image
features" describe the person's *silhouette* in a square crop around the person (the crop the official
pipeline feeds to SPIN: the 2D keypoint box, scale ~1.2). The silhouette carries body-shape information
that 2D keypoints lack (how wide the torso, hips and limbs are), which is the role the paper gives image
features. The same :func:`silhouette_features` runs on a person mask from a real video (the demo's offline
person segmentation), so a model trained on synthetic data can use image features on real footage.
Real datasets use SPIN ResNet-50 features instead; the two kinds must not be mixed in one model.

Feature layout of :func:`silhouette_features` (2048 values, all >= 0, float32). The crop is first
binarised and resized to a canonical 64x64 occupancy map ``M`` (area interpolation), which makes the
features independent of the crop's pixel size:

==========  =====  =============================================================================
block       size   content
==========  =====  =============================================================================
grid        1365   mean occupancy of ``M`` on 32x32, 16x16, 8x8, 4x4, 2x2 and 1x1 grids
dt_mean      256   distance to the background (inside the mask) / 8 px, mean-pooled on a 16x16 grid
dt_max        64   the same distance, max-pooled on an 8x8 grid (local limb / torso half-width)
radial       128   from the mask centroid, 64 angular bins: farthest and mean radius / 32 px
profiles     128   occupied fraction of each of the 64 rows, then of each of the 64 columns
fourier       64   outer-contour Fourier magnitudes |Z_k|, k = 1..32 and -1..-32, / (|Z_1| + |Z_-1|)
dt_hist       32   histogram of the inside distances (0-16 px, 32 bins), fractions of the area
global        11   area, box height, box width, box aspect, mean / max distance, centroid x, y,
                   spread x, y, perimeter (all scaled to about [0, 1])
==========  =====  =============================================================================

Everything is plain numpy / OpenCV arithmetic: deterministic, no learned weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

FEATURE_DIM = 2048
CANONICAL = 64  # side of the canonical occupancy map
_GRIDS = (32, 16, 8, 4, 2, 1)
_ANGLE_BINS = 64
_FOURIER = 32
_CONTOUR_POINTS = 128
_DT_SCALE = 8.0  # px of the canonical map: a typical torso half-width


def square_box(keypoints: np.ndarray, scale: float = 1.2) -> tuple[float, float, float]:
    """Square box (cx, cy, side) around (J, 2) keypoints: the larger side of their box times ``scale``."""
    low, high = keypoints.min(axis=0), keypoints.max(axis=0)
    centre = (low + high) / 2
    side = max(float((high - low).max()) * scale, 1.0)
    return float(centre[0]), float(centre[1]), side


def crop_mask(mask: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Crop a full-frame person mask (H, W) (bool, uint8 or float probabilities) to the square ``box``
    (cx, cy, side), resampled to (size, size) float32 in [0, 1]; outside the frame is background."""
    cx, cy, side = box
    s = size / side
    warp = np.array([[s, 0, -(cx - side / 2) * s], [0, s, -(cy - side / 2) * s]], dtype=np.float64)
    soft = _as_probability(mask)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(soft, warp, (size, size), flags=interp, borderValue=0.0)


def _as_probability(mask: np.ndarray) -> np.ndarray:
    """bool -> {0, 1}; uint8 with values > 1 -> / 255; other numbers as they are; float32."""
    if mask.dtype == np.bool_:
        return mask.astype(np.float32)
    if mask.dtype == np.uint8 and mask.max(initial=0) > 1:
        return mask.astype(np.float32) / 255.0
    return mask.astype(np.float32)


def silhouette_features(mask_crop: np.ndarray) -> np.ndarray:
    """(H, W) person mask of a square crop (bool, 0/1 or 0/255 uint8, or float probabilities thresholded
    at 0.5) -> (2048,) float32 >= 0. See the module docstring for the layout. An empty mask gives zeros."""
    if mask_crop.ndim != 2:
        raise ValueError(f"mask_crop must be (H, W), got {mask_crop.shape}")
    binary = (_as_probability(mask_crop) > 0.5).astype(np.float32)
    occupancy = cv2.resize(binary, (CANONICAL, CANONICAL), interpolation=cv2.INTER_AREA)
    canon = (occupancy > 0.5).astype(np.uint8)
    if canon.sum() == 0:
        return np.zeros(FEATURE_DIM, np.float32)
    n = CANONICAL
    blocks = [_pool(occupancy, g, np.mean) for g in _GRIDS]  # grid
    dt = cv2.distanceTransform(canon, cv2.DIST_L2, 5) / _DT_SCALE
    blocks += [_pool(dt, 16, np.mean), _pool(dt, 8, np.max)]  # dt_mean, dt_max
    ys, xs = np.nonzero(canon)
    cy, cx = ys.mean(), xs.mean()
    radius = np.hypot(xs - cx, ys - cy)
    bins = ((np.arctan2(ys - cy, xs - cx) + np.pi) / (2 * np.pi) * _ANGLE_BINS).astype(int) % _ANGLE_BINS
    far = np.zeros(_ANGLE_BINS)
    np.maximum.at(far, bins, radius)
    count = np.bincount(bins, minlength=_ANGLE_BINS)
    mean = np.bincount(bins, weights=radius, minlength=_ANGLE_BINS) / np.maximum(count, 1)
    blocks += [far / (n / 2), mean / (n / 2)]  # radial
    blocks += [canon.mean(axis=1), canon.mean(axis=0)]  # profiles
    fourier, perimeter = _contour_fourier(canon)
    blocks.append(fourier)
    inside = dt[canon > 0] * _DT_SCALE
    hist = np.histogram(inside, bins=32, range=(0.0, 16.0))[0] / len(inside)
    blocks.append(hist)
    box_h, box_w = np.ptp(ys) + 1, np.ptp(xs) + 1
    blocks.append(
        np.array(
            [
                canon.mean(),
                box_h / n,
                box_w / n,
                min(box_h, box_w) / max(box_h, box_w),
                inside.mean() / _DT_SCALE,
                inside.max() / (2 * _DT_SCALE),
                cx / n,
                cy / n,
                xs.std() / (n / 4),
                ys.std() / (n / 4),
                perimeter / (4 * n),
            ]
        )
    )
    features = np.concatenate([np.ravel(b) for b in blocks]).astype(np.float32)
    assert features.shape == (FEATURE_DIM,), features.shape
    return np.maximum(features, 0.0)


def _pool(image: np.ndarray, grid: int, reduce) -> np.ndarray:
    """(N, N) -> (grid, grid) by ``reduce`` over equal square cells (N divisible by grid)."""
    cell = image.shape[0] // grid
    return reduce(image.reshape(grid, cell, grid, cell), axis=(1, 3))


def _contour_fourier(canon: np.ndarray) -> tuple[np.ndarray, float]:
    """Magnitudes of the outer contour's Fourier coefficients (64,) and the contour length (px)."""
    contours, _ = cv2.findContours(canon, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)[:, 0].astype(np.float64)  # (K, 2)
    closed = np.vstack([contour, contour[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    length = float(seg.sum())
    if length < 1e-6:
        return np.zeros(2 * _FOURIER), 0.0
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    samples = np.linspace(0, length, _CONTOUR_POINTS, endpoint=False)
    z = np.interp(samples, arc, closed[:, 0]) + 1j * np.interp(samples, arc, closed[:, 1])
    spectrum = np.abs(np.fft.fft(z)) / _CONTOUR_POINTS
    positive, negative = spectrum[1 : _FOURIER + 1], spectrum[::-1][:_FOURIER]
    scale = spectrum[1] + spectrum[-1] + 1e-9
    return np.clip(np.concatenate([positive, negative]) / scale, 0, 2), length


def mask_features(
    masks: Sequence[np.ndarray | None],
    keypoints: np.ndarray,
    frame_width: int,
    crop_size: int,
    crop_scale: float,
) -> np.ndarray:
    """(N, 2048) features of a person's frames from their whole-frame masks, as the demo computes them.

    masks: per frame (h, w) uint8 person probability x 255 of the frame downscaled to (h, w), or None;
    keypoints: (N, 17, >=2) COCO-17 frame pixels. The crop is the square box of the frame's keypoints
    (:func:`square_box`), resampled to ``crop_size``. Frames without a mask take the features of the
    nearest frame that has one (all zeros when no frame has one).
    """
    have = np.array([m is not None for m in masks], dtype=bool)
    feats = np.zeros((len(masks), FEATURE_DIM), np.float32)
    if not have.any():
        return feats
    for k in np.flatnonzero(have):
        mask = masks[k]
        factor = mask.shape[1] / frame_width  # mask pixels per frame pixel
        cx, cy, side = square_box(keypoints[k, :, :2], crop_scale)
        feats[k] = silhouette_features(crop_mask(mask, (cx * factor, cy * factor, side * factor), crop_size))
    return feats[nearest_true(have)]


def nearest_true(have: np.ndarray) -> np.ndarray:
    """(N,) index of the nearest True entry of ``have`` (N,) for every position."""
    known = np.flatnonzero(have)
    pos = np.arange(len(have))
    right = np.clip(np.searchsorted(known, pos), 0, len(known) - 1)
    left = np.clip(right - 1, 0, len(known) - 1)
    take_left = np.abs(known[left] - pos) <= np.abs(known[right] - pos)
    return np.where(take_left, known[left], known[right])


def _mirror_layout() -> tuple[np.ndarray, int, int]:
    """(FEATURE_DIM,) the feature index each feature takes its value from in the left-right mirrored
    crop, and the positions of the area and of the centroid's x in the 'global' block."""
    blocks, start = [], 0

    def take(size: int, order: np.ndarray | None = None) -> None:
        nonlocal start
        blocks.append(start + (np.arange(size) if order is None else order))
        start += size

    def columns_reversed(rows: int, cols: int) -> np.ndarray:
        return np.arange(rows * cols).reshape(rows, cols)[:, ::-1].ravel()

    for g in _GRIDS:
        take(g * g, columns_reversed(g, g))  # grid
    take(256, columns_reversed(16, 16))  # dt_mean
    take(64, columns_reversed(8, 8))  # dt_max
    # radial: the angle from the centroid, theta -> pi - theta, maps bin b onto bin 31 - b (mod 64)
    angle_bins = (_ANGLE_BINS // 2 - 1 - np.arange(_ANGLE_BINS)) % _ANGLE_BINS
    take(_ANGLE_BINS, angle_bins)  # farthest
    take(_ANGLE_BINS, angle_bins)  # mean
    take(CANONICAL)  # row profile
    take(CANONICAL, np.arange(CANONICAL)[::-1])  # column profile
    take(2 * _FOURIER)  # |Z_k| of the mirrored contour equal the original's
    take(32)  # dt_hist
    global_start = start
    take(11)
    index = np.concatenate(blocks)
    assert len(index) == FEATURE_DIM and sorted(index) == list(range(FEATURE_DIM))
    return index, global_start, global_start + 6


_MIRROR_INDEX, _AREA, _CENTROID_X = _mirror_layout()


def mirror_silhouette_features(features: torch.Tensor, keep: int = 0) -> torch.Tensor:
    """(..., 2048) silhouette features -> those of the left-right mirrored crop (up to the resampling's
    pixel rounding): the maps' columns, the angular bins and the column profile reversed, the centroid's
    x reflected; an empty mask's zeros stay zeros. The first ``keep`` values stay as they are (a code
    written over them that a mirror does not change, e.g. the emulated shape estimate of
    DATA.SYNTHETIC.SHAPE_CODE_NOISE); they must be whole rows of the 32x32 grid."""
    if keep % 32 or keep > 1024:
        raise ValueError(f"keep must be whole rows of the 32x32 grid (a multiple of 32, <= 1024), got {keep}")
    index = torch.from_numpy(_MIRROR_INDEX).to(features.device)
    mirrored = features[..., index]
    reflected = (CANONICAL - 1) / CANONICAL - features[..., _CENTROID_X]
    mirrored[..., _CENTROID_X] = torch.where(features[..., _AREA] > 0, reflected, 0.0)
    mirrored[..., :keep] = features[..., :keep]
    return mirrored
