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

from lib.data.silhouette import FEATURE_DIM, mask_features
from lib.demo.errors import DemoError
from lib.demo.pipeline import FeatureFn
from lib.demo.video import FrameSource
from lib.people.types import Track


def silhouette_track_features(
    track: Track, frame_width: int, crop_size: int, crop_scale: float
) -> np.ndarray:
    """(N, 2048) silhouette features of a track's frames from its person masks
    (:func:`lib.data.silhouette.mask_features`, the training data's crop)."""
    if track.masks is None or track.keypoints is None:
        raise DemoError(
            f"track {track.track_id} has no person masks: silhouette features need the 'blazepose' "
            "people backend; with 'file' or 'onnx' set DEMO.FEATURES to 'spin' (with "
            "DEMO.SPIN_CHECKPOINT) or 'zeros'"
        )
    return mask_features(track.masks, track.keypoints, frame_width, crop_size, crop_scale)


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
