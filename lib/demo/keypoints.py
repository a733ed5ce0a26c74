"""2D keypoints per track as the network sees them: COCO-19, normalised by the full frame (eq. 5)."""

from __future__ import annotations

import numpy as np

from lib.demo.errors import DemoError
from lib.keypoints import add_pelvis_neck_scored, normalize_screen
from lib.people.types import Track


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
    kp = add_pelvis_neck_scored(np.asarray(track.keypoints, dtype=np.float64))  # (N, 19, 3)
    pose2d = normalize_screen(kp[..., :2], np.array([width, height]))
    return pose2d.astype(np.float32), kp[..., 2].astype(np.float32)
