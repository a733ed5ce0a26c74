"""What every people backend returns and the tracker consumes: detections per frame, tracks per person."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Detection:
    """One person in one frame. Pixel coordinates of the (upright) frame."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    keypoints: np.ndarray | None = None  # (17, 3) COCO-17 x, y, confidence
    track_id: int | None = None  # set by backends that track themselves
    mask: np.ndarray | None = None  # (h, w) uint8 person probability x 255, the frame downscaled to (h, w)
    world: np.ndarray | None = None  # (33, 3) BlazePose world landmarks, metres, hip-centred (blazepose)


@dataclass
class Track:
    """One person over consecutive frames (after gap filling: ``frame_ids`` increase by 1)."""

    track_id: int
    frame_ids: np.ndarray  # (N,) int
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2
    scores: np.ndarray  # (N,) detection score; 0 on frames filled by interpolation
    keypoints: np.ndarray | None = None  # (N, 17, 3); confidence 0 on filled frames
    masks: list[np.ndarray | None] | None = None  # per frame (h, w) uint8 person mask; None on filled frames
    world: np.ndarray | None = None  # (N, 33, 3) BlazePose world landmarks; NaN on filled frames

    def __len__(self) -> int:
        return len(self.frame_ids)


class PeopleBackend(Protocol):
    """Detections of one frame. ``frame`` is BGR uint8 (H, W, 3); frames arrive in order."""

    def __call__(self, frame_id: int, frame: np.ndarray) -> list[Detection]: ...


def box_from_keypoints(kp: np.ndarray, margin: float = 0.1, min_conf: float = 0.0) -> np.ndarray:
    """(4,) x1, y1, x2, y2 around the keypoints (K, 3) with confidence > min_conf (all if none),
    enlarged by ``margin`` of the box size on every side."""
    good = kp[:, 2] > min_conf
    pts = kp[good, :2] if good.any() else kp[:, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * (hi - lo)
    return np.concatenate([lo - pad, hi + pad])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, N) IoU of boxes a (M, 4) and b (N, 4), x1 y1 x2 y2."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
