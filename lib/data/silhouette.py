"""Person silhouettes and the fixed silhouette feature extractor (the embedded default image features).

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

from dataclasses import dataclass

import cv2
import numpy as np

FEATURE_DIM = 2048
CANONICAL = 64  # side of the canonical occupancy map
_GRIDS = (32, 16, 8, 4, 2, 1)
_ANGLE_BINS = 64
_FOURIER = 32
_CONTOUR_POINTS = 128
_DT_SCALE = 8.0  # px of the canonical map: a typical torso half-width
_SUBPIXEL = 4  # fixed-point bits for cv2 polygon corners
_SMALL = 4  # triangles spanning fewer pixel centres than this per axis are rasterised in numpy


# ------------------------------------------------------------------------------------------------
# Geometry: crop box, rasterisation, self-occlusion
# ------------------------------------------------------------------------------------------------
def square_box(keypoints: np.ndarray, scale: float = 1.2) -> tuple[float, float, float]:
    """Square box (cx, cy, side) around (J, 2) keypoints: the larger side of their box times ``scale``."""
    low, high = keypoints.min(axis=0), keypoints.max(axis=0)
    centre = (low + high) / 2
    side = max(float((high - low).max()) * scale, 1.0)
    return float(centre[0]), float(centre[1]), side


def to_crop(pixels: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """(..., 2) image pixels -> pixels of the ``size`` x ``size`` crop of ``box``."""
    cx, cy, side = box
    return (pixels - np.array([cx - side / 2, cy - side / 2])) * (size / side)


def render_silhouette(pixels: np.ndarray, faces: np.ndarray, size: int, front: np.ndarray | None = None):
    """Binary (size, size) uint8 mask (0 / 1) of the projected triangles (a pixel is set when its centre
    lies in a triangle).

    Small triangles (the vast majority at crop resolution) are tested against the pixel centres of
    their bounding box in one vectorised step; larger ones are filled with ``cv2.fillConvexPoly``.

    Args:
        pixels: (V, 2) vertex positions in crop pixels; faces: (F, 3) vertex indices;
        front: optional (F,) bool, the faces to draw (the front-facing half of a closed mesh covers
            the whole silhouette, at half the cost).
    """
    mask = np.zeros((size, size), np.uint8)
    tri = pixels[faces if front is None else faces[front]]  # (F, 3, 2)
    low, high = np.ceil(_corner_min(tri)).astype(int), np.floor(_corner_max(tri)).astype(int)  # (F, 2)
    keep = _both((high >= 0) & (low < size) & (high >= low))
    tri, low, high = tri[keep], low[keep], high[keep]
    small = _both(high - low < _SMALL)
    # Vectorised pixel-centre test for the small triangles: (F, K*K) candidate pixels each.
    grid = np.stack(np.meshgrid(np.arange(_SMALL), np.arange(_SMALL), indexing="xy"), -1).reshape(-1, 2)
    cand = low[small][:, None, :] + grid[None]  # (Fs, K*K, 2)
    a, b, c = (tri[small][:, None, k] for k in range(3))  # (Fs, 1, 2)
    e0, e1, e2 = _edge(a, b, cand), _edge(b, c, cand), _edge(c, a, cand)
    inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    inside &= _both((cand >= 0) & (cand < size))
    hit = cand[inside]
    mask[hit[:, 1], hit[:, 0]] = 1
    for corners in np.round(tri[~small] * (1 << _SUBPIXEL)).astype(np.int32):
        cv2.fillConvexPoly(mask, corners, 1, cv2.LINE_8, _SUBPIXEL)
    return mask


# Reductions over the tiny last axes written out: numpy's axis reductions cost ~5x more here, and these
# run for every face of every generated frame.
def _corner_min(tri: np.ndarray) -> np.ndarray:
    """(F, 3, 2) -> (F, 2) the smallest x and y of each triangle's corners."""
    return np.minimum(np.minimum(tri[:, 0], tri[:, 1]), tri[:, 2])


def _corner_max(tri: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(tri[:, 0], tri[:, 1]), tri[:, 2])


def _both(flags: np.ndarray) -> np.ndarray:
    """(..., 2) bool -> (...,) both x and y flags set."""
    return flags[..., 0] & flags[..., 1]


def _edge(p: np.ndarray, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Signed area of (p, q, x): which side of the edge p -> q the points x lie on."""
    return (q[..., 0] - p[..., 0]) * (x[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
        x[..., 0] - p[..., 0]
    )


def facing_camera(vertices_cam: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) bool: faces whose winding-defined normal points towards the camera at the origin."""
    a, b, c = (vertices_cam[faces[:, k]] for k in range(3))  # (F, 3) each
    normal = np.cross(b - a, c - a)
    return np.einsum("fi,fi->f", normal, a + b + c) < 0  # towards the centroid (3x: same sign)


def occluded_by_surface(
    points_cam: np.ndarray, vertices_cam: np.ndarray, faces: np.ndarray, focal, center, margin: float
) -> np.ndarray:
    """(P,) bool: points (joints inside the body) hidden behind the mesh surface.

    A point counts as occluded when some triangle covering its projection lies more than ``margin``
    metres in front of it (a joint sits a few centimetres under its own skin, so the margin keeps the
    skin right above a joint from hiding it).
    """
    focal, center = np.asarray(focal, dtype=float), np.asarray(center, dtype=float)
    depth_v = np.maximum(vertices_cam[:, 2], 1e-3)
    uv = vertices_cam[:, :2] / depth_v[:, None] * focal + center  # (V, 2)
    tri, tri_depth = uv[faces], depth_v[faces]  # (F, 3, 2), (F, 3)
    p_uv = points_cam[:, :2] / np.maximum(points_cam[:, 2:3], 1e-3) * focal + center  # (P, 2)
    lo, hi = _corner_min(tri), _corner_max(tri)  # (F, 2)
    px, py = p_uv[:, :1], p_uv[:, 1:]  # (P, 1)
    covers = (lo[:, 0] <= px) & (px <= hi[:, 0]) & (lo[:, 1] <= py) & (py <= hi[:, 1])  # (P, F)
    p_idx, f_idx = np.nonzero(covers)
    a, b, c = tri[f_idx, 0], tri[f_idx, 1], tri[f_idx, 2]
    v0, v1, v2 = b - a, c - a, p_uv[p_idx] - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(den) > 1e-12
    den = np.where(ok, den, 1.0)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    inside = ok & (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)
    d = tri_depth[f_idx]
    surface = (1 - w1 - w2) * d[:, 0] + w1 * d[:, 1] + w2 * d[:, 2]
    hidden = inside & (surface < points_cam[p_idx, 2] - margin)
    occluded = np.zeros(len(points_cam), dtype=bool)
    occluded[p_idx[hidden]] = True
    return occluded


# ------------------------------------------------------------------------------------------------
# Imperfections (what a real person segmentation gets wrong)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskImperfections:
    """Strengths of the silhouette degradations; lengths are fractions of the crop side."""

    blur: float = 0.02  # max std of the Gaussian blur applied before re-thresholding
    holes: float = 1.0  # mean number of elliptic holes per frame
    hole_size: float = 0.05  # max hole radius
    dilate: float = 0.03  # max clothing-like dilation radius (drawn once per sequence by the caller)


def degrade_mask(
    mask: np.ndarray, rng: np.random.Generator, settings: MaskImperfections, dilate: float = 0.0
) -> np.ndarray:
    """A (S, S) uint8 0/1 mask with clothing dilation (``dilate``, fraction of S), blur + jittered
    threshold (ragged, shifted edges) and holes; deterministic given ``rng``."""
    size = mask.shape[0]
    out = mask.astype(np.uint8)
    radius = round(dilate * size)
    if radius > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    sigma = rng.uniform(0, settings.blur) * size
    threshold = rng.uniform(0.35, 0.65)
    if sigma > 0.3:
        soft = cv2.GaussianBlur(out.astype(np.float32), (0, 0), sigma)
        out = (soft > threshold).astype(np.uint8)
    inside = np.argwhere(out > 0)
    for _ in range(rng.poisson(settings.holes)):
        if len(inside) == 0:
            break
        y, x = inside[rng.integers(len(inside))]
        axes = np.maximum(rng.uniform(0.3, 1.0, 2) * settings.hole_size * size, 1).astype(int)
        cv2.ellipse(out, (int(x), int(y)), (int(axes[0]), int(axes[1])), rng.uniform(0, 180), 0, 360, 0, -1)
    return out


def cut_box(mask: np.ndarray, box_xyxy: np.ndarray | None) -> np.ndarray:
    """Zero the (x0, y0, x1, y1) rectangle (mask pixels) of an occluder in front of the person."""
    if box_xyxy is None:
        return mask
    x0, y0, x1, y1 = np.round(box_xyxy).astype(int)
    size_y, size_x = mask.shape
    mask = mask.copy()
    mask[max(y0, 0) : min(max(y1, 0), size_y), max(x0, 0) : min(max(x1, 0), size_x)] = 0
    return mask


def crop_mask(mask: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Crop a full-frame person mask (H, W) (bool, uint8 or float probabilities) to the square ``box``
    (cx, cy, side), resampled to (size, size) float32 in [0, 1]; outside the frame is background."""
    cx, cy, side = box
    s = size / side
    warp = np.array([[s, 0, -(cx - side / 2) * s], [0, s, -(cy - side / 2) * s]], dtype=np.float64)
    soft = _as_probability(mask)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(soft, warp, (size, size), flags=interp, borderValue=0.0)


# ------------------------------------------------------------------------------------------------
# The feature extractor
# ------------------------------------------------------------------------------------------------
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
