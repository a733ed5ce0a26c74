"""Linking per-frame detections into tracks: one :class:`Track` per person over consecutive frames."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from lib.people.types import Detection, Track, box_iou


@dataclass
class _Open:
    track_id: int
    last_frame: int
    dets: dict[int, Detection] = field(default_factory=dict)


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
        out.append(Track(track_id, full, boxes, scores, keypoints, masks, _world(full, dets)))
    return out


def _interp(full: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(len(full), C) linear interpolation of values (len(known), C) over frame numbers."""
    return np.stack([np.interp(full, known, values[:, c]) for c in range(values.shape[1])], axis=1)


def _world(full: np.ndarray, dets: dict[int, Detection]) -> np.ndarray | None:
    """(len(full), 33, 3) world landmarks where the backend gave them, NaN on the other frames."""
    if all(d.world is None for d in dets.values()):
        return None
    world = np.full((len(full), 33, 3), np.nan)
    for k, f in enumerate(full):
        if f in dets and dets[f].world is not None:
            world[k] = dets[f].world
    return world
