"""BlazePose's two models (from the mediapipe 0.10.21 wheel) run with LiteRT, without mediapipe itself.

* :class:`PoseDetector`: ``pose_detection.tflite``, an SSD over a 224x224 square of the frame. Each
  detection carries four points; the first two (the hips' midpoint and a point on the circle around the
  whole body) define the region in which the landmark model looks for that person.
* :class:`PoseLandmarker`: ``pose_landmark_full.tflite`` on a 256x256 crop of such a region: 33 body
  landmarks plus two auxiliary points (again hips' midpoint and body-circle point, which give the region of
  the next frame: this is how mediapipe tracks), their visibility, a person flag, a person segmentation of
  the crop and the 33 landmarks in metres ("world landmarks", hip-centred).

The decoding follows mediapipe's pose graphs: anchors of strides 8, 16, 32, 32, 32 with two anchors a cell,
boxes and points in units of the input side relative to their anchor's centre, sigmoid scores, weighted
non-maximum suppression at IoU 0.3, regions enlarged 1.25 times, detector input in [-1, 1] and landmark
input in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.special import expit

from lib.people.errors import PeopleError
from lib.people.roi import Region, region_from_axis
from lib.people.types import box_iou

DETECTOR_FILE = "pose_detection.tflite"
LANDMARKER_FILE = "pose_landmark_full.tflite"
DETECTOR_SIZE = 224
LANDMARKER_SIZE = 256
REGION_ENLARGE = 1.25
NUM_LANDMARKS = 33
# The 33 BlazePose landmarks that are the COCO-17 keypoints, in COCO order.
BLAZEPOSE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def _interpreter(path: Path, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise PeopleError(
            "the 'blazepose' people backend needs ai-edge-litert (pip install -r requirements.txt)"
        ) from None
    if not path.is_file():
        raise PeopleError(
            f"BlazePose model file not found: {path}; run 'python scripts/fetch_assets.py' (make demo does) "
            "or set DEMO.BLAZEPOSE_DIR to the folder with pose_detection.tflite and pose_landmark_full.tflite"
        )
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        raise PeopleError(f"LiteRT cannot load {path}: {err}") from None
    return interpreter


class _Model:
    """One LiteRT model with a single image input; outputs by their tensor names."""

    def __init__(self, path: Path, threads: int) -> None:
        self._it = _interpreter(path, threads)
        self._input = self._it.get_input_details()[0]["index"]
        self._outputs = {d["name"]: d["index"] for d in self._it.get_output_details()}

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        self._it.set_tensor(self._input, image[None])
        self._it.invoke()
        return {name: self._it.get_tensor(index)[0] for name, index in self._outputs.items()}


def ssd_anchor_centers(size: int = DETECTOR_SIZE) -> np.ndarray:
    """(2254, 2) anchor centres in units of the input side, in the model's output order: per stride
    group (8; 16; 32 x 3 layers), row by row, two anchors per layer and cell."""
    centers = []
    for stride, layers in ((8, 1), (16, 1), (32, 3)):
        cells = -(-size // stride)
        grid = (
            np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), axis=-1).reshape(-1, 2) + 0.5
        ) / cells
        centers.append(np.repeat(grid, 2 * layers, axis=0))
    return np.concatenate(centers)


@dataclass(frozen=True)
class PoseDetection:
    score: float
    box: np.ndarray  # (4,) x1, y1, x2, y2 frame pixels
    region: Region  # where the landmark model should look


class PoseDetector:
    """People in a square region of the frame (by default the whole frame, letterboxed)."""

    def __init__(
        self, model_dir: Path, threads: int = 1, min_score: float = 0.5, nms_iou: float = 0.3
    ) -> None:
        self._model = _Model(Path(model_dir) / DETECTOR_FILE, threads)
        self._anchors = ssd_anchor_centers()
        self.min_score, self.nms_iou = min_score, nms_iou

    def __call__(self, frame_rgb: np.ndarray, area: Region) -> list[PoseDetection]:
        crop = area.crop(frame_rgb, DETECTOR_SIZE).astype(np.float32) / 127.5 - 1.0
        out = self._model(crop)
        raw, logits = out["Identity"], out["Identity_1"][:, 0]
        scores = expit(logits)
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        values = raw[keep] / DETECTOR_SIZE
        anchors = self._anchors[keep]
        centers, sizes = values[:, 0:2] + anchors, values[:, 2:4]
        points = values[:, 4:12].reshape(-1, 4, 2) + anchors[:, None]
        boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
        return [
            self._to_frame(area, score, box, pts)
            for score, box, pts in weighted_nms(scores[keep], boxes, points, self.nms_iou)
        ]

    @staticmethod
    def _to_frame(area: Region, score: float, box: np.ndarray, points: np.ndarray) -> PoseDetection:
        corners = area.to_frame(box.reshape(2, 2) * DETECTOR_SIZE, DETECTOR_SIZE)
        pts = area.to_frame(points * DETECTOR_SIZE, DETECTOR_SIZE)
        region = region_from_axis(pts[0], pts[1], REGION_ENLARGE)
        return PoseDetection(float(score), np.concatenate([corners.min(0), corners.max(0)]), region)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, points: np.ndarray, iou_threshold: float
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Weighted non-maximum suppression: each kept detection is the score-weighted mean of the boxes and
    points that overlap the best remaining one by more than ``iou_threshold`` (its score is the best's)."""
    order = np.argsort(-scores)
    kept = []
    while order.size:
        iou = box_iou(boxes[order[:1]], boxes[order])[0]
        group = order[iou > iou_threshold]
        weights = scores[group] / scores[group].sum()
        box = weights @ boxes[group]
        pts = np.einsum("g,gkc->kc", weights, points[group])
        kept.append((float(scores[order[0]]), box, pts))
        order = order[iou <= iou_threshold]
    return kept


@dataclass(frozen=True)
class PoseLandmarks:
    """One person found in a region."""

    presence: float  # the model's person flag, 0..1
    keypoints: np.ndarray  # (33, 3) frame pixels x, y and visibility 0..1
    world: np.ndarray  # (33, 3) metres, hip-centred, x right, y down, z away from the camera
    next_region: Region  # where to look in the next frame
    segmentation: np.ndarray  # (256, 256) float32 person probability in the crop
    region: Region  # the region the crop came from


class PoseLandmarker:
    """The 33 BlazePose landmarks of the person in a region."""

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        self._model = _Model(Path(model_dir) / LANDMARKER_FILE, threads)

    def __call__(self, frame_rgb: np.ndarray, region: Region) -> PoseLandmarks:
        crop = region.crop(frame_rgb, LANDMARKER_SIZE, cv2.BORDER_REPLICATE).astype(np.float32) / 255.0
        out = self._model(crop)
        raw = out["Identity"].reshape(-1, 5)  # 39 x (x, y, z, visibility logit, presence logit)
        xy = region.to_frame(raw[:, :2], LANDMARKER_SIZE)
        visibility = expit(raw[:NUM_LANDMARKS, 3])
        world = out["Identity_4"].reshape(-1, 3)[:NUM_LANDMARKS].copy()
        world[:, :2] = region.rotate(world[:, :2])
        segmentation = expit(out["Identity_2"][..., 0])
        return PoseLandmarks(
            presence=float(out["Identity_1"][0]),
            keypoints=np.concatenate([xy[:NUM_LANDMARKS], visibility[:, None]], axis=1),
            world=world,
            next_region=region_from_axis(xy[33], xy[34], REGION_ENLARGE),
            segmentation=segmentation,
            region=region,
        )


def mask_in_frame(landmarks: PoseLandmarks, frame_hw: tuple[int, int], max_side: int) -> np.ndarray:
    """The person segmentation warped from the crop into the frame, downscaled so that its longer side is
    at most ``max_side``: (h, w) uint8, probability x 255 (0 outside the crop)."""
    height, width = frame_hw
    factor = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    # small-mask pixel -> frame pixel -> crop pixel
    to_frame = np.array([[1 / factor, 0, 0], [0, 1 / factor, 0], [0, 0, 1]])
    crop_to_frame = np.vstack([landmarks.region.crop_to_frame(LANDMARKER_SIZE), [0, 0, 1]])
    small_to_crop = (np.linalg.inv(crop_to_frame) @ to_frame)[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(landmarks.segmentation, small_to_crop, size, flags=flags, borderValue=0)
    return np.round(np.clip(warped, 0, 1) * 255).astype(np.uint8)
