"""Every person in the video with BlazePose: detect now and then, follow each person by their landmarks.

Per frame, each followed person's landmarks are found in the region their previous landmarks gave (as
mediapipe's own pipeline tracks one person; here for any number). Every ``detect_every`` frames, and in
every frame while nobody is followed, the detector scans the whole frame and overlapping squares of its
shorter side, so that people who are small in the whole frame are found too; a detection where nobody is
followed yet starts a new person. People whose landmark model loses them (person flag below
``min_score``) are dropped; two followed regions that converge on the same body are merged (the older
identity stays). A person found again near where someone was lost within ``reacquire_frames`` frames takes
that identity back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lib.people.blazepose import (
    BLAZEPOSE_TO_COCO17,
    PoseDetection,
    PoseDetector,
    PoseLandmarker,
    PoseLandmarks,
    mask_in_frame,
)
from lib.people.roi import Region, square_tiles
from lib.people.types import Detection, box_from_keypoints, box_iou

SAME_PERSON_DISTANCE = 0.1  # mean keypoint distance / box diagonal below which two results are one body
BLAZEPOSE_HIPS = (23, 24)
NEW_MAX_IOU = 0.3  # a new detection overlapping a known body more than this waits until they part
FOLLOWED_MAX_IOU = 0.5  # two followed people overlapping more than this: the younger one is dropped


@dataclass
class _Person:
    track_id: int
    region: Region  # where to look in the next frame
    box: np.ndarray  # (4,) last keypoint box
    last_frame: int


class BlazePoseBackend:
    """Multi-person BlazePose (see the module docstring); detections carry ``track_id``, COCO-17 keypoints,
    the world landmarks and, with ``mask_max_side`` > 0, the person's mask."""

    def __init__(
        self,
        model_dir: str | Path,
        min_score: float = 0.5,
        detect_every: int = 5,
        mask_max_side: int = 0,
        reacquire_frames: int = 10,
        box_margin: float = 0.1,
        threads: int = 1,
    ) -> None:
        self._detector = PoseDetector(Path(model_dir), threads, min_score)
        self._landmarker = PoseLandmarker(Path(model_dir), threads)
        self.min_score, self.detect_every, self.mask_max_side = min_score, max(1, detect_every), mask_max_side
        self.reacquire_frames, self.box_margin = reacquire_frames, box_margin
        self._people: list[_Person] = []
        self._lost: list[_Person] = []
        self._next_id = 0
        self._tiles: list[Region] | None = None

    def __call__(self, frame_id: int, frame: np.ndarray) -> list[Detection]:
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        followed = [(p, self._landmarker(rgb, p.region)) for p in self._people]
        followed = [(p, lm) for p, lm in followed if lm.presence >= self.min_score]
        found: list[tuple[_Person | None, PoseLandmarks]] = _merge_same_bodies(followed)
        if not found or frame_id % self.detect_every == 0:
            found += self._new_people(rgb, [lm for _, lm in found])
        return self._update(frame_id, frame.shape[:2], found)

    def _new_people(self, rgb: np.ndarray, known: list[PoseLandmarks]) -> list[tuple[None, PoseLandmarks]]:
        if self._tiles is None:
            self._tiles = square_tiles(rgb.shape[1], rgb.shape[0])
        detections = [d for tile in self._tiles for d in self._detector(rgb, tile)]
        new = []
        for det in _distinct_detections(detections):
            if any(_hips_inside(det, lm) for lm in known):
                continue
            lm = self._landmarker(rgb, det.region)
            if lm.presence >= self.min_score and not any(_overlapping(lm, o, NEW_MAX_IOU) for o in known):
                known.append(lm)
                new.append((None, lm))
        return new

    def _update(
        self, frame_id: int, frame_hw: tuple[int, int], found: list[tuple[_Person | None, PoseLandmarks]]
    ) -> list[Detection]:
        kept_ids = {p.track_id for p, _ in found if p is not None}
        self._lost = [p for p in self._lost if frame_id - p.last_frame <= self.reacquire_frames]
        self._lost += [p for p in self._people if p.track_id not in kept_ids]
        people, detections = [], []
        for person, lm in found:
            kp = lm.keypoints[list(BLAZEPOSE_TO_COCO17)]
            box = box_from_keypoints(kp, self.box_margin)
            person = person or self._identity_for(box)
            person.region, person.box, person.last_frame = lm.next_region, box, frame_id
            people.append(person)
            mask = mask_in_frame(lm, frame_hw, self.mask_max_side) if self.mask_max_side > 0 else None
            score = float(lm.presence)
            detections.append(Detection(box, score, kp, person.track_id, mask, lm.world))
        self._people = people
        return detections

    def _identity_for(self, box: np.ndarray) -> _Person:
        """A lost person's identity when the new box is near where they were last seen (centres closer
        than the larger box diagonal: a body that turns or curls up changes its box a lot), else a new
        one."""
        if self._lost:
            gaps = [_center_distance(box, p.box) / max(_diagonal(box), _diagonal(p.box)) for p in self._lost]
            best = int(np.argmin(gaps))
            if gaps[best] < 1.0:
                return self._lost.pop(best)
        self._next_id += 1
        return _Person(self._next_id - 1, Region(np.zeros(2), 0.0, 0.0), box, -1)


def _diagonal(box: np.ndarray) -> float:
    return max(float(np.linalg.norm(box[2:] - box[:2])), 1.0)


def _center_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2))


def _distinct_detections(detections: list[PoseDetection]) -> list[PoseDetection]:
    """One detection per body when the whole frame and the tiles found the same person (best score)."""
    kept: list[PoseDetection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        close = [np.linalg.norm(det.region.center - k.region.center) < 0.25 * k.region.side for k in kept]
        if not any(close):
            kept.append(det)
    return kept


def _hips_inside(det: PoseDetection, lm: PoseLandmarks) -> bool:
    """Whether a detection's hip centre is close to a followed person's hips (then it is that person)."""
    hips = lm.keypoints[list(BLAZEPOSE_HIPS), :2].mean(axis=0)
    return bool(np.linalg.norm(det.region.center - hips) < 0.15 * lm.region.side)


def _same_body(a: PoseLandmarks, b: PoseLandmarks) -> bool:
    ka, kb = a.keypoints[list(BLAZEPOSE_TO_COCO17)], b.keypoints[list(BLAZEPOSE_TO_COCO17)]
    diagonal = _diagonal(box_from_keypoints(ka, 0.0))
    return float(np.linalg.norm(ka[:, :2] - kb[:, :2], axis=1).mean()) < SAME_PERSON_DISTANCE * diagonal


def _overlapping(new: PoseLandmarks, known: PoseLandmarks, max_iou: float) -> bool:
    """Whether two results are (probably) one body: the same landmarks, or keypoint boxes overlapping by
    more than ``max_iou``. Overlap that large means a second, poorer fit of a body, a blend of two
    crossing bodies or a hidden person's region drifting onto the one in front: the younger result is
    dropped, and a hidden person is taken up again (same identity) once they part."""
    boxes = [box_from_keypoints(lm.keypoints[list(BLAZEPOSE_TO_COCO17)], 0.0) for lm in (new, known)]
    return _same_body(new, known) or bool(box_iou(boxes[0][None], boxes[1][None])[0, 0] > max_iou)


def _merge_same_bodies(
    followed: list[tuple[_Person, PoseLandmarks]],
) -> list[tuple[_Person | None, PoseLandmarks]]:
    """Drop followed people whose landmarks landed on a body an older identity already holds."""
    kept: list[tuple[_Person | None, PoseLandmarks]] = []
    for person, lm in sorted(followed, key=lambda item: item[0].track_id):
        if not any(_overlapping(lm, other, FOLLOWED_MAX_IOU) for _, other in kept):
            kept.append((person, lm))
    return kept
