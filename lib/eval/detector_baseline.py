"""The baseline a user gets for free: BlazePose's own 3D world landmarks on the same rendered frames.

A render-and-detect dataset (``DATA.SYNTHETIC.DETECTOR blazepose``) stores them per split
(``blazepose_world_<split>.json``: ``{sequence: {frame: (33, 3) metres or null}}``). On the frames where
BlazePose found the person, both it and the model are scored against the ground truth with the same
numbers (``lib.eval.consistency``): limb PA-MPJPE, bone-length std and acceleration, the ground truth's
own bone-length std and acceleration beside them. The model's and the ground truth's COCO-17 joints are
regressed from the meshes with the same COCO regressor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lib.eval.consistency import acceleration_mm, bone_length_std_mm, limb_pa_mpjpe_mm
from lib.people.blazepose import BLAZEPOSE_TO_COCO17

WORLD_FILE = "blazepose_world_{split}.json"


def load_world_landmarks(root: Path, split: str = "test") -> dict[str, dict[int, np.ndarray]] | None:
    """{sequence: {frame: (33, 3)}} of the frames BlazePose found, or None without the file."""
    path = Path(root) / WORLD_FILE.format(split=split)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    return {
        seq: {int(f): np.asarray(v) for f, v in frames.items() if v is not None}
        for seq, frames in raw.items()
    }


def world_landmark_baseline(
    videos: Sequence[str],
    frames: np.ndarray,
    pred_coco: np.ndarray,
    gt_coco: np.ndarray,
    world: dict[str, dict[int, np.ndarray]],
) -> dict:
    """Scores of the model and of BlazePose's world landmarks on the frames both have.

    videos: (N,) video ids '<sequence>_<person>'; frames (N,); pred_coco, gt_coco: (N, 17, 3) metres."""
    sequence = [v.rsplit("_", 1)[0] for v in videos]
    have = np.array([int(f) in world.get(s, {}) for s, f in zip(sequence, frames, strict=True)])
    if not have.any():
        return {"frames": 0}
    blaze = np.full_like(pred_coco, np.nan)
    for i in np.flatnonzero(have):
        blaze[i] = world[sequence[i]][int(frames[i])][list(BLAZEPOSE_TO_COCO17)]
    groups = _videos(videos)
    scores = {"frames": int(have.sum()), "frames_total": len(have)}
    for name, joints in (("model", pred_coco), ("blazepose_world", blaze), ("ground_truth", gt_coco)):
        masked = np.where(have[:, None, None], joints, np.nan)
        scores[name] = {
            "limb_pa_mpjpe": float(limb_pa_mpjpe_mm(joints[have], gt_coco[have]).mean()),
            "bone_length_std": _per_video(bone_length_std_mm, masked, groups),
            "acceleration": _per_video(acceleration_mm, masked, groups),
        }
    return scores


def _videos(videos: Sequence[str]) -> list[np.ndarray]:
    """Row indices of each video, in order (rows of a video are consecutive frames)."""
    names = np.asarray(videos)
    return [np.flatnonzero(names == v) for v in dict.fromkeys(videos)]


def _per_video(measure, joints: np.ndarray, groups: list[np.ndarray]) -> float:
    """Frame-weighted mean over the videos of a per-video measure (NaN results skipped)."""
    values = [(measure(joints[rows]), len(rows)) for rows in groups]
    values = [(v, n) for v, n in values if np.isfinite(v)]
    return (
        float(np.average([v for v, _ in values], weights=[n for _, n in values])) if values else float("nan")
    )
