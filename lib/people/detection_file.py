"""Detections from a file: a COCO *result* JSON written by any detector and pose model the user likes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lib.people.errors import PeopleError
from lib.people.types import Detection, box_from_keypoints


class DetectionFileBackend:
    """Detections from a COCO *result* file: a JSON list (or ``{"annotations": [...]}``) of entries
    ``{"image_id", "bbox": [x, y, w, h], "score", "keypoints": [x, y, c] * 17 (optional),
    "category_id" (optional, only 1 = person kept), "track_id" (optional)}``.

    ``image_id`` is the frame index in the video plus ``frame_offset`` (1 when ids count from 1).
    Entries without ``bbox`` get the box of their keypoints.
    """

    def __init__(self, path: str | Path, frame_offset: int = 0, min_score: float = 0.0) -> None:
        path = Path(path)
        if not path.is_file():
            raise PeopleError(f"detection file not found: {path}")
        try:
            entries = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise PeopleError(f"cannot read the detection file {path} as JSON: {err}") from None
        if isinstance(entries, dict):
            entries = entries.get("annotations", [])
        if not isinstance(entries, list):
            raise PeopleError(f"{path}: expected a COCO result list of detections")
        self._by_frame: dict[int, list[Detection]] = {}
        for i, entry in enumerate(entries):
            try:
                det = _parse_coco_entry(entry)
                frame = int(entry["image_id"]) - frame_offset
            except (KeyError, TypeError, ValueError) as err:
                raise PeopleError(f"{path}: entry {i} is not a COCO result detection ({err!r})") from None
            if entry.get("category_id", 1) == 1 and det.score >= min_score:
                self._by_frame.setdefault(frame, []).append(det)

    def __call__(self, frame_id: int, frame: np.ndarray) -> list[Detection]:
        return self._by_frame.get(frame_id, [])


def _parse_coco_entry(entry: dict) -> Detection:
    kp = entry.get("keypoints")
    kp = None if kp is None else np.asarray(kp, dtype=np.float64).reshape(17, 3)
    if "bbox" in entry:
        x, y, w, h = (float(v) for v in entry["bbox"])
        box = np.array([x, y, x + w, y + h])
    elif kp is not None:
        box = box_from_keypoints(kp, 0.1)
    else:
        raise KeyError("bbox")
    score = float(entry.get("score", 1.0))
    track_id = entry.get("track_id")
    return Detection(box, score, kp, None if track_id is None else int(track_id))
