"""2D keypoints per track as the network sees them: COCO-19, normalised by the full frame (eq. 5)."""

from __future__ import annotations

import numpy as np

from lib.demo.errors import DemoError
from lib.people.types import Track

COCO17_L_SHOULDER, COCO17_R_SHOULDER, COCO17_L_HIP, COCO17_R_HIP = 5, 6, 11, 12


def add_pelvis_neck(kp: np.ndarray) -> np.ndarray:
    """(..., 17, C) COCO-17 -> (..., 19, C) with Pelvis (mean of the hips) and Neck (mean of the
    shoulders) appended. With C == 3 the new joints' confidence is the lower of their two parents'."""
    pelvis = (kp[..., COCO17_L_HIP, :] + kp[..., COCO17_R_HIP, :]) / 2
    neck = (kp[..., COCO17_L_SHOULDER, :] + kp[..., COCO17_R_SHOULDER, :]) / 2
    if kp.shape[-1] == 3:
        pelvis[..., 2] = np.minimum(kp[..., COCO17_L_HIP, 2], kp[..., COCO17_R_HIP, 2])
        neck[..., 2] = np.minimum(kp[..., COCO17_L_SHOULDER, 2], kp[..., COCO17_R_SHOULDER, 2])
    return np.concatenate([kp, pelvis[..., None, :], neck[..., None, :]], axis=-2)


def normalize_screen(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels -> the training normalisation: x / w * 2 - 1, y / w * 2 - h / w (x in [-1, 1])."""
    return xy / width * 2 - np.array([1.0, height / width])


def denormalize_screen(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of :func:`normalize_screen`."""
    return (xy + np.array([1.0, height / width])) * width / 2


def track_keypoints(
    track: Track, width: int, height: int, joint_set: str = "coco19"
) -> tuple[np.ndarray, np.ndarray]:
    """A track's network input and keypoint confidences.

    Returns:
        pose2d: (N, 19, 2) float32, normalised by the full frame (:func:`normalize_screen`).
        conf: (N, 19) float32 confidences (0 on frames filled by interpolation).
    """
    if joint_set != "coco19":
        raise DemoError(
            f"the demo feeds COCO-19 keypoints, but the model's MODEL.INPUT_JOINT_SET is {joint_set!r}; "
            "use a checkpoint trained on coco19 inputs"
        )
    if track.keypoints is None:
        raise DemoError(
            f"track {track.track_id} has boxes but no keypoints; use a people backend that gives "
            "COCO-17 keypoints (blazepose, onnx, or a detection file with 'keypoints')"
        )
    kp = add_pelvis_neck(np.asarray(track.keypoints, dtype=np.float64))  # (N, 19, 3)
    return normalize_screen(kp[..., :2], width, height).astype(np.float32), kp[..., 2].astype(np.float32)
