"""Render-and-detect: each synthetic video rendered over real footage and run through the demo's own
people backend, so that the 2D inputs, confidences, misses and person masks are the real detector's.

The person is the posed body drawn with clothing-like colours (skin, a shirt with short or long
sleeves, trousers, shoes; SMPL parts by their dominant skinning joint), lit from a random direction,
over a random crop of a frame of real footage (flipped, brightness and contrast jittered). The BlazePose
backend (``lib.people``) then runs on the frames in order, as in the demo; the detection that overlaps
the rendered person best is theirs (other people in the footage are ignored). Frames where the person is
not found keep the nearest found frame's keypoints with confidence 0 (as the demo's tracker fills gaps)
and have no mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lib.data.silhouette import nearest_true
from lib.errors import MissingFileError
from lib.people.types import Detection, PeopleBackend, box_iou
from lib.render import Camera, render_mesh

MIN_IOU = 0.3  # a detection overlapping the rendered person's box less than this is somebody else
# SMPL joints (dominant skinning weight) -> clothing part
_SKIN, _SHIRT, _SLEEVE, _TROUSERS, _SHOES = range(5)
_PART_OF_JOINT = {
    **dict.fromkeys((0, 1, 2, 4, 5), _TROUSERS),  # pelvis, hips, knees
    **dict.fromkeys((3, 6, 9, 13, 14, 16, 17), _SHIRT),  # spine, chest, collars, upper arms
    **dict.fromkeys((18, 19), _SLEEVE),  # forearms: sleeves or skin
    **dict.fromkeys((7, 8, 10, 11), _SHOES),  # ankles, feet
    **dict.fromkeys((12, 15, 20, 21, 22, 23), _SKIN),  # neck, head, wrists, hands
}
SKIN_TONES = ((60, 90, 140), (90, 130, 190), (120, 160, 215), (150, 185, 230), (45, 65, 100))  # BGR


class Backgrounds:
    """Frames of real footage to render people over (every ``every``-th frame, longer side <= max_side)."""

    def __init__(self, video: str | Path, every: int = 5, max_side: int = 1280) -> None:
        cap = cv2.VideoCapture(str(video))
        self.frames: list[np.ndarray] = []
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % every == 0:
                factor = min(1.0, max_side / max(frame.shape[:2]))
                self.frames.append(
                    cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
                )
            index += 1
        cap.release()
        if not self.frames:
            raise MissingFileError(
                f"no background frames could be read from {video}; run 'python scripts/fetch_assets.py' "
                "or set DATA.SYNTHETIC.BACKGROUND_VIDEO to a video file"
            )

    def sample(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """A (height, width, 3) BGR background: a random crop of the target aspect (50-100 % of the
        largest such crop), maybe mirrored, with brightness and contrast jittered."""
        frame = self.frames[rng.integers(len(self.frames))]
        fh, fw = frame.shape[:2]
        scale = min(fw / width, fh / height) * rng.uniform(0.5, 1.0)
        cw, ch = max(1, round(width * scale)), max(1, round(height * scale))
        x0, y0 = rng.integers(0, fw - cw + 1), rng.integers(0, fh - ch + 1)
        crop = cv2.resize(frame[y0 : y0 + ch, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        gain, bias = rng.uniform(0.6, 1.3), rng.uniform(-30, 30)
        return np.clip(crop.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def clothing_colors(weights: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(F, 3) BGR face colours: skin, shirt, sleeves, trousers and shoes by the SMPL part of each face's
    first vertex (``weights`` (V, 24) skinning weights)."""
    skin = np.asarray(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=np.float64)
    shirt, trousers = rng.uniform(20, 235, 3), rng.uniform(20, 200, 3)
    sleeve = shirt if rng.random() < 0.5 else skin
    shoes = rng.uniform(10, 90, 3)
    palette = np.stack([skin, shirt, sleeve, trousers, shoes])
    part = np.array([_PART_OF_JOINT[j] for j in range(24)])[weights.argmax(axis=1)]
    return palette[part[faces[:, 0]]]


@dataclass
class DetectedVideo:
    """What the people backend found of the rendered person, per frame."""

    keypoints: np.ndarray  # (T, 17, 3) COCO-17 pixels + confidence (0 on frames the person was missed)
    found: np.ndarray  # (T,) bool
    masks: list[np.ndarray | None]  # per frame (h, w) uint8 person mask of the downscaled frame, or None
    world: np.ndarray  # (T, 33, 3) BlazePose world landmarks, metres; NaN where missed


@dataclass(frozen=True)
class Scene:
    """How one video is drawn: pinhole camera, frame size, background, clothing and light."""

    focal: float
    center: tuple[float, float]
    size: tuple[int, int]  # width, height
    background: np.ndarray  # (H, W, 3) BGR
    colors: np.ndarray  # (F, 3) BGR
    light: np.ndarray  # (3,) direction the light travels, camera axes
    ambient: float
    occluder: tuple | None = None  # (x0, y0, x1, y1) pixels: a box painted in front of the person
    occluder_color: tuple = (90, 90, 90)


def sample_scene(
    rng: np.random.Generator,
    backgrounds: Backgrounds,
    weights: np.ndarray,
    faces: np.ndarray,
    focal: float,
    center: tuple[float, float],
    size: tuple[int, int],
    occluder: tuple | None = None,
) -> Scene:
    """A random background, clothing and light for a video filmed with the given camera (and the
    video's occluding box, painted in a random colour)."""
    light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.3), -1.0])
    return Scene(
        focal,
        center,
        size,
        backgrounds.sample(rng, *size),
        clothing_colors(weights, faces, rng),
        light,
        float(rng.uniform(0.3, 0.6)),
        occluder,
        tuple(int(c) for c in rng.integers(30, 220, 3)),
    )


def render_frames(vertices: np.ndarray, faces: np.ndarray, scene: Scene) -> list[np.ndarray]:
    """(T, V, 3) camera-frame vertices -> T BGR frames."""
    camera = Camera(scene.focal, scene.center)
    width, height = scene.size
    frames = [
        render_mesh(v, faces, (height, width), camera, scene.colors, scene.background, light=scene.light,
                    ambient=scene.ambient)
        for v in vertices
    ]  # fmt: skip
    if scene.occluder is not None:
        x0, y0, x1, y1 = (round(v) for v in scene.occluder)
        for frame in frames:
            cv2.rectangle(frame, (x0, y0), (x1, y1), scene.occluder_color, thickness=-1)
    return frames


def detect_person(
    frames: list[np.ndarray], person_boxes: np.ndarray, backend: PeopleBackend
) -> DetectedVideo:
    """Run ``backend`` over the frames and keep, per frame, the detection overlapping the person's box
    (T, 4) best (IoU >= MIN_IOU)."""
    count = len(frames)
    keypoints = np.zeros((count, 17, 3))
    found = np.zeros(count, dtype=bool)
    masks: list[np.ndarray | None] = [None] * count
    world = np.full((count, 33, 3), np.nan)
    for t, frame in enumerate(frames):
        det = _best_match(backend(t, frame), person_boxes[t])
        if det is None or det.keypoints is None:
            continue
        keypoints[t], found[t], masks[t] = det.keypoints, True, det.mask
        if det.world is not None:
            world[t] = det.world
    if found.any():
        nearest = nearest_true(found)
        keypoints[~found, :, :2] = keypoints[nearest[~found], :, :2]
        keypoints[~found, :, 2] = 0.0
    return DetectedVideo(keypoints, found, masks, world)


def _best_match(detections: list[Detection], box: np.ndarray) -> Detection | None:
    if not detections:
        return None
    iou = box_iou(box[None], np.stack([d.box for d in detections]))[0]
    best = int(iou.argmax())
    return detections[best] if iou[best] >= MIN_IOU else None


def render_and_detect(
    vertices: np.ndarray,
    faces: np.ndarray,
    scene: Scene,
    make_backend: Callable[[], PeopleBackend],
    person_boxes: np.ndarray,
) -> DetectedVideo:
    """The video of ``vertices`` (T, V, 3) drawn as ``scene`` says, and what a fresh backend finds of the
    person whose (T, 4) boxes are given."""
    return detect_person(render_frames(vertices, faces, scene), person_boxes, make_backend())
