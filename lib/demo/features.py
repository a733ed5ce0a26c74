"""Per-frame image features of every track: the image stream's input.

* ``silhouette`` (offline default): the fixed silhouette features of ``lib.data.silhouette`` computed
  from the person mask of the people backend (BlazePose's segmentation), cropped exactly as the synthetic
  training data crops its rendered silhouettes: a square box around the frame's COCO-17 keypoints.
* ``spin``: SPIN ResNet-50 features from the user's ``spin_model_checkpoint.pth.tar`` (``lib.demo.spin``),
  what the official checkpoints were trained with.
* ``zeros``: for models trained without image features (``USE_IMG_FEAT`` False in both streams).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.data.silhouette import FEATURE_DIM, crop_mask, silhouette_features, square_box
from lib.demo.errors import DemoError
from lib.demo.pipeline import FeatureFn
from lib.demo.video import FrameSource
from lib.people.types import Track


def silhouette_track_features(
    track: Track, frame_width: int, crop_size: int, crop_scale: float
) -> np.ndarray:
    """(N, 2048) silhouette features of a track's frames from its person masks.

    The crop is the square box of the frame's 17 keypoints (side = larger extent x ``crop_scale``),
    resampled to ``crop_size`` pixels. Frames without a mask (filled by the tracker) take the features
    of the nearest frame that has one.
    """
    if track.masks is None or track.keypoints is None:
        raise DemoError(
            f"track {track.track_id} has no person masks: silhouette features need the 'blazepose' "
            "people backend; with 'file' or 'onnx' set DEMO.FEATURES to 'spin' (with "
            "DEMO.SPIN_CHECKPOINT) or 'zeros'"
        )
    have = np.array([m is not None for m in track.masks])
    feats = np.zeros((len(track), FEATURE_DIM), np.float32)
    for k in np.flatnonzero(have):
        mask = track.masks[k]
        factor = mask.shape[1] / frame_width  # mask pixels per frame pixel
        cx, cy, side = square_box(track.keypoints[k, :, :2], crop_scale)
        feats[k] = silhouette_features(crop_mask(mask, (cx * factor, cy * factor, side * factor), crop_size))
    return feats[_nearest(have)]


def _nearest(have: np.ndarray) -> np.ndarray:
    """(N,) index of the nearest True entry of ``have`` (N,) for every position."""
    known = np.flatnonzero(have)
    pos = np.arange(len(have))
    right = np.clip(np.searchsorted(known, pos), 0, len(known) - 1)
    left = np.clip(right - 1, 0, len(known) - 1)
    take_left = np.abs(known[left] - pos) <= np.abs(known[right] - pos)
    return np.where(take_left, known[left], known[right])


def build_feature_fn(cfg) -> FeatureFn:
    """The feature function named by ``cfg.DEMO.FEATURES``, sized for the model of ``cfg``."""
    kind = cfg.DEMO.FEATURES
    dim = cfg.MODEL.IMG_FEAT_DIM
    if kind == "zeros":
        return lambda tracks, source: [np.zeros((len(t), dim), np.float32) for t in tracks]
    if dim != FEATURE_DIM:
        raise DemoError(
            f"DEMO.FEATURES {kind!r} gives {FEATURE_DIM} values per frame but MODEL.IMG_FEAT_DIM is {dim}"
        )
    if kind == "silhouette":
        crop = cfg.DATA.SYNTHETIC  # the crop the training silhouettes were computed on

        def silhouettes(tracks: Sequence[Track], source: FrameSource) -> list[np.ndarray]:
            width = source.info.width
            return [silhouette_track_features(t, width, crop.CROP_SIZE, crop.CROP_SCALE) for t in tracks]

        return silhouettes
    from lib.demo.spin import SpinFeatureExtractor

    return SpinFeatureExtractor(cfg.DEMO.SPIN_CHECKPOINT, cfg.DEMO.SPIN_BOX_SCALE, cfg.DEVICE)
