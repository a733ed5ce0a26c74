"""People in the video: per-frame detections (a box, optionally COCO-17 keypoints) linked into tracks.

Backends (:class:`PeopleBackend`) see one frame at a time and return its detections:

* :class:`MediaPipeBackend`: the offline default, mediapipe's single-person pose model (legacy
  ``solutions.pose``, model_complexity 1, bundled in the wheel), keypoints included.
* :class:`DetectionFileBackend`: a precomputed detection / keypoint file in COCO result format.
* :class:`OnnxBackend` (``lib.demo.onnx_backend``): a user-supplied ONNX person detector and top-down pose
  model run with onnxruntime.

Heavy packages are imported inside the backend that needs them. :func:`track_people` links the
detections with greedy IoU matching (or the file's own ``track_id``) and fills short gaps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from lib.demo.errors import DemoError

# mediapipe's 33 pose landmarks that are the COCO-17 keypoints, in COCO order
MEDIAPIPE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


@dataclass
class Detection:
    """One person in one frame. Pixel coordinates of the (upright) frame."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    keypoints: np.ndarray | None = None  # (17, 3) COCO-17 x, y, confidence
    track_id: int | None = None  # set by backends that track themselves (a file's track_id field)
    mask: np.ndarray | None = None  # (h, w) uint8 person probability x 255, the frame downscaled to (h, w)


@dataclass
class Track:
    """One person over consecutive frames (after gap filling: ``frame_ids`` increase by 1)."""

    track_id: int
    frame_ids: np.ndarray  # (N,) int
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2
    scores: np.ndarray  # (N,) detection score; 0 on frames filled by interpolation
    keypoints: np.ndarray | None = None  # (N, 17, 3); confidence 0 on filled frames
    masks: list[np.ndarray | None] | None = None  # per frame (h, w) uint8 person mask; None on filled frames

    def __len__(self) -> int:
        return len(self.frame_ids)


class PeopleBackend(Protocol):
    """Detections of one frame. ``frame`` is BGR uint8 (H, W, 3); frames arrive in order."""

    def __call__(self, frame_id: int, frame: np.ndarray) -> list[Detection]: ...


# ---------------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------------
class MediaPipeBackend:
    """mediapipe 0.10.x legacy pose solution: one person per frame, no download needed.

    The box is the keypoints' extent enlarged by ``box_margin`` of its size; a landmark's
    confidence is its ``visibility``. With ``mask_max_side`` > 0 the person segmentation runs too and
    each detection carries its mask, downscaled so that its longer side is at most ``mask_max_side``
    pixels (the silhouette features need no more, and a video's masks then fit in memory).
    """

    def __init__(self, min_confidence: float = 0.5, box_margin: float = 0.1, mask_max_side: int = 0) -> None:
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as err:
            raise DemoError(
                "the 'mediapipe' people backend needs mediapipe 0.10.21 (pip install mediapipe==0.10.21, "
                f"which needs numpy<2 and protobuf<5); import failed: {err}. Or set DEMO.PEOPLE to "
                "'file' with DEMO.DETECTION_FILE, or 'onnx' with DEMO.ONNX_DETECTOR / DEMO.ONNX_POSE"
            ) from None
        # model_complexity 1 is the model bundled in the wheel; 0 and 2 would be downloaded at run time
        self._pose = mp_pose.Pose(
            static_image_mode=False,
            model_complexity=1,
            enable_segmentation=mask_max_side > 0,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self.box_margin = box_margin
        self.mask_max_side = mask_max_side

    def __call__(self, frame_id: int, frame: np.ndarray) -> list[Detection]:
        import cv2

        result = self._pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if result.pose_landmarks is None:
            return []
        h, w = frame.shape[:2]
        marks = result.pose_landmarks.landmark
        kp = np.array([[marks[i].x * w, marks[i].y * h, marks[i].visibility] for i in MEDIAPIPE_TO_COCO17])
        mask = None
        if result.segmentation_mask is not None:
            mask = downscale_mask(result.segmentation_mask, self.mask_max_side)
        return [Detection(box_from_keypoints(kp, self.box_margin), float(kp[:, 2].mean()), kp, mask=mask)]

    def close(self) -> None:
        self._pose.close()


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
            raise DemoError(f"detection file not found: {path}")
        try:
            entries = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DemoError(f"cannot read the detection file {path} as JSON: {err}") from None
        if isinstance(entries, dict):
            entries = entries.get("annotations", [])
        if not isinstance(entries, list):
            raise DemoError(f"{path}: expected a COCO result list of detections")
        self._by_frame: dict[int, list[Detection]] = {}
        for i, entry in enumerate(entries):
            try:
                det = _parse_coco_entry(entry)
                frame = int(entry["image_id"]) - frame_offset
            except (KeyError, TypeError, ValueError) as err:
                raise DemoError(f"{path}: entry {i} is not a COCO result detection ({err!r})") from None
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


def downscale_mask(probability: np.ndarray, max_side: int) -> np.ndarray:
    """(H, W) float person probability -> (h, w) uint8 (x 255) with max(h, w) <= max_side."""
    import cv2

    height, width = probability.shape
    factor = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(probability.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return np.round(np.clip(small, 0, 1) * 255).astype(np.uint8)


def box_from_keypoints(kp: np.ndarray, margin: float = 0.1, min_conf: float = 0.0) -> np.ndarray:
    """(4,) x1, y1, x2, y2 around the keypoints (17, 3) with confidence > min_conf (all if none),
    enlarged by ``margin`` of the box size on every side."""
    good = kp[:, 2] > min_conf
    pts = kp[good, :2] if good.any() else kp[:, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * (hi - lo)
    return np.concatenate([lo - pad, hi + pad])


def build_backend(
    name: str,
    *,
    detection_file: str = "",
    frame_offset: int = 0,
    onnx_detector: str = "",
    onnx_pose: str = "",
    min_score: float = 0.5,
    mask_max_side: int = 0,
) -> PeopleBackend:
    """The backend called ``name`` ('mediapipe', 'file' or 'onnx'); errors are DemoErrors.
    ``mask_max_side`` > 0 asks for person masks (only mediapipe gives them)."""
    if name == "mediapipe":
        return MediaPipeBackend(min_confidence=min_score, mask_max_side=mask_max_side)
    if name == "file":
        if not detection_file:
            raise DemoError("DEMO.PEOPLE 'file' needs DEMO.DETECTION_FILE (a COCO result JSON)")
        return DetectionFileBackend(detection_file, frame_offset=frame_offset, min_score=min_score)
    if name == "onnx":
        from lib.demo.onnx_backend import OnnxBackend

        return OnnxBackend(onnx_detector, onnx_pose, min_score=min_score)
    raise DemoError(f"unknown people backend {name!r}; choose 'mediapipe', 'file' or 'onnx'")


def build_people_backend(cfg) -> PeopleBackend:
    """The backend named by ``cfg.DEMO.PEOPLE`` with its DEMO.* settings (masks when the image features
    are silhouettes)."""
    d = cfg.DEMO
    return build_backend(
        d.PEOPLE,
        detection_file=d.DETECTION_FILE,
        frame_offset=d.DETECTION_FRAME_OFFSET,
        onnx_detector=d.ONNX_DETECTOR,
        onnx_pose=d.ONNX_POSE,
        min_score=d.MIN_SCORE,
        mask_max_side=d.MASK_MAX_SIDE if d.FEATURES == "silhouette" else 0,
    )


# ---------------------------------------------------------------------------------------------------
# Tracking
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Open:
    track_id: int
    last_frame: int
    dets: dict[int, Detection] = field(default_factory=dict)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, N) IoU of boxes a (M, 4) and b (N, 4), x1 y1 x2 y2."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def track_people(
    detections: Iterable[tuple[int, list[Detection]]], iou_threshold: float = 0.3, max_gap: int = 10
) -> list[Track]:
    """Link per-frame detections (``(frame_id, detections)`` in frame order) into tracks.

    Detections that carry a ``track_id`` keep it; the others are matched greedily, best IoU first, to the
    tracks seen within the last ``max_gap`` frames (IoU >= ``iou_threshold``), or start a new track.
    Missing frames of up to ``max_gap`` inside a track are filled by linear interpolation (score and
    keypoint confidence 0); a longer gap splits the track. Tracks are numbered 0, 1, ... by first frame.
    """
    open_tracks: list[_Open] = []
    closed: list[_Open] = []
    by_given_id: dict[int, _Open] = {}
    next_id = 0
    for frame_id, dets in detections:
        free = []
        for det in dets:
            if det.track_id is None:
                free.append(det)
                continue
            track = by_given_id.setdefault(det.track_id, _Open(det.track_id, frame_id))
            if frame_id not in track.dets or det.score > track.dets[frame_id].score:
                track.dets[frame_id] = det
                track.last_frame = frame_id
        still_open = [t for t in open_tracks if frame_id - t.last_frame <= max_gap]
        closed += [t for t in open_tracks if frame_id - t.last_frame > max_gap]
        open_tracks = still_open
        if free and open_tracks:
            iou = box_iou(
                np.stack([t.dets[t.last_frame].box for t in open_tracks]), np.stack([d.box for d in free])
            )
            taken_t, taken_d = set(), set()
            for flat in np.argsort(-iou, axis=None):
                ti, di = np.unravel_index(flat, iou.shape)
                if iou[ti, di] < iou_threshold:
                    break
                if ti in taken_t or di in taken_d:
                    continue
                taken_t.add(ti)
                taken_d.add(di)
                open_tracks[ti].dets[frame_id] = free[di]
                open_tracks[ti].last_frame = frame_id
            free = [d for i, d in enumerate(free) if i not in taken_d]
        for det in free:
            open_tracks.append(_Open(next_id, frame_id, {frame_id: det}))
            next_id += 1
    raw = [*closed, *open_tracks, *by_given_id.values()]
    tracks = [piece for t in raw for piece in _fill_gaps(t.track_id, t.dets, max_gap)]
    tracks.sort(key=lambda t: (int(t.frame_ids[0]), t.track_id))  # ties: in order of creation
    for i, track in enumerate(tracks):
        track.track_id = i
    return tracks


def _fill_gaps(track_id: int, dets: dict[int, Detection], max_gap: int) -> list[Track]:
    """Tracks over consecutive frames from one track's detections (split at gaps above max_gap)."""
    frames = np.array(sorted(dets))
    pieces = np.split(frames, np.flatnonzero(np.diff(frames) > max_gap + 1) + 1)
    out = []
    for piece in pieces:
        full = np.arange(piece[0], piece[-1] + 1)
        boxes = _interp(full, piece, np.stack([dets[f].box for f in piece]))
        scores = np.zeros(len(full))
        scores[piece - piece[0]] = [dets[f].score for f in piece]
        keypoints = None
        if all(dets[f].keypoints is not None for f in piece):
            kp = np.stack([dets[f].keypoints for f in piece])  # (n, 17, 3)
            keypoints = _interp(full, piece, kp.reshape(len(piece), -1)).reshape(len(full), 17, 3)
            filled = np.ones(len(full), dtype=bool)
            filled[piece - piece[0]] = False
            keypoints[filled, :, 2] = 0.0
        masks = None
        if any(dets[f].mask is not None for f in piece):
            masks = [dets[f].mask if f in dets else None for f in full]
        out.append(Track(track_id, full, boxes, scores, keypoints, masks))
    return out


def _interp(full: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(len(full), C) linear interpolation of values (len(known), C) over frame numbers."""
    return np.stack([np.interp(full, known, values[:, c]) for c in range(values.shape[1])], axis=1)
