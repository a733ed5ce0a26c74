"""Person masks of the synthetic videos: the silhouette of the posed body rasterised in its crop, the
body's own self-occlusion of joints, and what a real person segmentation gets wrong (clothing-like
dilation, blur with a jittered threshold, holes, occluding boxes)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SUBPIXEL = 4  # fixed-point bits for cv2 polygon corners
_SMALL = 4  # triangles spanning fewer pixel centres than this per axis are rasterised in numpy


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
