"""Statistics of a demo run that need no ground truth: how steady and how consistent each track's 3D
body is, side by side with BlazePose's own world landmarks on the same frames (what a user gets for free).

* bone-length std and acceleration of the COCO-17 joints (``lib.eval.consistency``);
* reprojection: distance of the shown joints, projected with the fitted camera, to the detected
  keypoints (confidence > 0.5, detected frames), px and % of the box height.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.demo.camera import project
from lib.demo.records import TrackResult
from lib.eval.consistency import acceleration_mm, bone_length_std_mm
from lib.people.blazepose import BLAZEPOSE_TO_COCO17

MIN_KEYPOINT_CONF = 0.5


def reprojection_error(result: TrackResult, joints: np.ndarray) -> tuple[float, float]:
    """(px, % of box height) mean distance of the projected joints to the confident detected keypoints."""
    cam, track = result.camera, result.track
    projected = project(joints[:, :17], cam.translation, cam.focal, cam.center)  # (N, 17, 2)
    good = (track.keypoints[..., 2] > MIN_KEYPOINT_CONF) & (track.scores[:, None] > 0)
    if not good.any():
        return float("nan"), float("nan")
    dist = np.linalg.norm(projected - track.keypoints[..., :2], axis=-1)
    height = np.maximum(track.boxes[:, 3] - track.boxes[:, 1], 1.0)[:, None]
    return float(dist[good].mean()), float(100 * (dist / height)[good].mean())


def track_summary(result: TrackResult, show: str) -> dict:
    """The statistics of one track (see the module docstring)."""
    track = result.track
    _, joints = result.shown(show)
    px, percent = reprojection_error(result, joints)
    out = {
        "track_id": track.track_id,
        "frames": [int(track.frame_ids[0]), int(track.frame_ids[-1])],
        "detected_frames": int((track.scores > 0).sum()),
        "shown": show if result.fit is not None else "raw",
        "bone_length_std_mm": bone_length_std_mm(joints),
        "acceleration_mm_per_frame2": acceleration_mm(joints),
        "reprojection_px": px,
        "reprojection_percent_of_box": percent,
        "raw_bone_length_std_mm": bone_length_std_mm(result.prediction.joints),
        "raw_acceleration_mm_per_frame2": acceleration_mm(result.prediction.joints),
    }
    if result.fit is not None:
        out["fit_vertex_error_mm"] = float(1000 * result.fit.vertex_error_m.mean())
    if track.world is not None:
        world = track.world[:, list(BLAZEPOSE_TO_COCO17)]
        out["blazepose_world_bone_length_std_mm"] = bone_length_std_mm(world)
        out["blazepose_world_acceleration_mm_per_frame2"] = acceleration_mm(world)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def summarize(results: Sequence[TrackResult], show: str, image_size: tuple[int, int]) -> dict:
    return {"image_size": list(image_size), "tracks": [track_summary(r, show) for r in results]}


def format_summary(summary: dict) -> str:
    """One line per track for the console."""
    lines = ["per track (mm; BlazePose world landmarks on the same frames in brackets):"]
    for t in summary["tracks"]:
        fit = f", fit error {t['fit_vertex_error_mm']:.1f}" if "fit_vertex_error_mm" in t else ""
        mp_bone = t.get("blazepose_world_bone_length_std_mm")
        mp_acc = t.get("blazepose_world_acceleration_mm_per_frame2")
        lines.append(
            f"  track {t['track_id']}: frames {t['frames'][0]}-{t['frames'][1]} ({t['detected_frames']} "
            f"detected), {t['shown']} body: bone-length std {t['bone_length_std_mm']:.1f}"
            + (f" [{mp_bone:.1f}]" if mp_bone is not None else "")
            + f", acceleration {t['acceleration_mm_per_frame2']:.1f}"
            + (f" [{mp_acc:.1f}]" if mp_acc is not None else "")
            + f", reprojection {t['reprojection_px']:.1f} px ({t['reprojection_percent_of_box']:.1f} % of the"
            f" box){fit}; raw network: bone-length std {t['raw_bone_length_std_mm']:.1f}, acceleration"
            f" {t['raw_acceleration_mm_per_frame2']:.1f}"
        )
    return "\n".join(lines)
