"""User-supplied multi-person backend: an ONNX person detector + an ONNX top-down COCO-17 pose model.

onnxruntime is imported only when this backend is built. Supported model layouts (those of the
RTMDet / YOLOX-style detectors and RTMPose / SimpleBaseline-style pose models exported by MMDeploy or
shipped by rtmlib):

* detector: one image input (1, 3, H, W); the first output holds boxes (1, N, 5) or (N, 5) as
  ``x1, y1, x2, y2, score`` in input pixels; an optional second output (1, N) of class labels, of which
  label 0 (person) is kept. The frame is letterboxed (aspect kept, padded with 114) to H x W.
* pose: one input (1, 3, h, w), the person's box enlarged by 1.25 to the model's aspect ratio;
  outputs either SimCC vectors ``simcc_x`` (1, 17, k*w), ``simcc_y`` (1, 17, k*h), or heatmaps
  (1, 17, h', w').

Pixel normalisation is ``(pixel - mean) / std`` per channel of the RGB (or BGR) image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lib.people.errors import PeopleError
from lib.people.types import Detection

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255
IMAGENET_STD = (58.395, 57.12, 57.375)


class OnnxBackend:
    """Detections with keypoints from two local ONNX files (see the module docstring for layouts)."""

    def __init__(
        self,
        detector_path: str | Path,
        pose_path: str | Path,
        min_score: float = 0.5,
        rgb: bool = True,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        box_scale: float = 1.25,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
    ) -> None:
        for what, key, path in (
            ("detector", "DEMO.ONNX_DETECTOR", detector_path),
            ("pose model", "DEMO.ONNX_POSE", pose_path),
        ):
            if not path or not Path(path).is_file():
                raise PeopleError(
                    f"ONNX {what} weights not found: {str(path) or '(empty)'}; set {key} to a .onnx file"
                )
        try:
            import onnxruntime as ort
        except ImportError:
            raise PeopleError(
                "the 'onnx' people backend needs onnxruntime (pip install onnxruntime)"
            ) from None
        try:
            self._det = ort.InferenceSession(str(detector_path), providers=list(providers))
            self._pose = ort.InferenceSession(str(pose_path), providers=list(providers))
        except Exception as err:  # onnxruntime raises its own exception types
            raise PeopleError(f"onnxruntime cannot load the ONNX models: {err}") from None
        self.min_score, self.rgb, self.box_scale = min_score, rgb, box_scale
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self._det_hw = tuple(self._det.get_inputs()[0].shape[2:4])
        self._pose_hw = tuple(self._pose.get_inputs()[0].shape[2:4])

    def _blob(self, image: np.ndarray) -> np.ndarray:
        if self.rgb:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return ((image.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1)[None]

    def __call__(self, frame_id: int, frame: np.ndarray) -> list[Detection]:
        image, scale = letterbox(frame, self._det_hw)
        outputs = self._det.run(None, {self._det.get_inputs()[0].name: self._blob(image)})
        boxes = np.asarray(outputs[0]).reshape(-1, 5)
        if len(outputs) > 1:
            boxes = boxes[np.asarray(outputs[1]).reshape(-1) == 0]
        boxes = boxes[boxes[:, 4] >= self.min_score]
        detections = []
        for x1, y1, x2, y2, score in boxes:
            box = np.array([x1, y1, x2, y2]) / scale
            crop, warp = crop_box(frame, box, self._pose_hw, self.box_scale)
            out = self._pose.run(None, {self._pose.get_inputs()[0].name: self._blob(crop)})
            if len(out) >= 2:
                xy, conf = decode_simcc(np.asarray(out[0])[0], np.asarray(out[1])[0], self._pose_hw)
            else:
                xy, conf = decode_heatmap(np.asarray(out[0])[0], self._pose_hw)
            xy = (xy - warp[:, 2]) @ np.linalg.inv(warp[:, :2]).T  # crop pixels -> frame pixels
            detections.append(Detection(box, float(score), np.concatenate([xy, conf[:, None]], axis=1)))
        return detections


def letterbox(frame: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Frame resized to fit (h, w) with its aspect kept, padded right/bottom with 114; and the scale."""
    h, w = size_hw
    scale = min(h / frame.shape[0], w / frame.shape[1])
    resized = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)))
    out = np.full((h, w, 3), 114, dtype=np.uint8)
    out[: resized.shape[0], : resized.shape[1]] = resized
    return out, scale


def crop_box(
    frame: np.ndarray, box: np.ndarray, size_hw: tuple[int, int], box_scale: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """The (h, w) crop around ``box`` (x1, y1, x2, y2), enlarged by ``box_scale`` and widened or
    heightened to the crop's aspect; and the (2, 3) affine map from frame to crop pixels."""
    h, w = size_hw
    center = (box[:2] + box[2:]) / 2
    bw, bh = box[2] - box[0], box[3] - box[1]
    bw, bh = max(bw, bh * w / h), max(bh, bw * h / w)
    s = w / (bw * box_scale)  # the same in y by construction
    warp = np.array([[s, 0, w / 2 - s * center[0]], [0, s, h / 2 - s * center[1]]])
    return cv2.warpAffine(frame, warp, (w, h), flags=cv2.INTER_LINEAR), warp


def decode_simcc(
    simcc_x: np.ndarray, simcc_y: np.ndarray, size_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """SimCC (J, k*w), (J, k*h) -> (J, 2) crop pixels and (J,) confidence (min of the two peaks)."""
    split = simcc_x.shape[1] / size_hw[1]
    x, y = simcc_x.argmax(axis=1) / split, simcc_y.argmax(axis=1) / split
    conf = np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1))
    return np.stack([x, y], axis=1), conf


def decode_heatmap(heatmaps: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (J, h', w') -> (J, 2) crop pixels (cell centres) and (J,) peak values."""
    j, hh, hw = heatmaps.shape
    flat = heatmaps.reshape(j, -1)
    idx = flat.argmax(axis=1)
    y, x = np.divmod(idx, hw)
    xy = (np.stack([x, y], axis=1) + 0.5) * np.array([size_hw[1] / hw, size_hw[0] / hh])
    return xy, flat.max(axis=1)
