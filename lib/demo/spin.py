"""SPIN ResNet-50 image features, the image stream input the official checkpoints were trained with.

SPIN's HMR regressor is a torchvision-layout ResNet-50 followed by an iterative SMPL regressor; PMCE uses
only the backbone's global-average-pooled 2048 values. The user's ``spin_model_checkpoint.pth.tar``
(entry ``model``) is loaded strictly into a torchvision ResNet-50 trunk; its regressor weights are ignored.
Crops follow the official demo: a square box centred on the frame's keypoint box (keypoints with
confidence > 0.3), side = that box's diagonal x ``box_scale``, resampled to 224 x 224, RGB, ImageNet
normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from lib.demo.errors import DemoError
from lib.demo.video import FrameSource
from lib.device import resolve_device
from lib.models.weights import CheckpointError, extract_state_dict, read_checkpoint
from lib.people.types import Track

CROP = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
MIN_KEYPOINT_CONF = 0.3
BACKBONE_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")


def resnet50_trunk() -> torch.nn.Module:
    """ResNet-50 up to the global average pool: (B, 3, 224, 224) -> (B, 2048)."""
    from torchvision.models import resnet50

    net = resnet50(weights=None)
    net.fc = torch.nn.Identity()
    return net


def load_spin_backbone(path: str | Path) -> torch.nn.Module:
    """The ResNet-50 trunk with a SPIN checkpoint's backbone weights; a clear error if they do not fit."""
    path = Path(path)
    if not path.is_file():
        raise DemoError(
            f"SPIN checkpoint not found: {path}. DEMO.FEATURES 'spin' needs SPIN's "
            "spin_model_checkpoint.pth.tar (from the SPIN / official PMCE data release) at "
            "DEMO.SPIN_CHECKPOINT; or use DEMO.FEATURES silhouette"
        )
    try:
        state = extract_state_dict(read_checkpoint(path), str(path))
    except CheckpointError as err:
        raise DemoError(str(err)) from None
    backbone = {k: v for k, v in state.items() if k.startswith(BACKBONE_PREFIXES)}
    net = resnet50_trunk()
    try:
        net.load_state_dict(backbone)
    except RuntimeError as err:  # missing, unexpected or mis-shaped weights
        first = str(err).splitlines()[:3]
        raise DemoError(f"{path} is not a SPIN HMR checkpoint: {' '.join(first)}") from None
    return net.eval()


def crop_box(keypoints: np.ndarray, box_scale: float) -> tuple[float, float, float]:
    """(cx, cy, side) of the official demo's crop for (17, 3) keypoints in pixels."""
    good = keypoints[:, 2] > MIN_KEYPOINT_CONF
    pts = keypoints[good, :2] if good.sum() >= 2 else keypoints[:, :2]
    low, high = pts.min(axis=0), pts.max(axis=0)
    centre = (low + high) / 2
    side = max(float(np.linalg.norm(high - low)) * box_scale, 1.0)
    return float(centre[0]), float(centre[1]), side


def crop_image(frame: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """BGR frame -> (3, 224, 224) float32 normalised RGB crop of the square ``box`` (black outside)."""
    cx, cy, side = box
    s = CROP / side
    warp = np.array([[s, 0, CROP / 2 - cx * s], [0, s, CROP / 2 - cy * s]])
    crop = cv2.warpAffine(frame, warp, (CROP, CROP), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    rgb = crop[:, :, ::-1].astype(np.float32) / 255.0
    return ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)


class SpinFeatureExtractor:
    """Feature function (tracks, source) -> (N_i, 2048) per track: reads the frames once, batches crops."""

    def __init__(
        self, checkpoint: str | Path, box_scale: float = 1.1, device: str = "auto", batch_size: int = 64
    ) -> None:
        self.device = resolve_device(device)
        self.net = load_spin_backbone(checkpoint).to(self.device)
        self.box_scale = box_scale
        self.batch_size = batch_size

    def __call__(self, tracks: Sequence[Track], source: FrameSource) -> list[np.ndarray]:
        feats = [np.zeros((len(t), 2048), np.float32) for t in tracks]
        where = {}  # frame id -> [(track index, row)]
        for ti, track in enumerate(tracks):
            if track.keypoints is None:
                raise DemoError(f"track {track.track_id} has no keypoints to place the SPIN crop")
            for row, frame_id in enumerate(track.frame_ids):
                where.setdefault(int(frame_id), []).append((ti, row))
        crops, slots = [], []
        for frame_id, frame in source:
            for ti, row in where.get(frame_id, []):
                crops.append(crop_image(frame, crop_box(tracks[ti].keypoints[row], self.box_scale)))
                slots.append((ti, row))
            if len(crops) >= self.batch_size:
                self._run(crops, slots, feats)
                crops, slots = [], []
        if crops:
            self._run(crops, slots, feats)
        return feats

    @torch.inference_mode()
    def _run(self, crops: list[np.ndarray], slots: list[tuple[int, int]], feats: list[np.ndarray]) -> None:
        out = self.net(torch.from_numpy(np.stack(crops)).to(self.device)).float().cpu().numpy()
        for (ti, row), value in zip(slots, out, strict=True):
            feats[ti][row] = value
