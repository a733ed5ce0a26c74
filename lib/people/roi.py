"""Rotated square regions of a frame: the crops BlazePose's models see, and the way back to pixels.

A region is a centre, a side and an angle in frame pixels. Crop pixel ``u`` (of an ``n x n`` crop)
maps to the frame point ``center + R(angle) @ (u / n - 1/2) * side``, with ``R`` the rotation in image
axes (x right, y down; a positive angle turns clockwise on screen). A region whose "up" points along the
body's hip-to-head direction therefore shows the body upright in the crop, whatever its orientation in
the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    center: np.ndarray  # (2,) pixels
    side: float  # pixels
    angle: float  # radians

    def crop_to_frame(self, size: int) -> np.ndarray:
        """(2, 3) affine map from crop pixels of an (size x size) crop to frame pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        linear = np.array([[c, -s], [s, c]]) * (self.side / size)
        offset = self.center - linear @ np.array([size / 2, size / 2])
        return np.concatenate([linear, offset[:, None]], axis=1)

    def to_frame(self, points: np.ndarray, size: int) -> np.ndarray:
        """(..., 2) crop pixels -> (..., 2) frame pixels."""
        warp = self.crop_to_frame(size)
        return points @ warp[:, :2].T + warp[:, 2]

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        """(..., 2) crop-axis vectors (e.g. world landmarks' x, y) -> frame axes."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return vectors @ np.array([[c, -s], [s, c]]).T

    def crop(self, frame: np.ndarray, size: int, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
        """The (size, size, C) crop of ``frame`` (bilinear)."""
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(frame, self.crop_to_frame(size), (size, size), flags=flags, borderMode=border)

    def box(self) -> np.ndarray:
        """(4,) x1, y1, x2, y2: the axis-aligned box around the rotated square."""
        corners = self.to_frame(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), 1)
        return np.concatenate([corners.min(axis=0), corners.max(axis=0)])


def region_from_axis(center: np.ndarray, scale_point: np.ndarray, enlarge: float) -> Region:
    """The square region BlazePose derives from two body points: centred on ``center`` (the hips' midpoint),
    side ``2 * |scale_point - center| * enlarge`` and turned so that ``scale_point`` (towards the head) is
    up in the crop."""
    dx, dy = scale_point - center
    # 0 when the scale point is straight above the centre; positive when the body leans right on screen
    angle = math.atan2(dx, -dy)
    angle = (angle + math.pi) % (2 * math.pi) - math.pi
    return Region(np.asarray(center, dtype=np.float64), 2.0 * math.hypot(dx, dy) * enlarge, angle)


def square_tiles(width: int, height: int) -> list[Region]:
    """The whole frame as one square (letterboxed) plus, for a frame that is not square, squares of the
    shorter side spaced evenly along the longer one (overlapping): a person small in the whole frame is
    larger in a tile, where the detector finds them more reliably."""
    whole = Region(np.array([width / 2, height / 2]), float(max(width, height)), 0.0)
    short, long_side = min(width, height), max(width, height)
    count = math.ceil(long_side / short)
    if count < 2 or long_side / short < 1.2:
        return [whole]
    starts = np.linspace(short / 2, long_side - short / 2, count)
    centers = [(s, height / 2) if width > height else (width / 2, s) for s in starts]
    return [whole, *(Region(np.array(c, dtype=np.float64), float(short), 0.0) for c in centers)]
