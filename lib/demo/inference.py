"""PMCE over every frame of every track: one padded window per frame, batched across tracks.

The model is anything with the PMCE interface: ``model(pose2d (B, T, J, 2), img_feat (B, T, D))``
returning an object with ``mesh`` (B, V, 3), ``joints`` (B, J, 3) and ``pose3d`` (B, J, 3) in metres
for each window's target frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lib.data.windows import make_windows
from lib.demo.errors import DemoError
from lib.models.mirror import Mirror, window_runner
from lib.models.precision import inference_dtype, reduced_precision


@dataclass(frozen=True)
class TrackInput:
    """One track's network inputs (N frames)."""

    track_id: int
    pose2d: np.ndarray  # (N, J, 2) normalised keypoints
    img_feat: np.ndarray  # (N, D) per-frame image features


@dataclass(frozen=True)
class TrackPrediction:
    """The network's outputs for every frame of a track, metres, root-relative."""

    track_id: int
    vertices: np.ndarray  # (N, V, 3) float32
    joints: np.ndarray  # (N, J, 3) float32, refined by the decoder
    pose3d: np.ndarray  # (N, J, 3) float32, from the pose stream


def select_tracks(inputs: Sequence[TrackInput], min_len: int) -> tuple[list[TrackInput], list[str]]:
    """The tracks with at least ``min_len`` frames, and one message per skipped track.

    Raises DemoError when there is no track at all or every track is too short."""
    if not inputs:
        raise DemoError("no person found in the video (the people backend returned no detection)")
    keep = [t for t in inputs if len(t.pose2d) >= min_len]
    skipped = [
        f"track {t.track_id}: {len(t.pose2d)} frames < DEMO.MIN_TRACK_LEN = {min_len}, skipped"
        for t in inputs
        if len(t.pose2d) < min_len
    ]
    if not keep:
        longest = max(len(t.pose2d) for t in inputs)
        raise DemoError(
            f"every track is shorter than DEMO.MIN_TRACK_LEN = {min_len} frames (the longest has {longest}); "
            "lower DEMO.MIN_TRACK_LEN or use a longer video"
        )
    return keep, skipped


@torch.inference_mode()
def predict_tracks(
    model: torch.nn.Module,
    tracks: Sequence[TrackInput],
    seq_len: int,
    target_index: int | None = None,
    pad_mode: str = "replicate",
    batch_size: int = 32,
    precision: str = "auto",
    share_frames: bool = True,
    mirror: Mirror | None = None,
) -> list[TrackPrediction]:
    """Run the model once per frame of every track (window centred on the frame, padded at the ends
    by ``pad_mode``; tracks shorter than ``seq_len`` are padded too), ``batch_size`` windows at a time,
    on the device of the model's parameters.

    ``precision``: 'auto' (bfloat16 where the device has it natively), 'float32' or 'bfloat16'
    (lib/models/precision.py). ``share_frames``: the network's per-frame parts once per frame instead
    of once per window (lib/models/shared_frames.py; the same outputs), for models that support it.
    ``mirror``: each window's prediction averaged with the mirrored window's (lib/models/mirror.py)."""
    if not tracks:
        return []
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    model.eval()
    for t in tracks:
        if len(t.img_feat) != len(t.pose2d):
            raise ValueError(f"track {t.track_id}: {len(t.pose2d)} poses but {len(t.img_feat)} feature rows")
    pose2d = torch.from_numpy(np.concatenate([t.pose2d for t in tracks]).astype(np.float32))  # (sum N, J, 2)
    feats = torch.from_numpy(np.concatenate([t.img_feat for t in tracks]).astype(np.float32))  # (sum N, D)
    starts, windows = track_windows(tracks, seq_len, target_index, pad_mode)
    run = window_runner(model, share_frames, mirror)
    outs: dict[str, list[np.ndarray]] = {"mesh": [], "joints": [], "pose3d": []}
    with reduced_precision(model, inference_dtype(precision, device)):
        for b in range(0, len(windows), batch_size):
            idx = windows[b : b + batch_size]
            inputs = pose2d[idx].to(device), feats[idx].to(device)  # (B, T, J, 2), (B, T, D)
            out = run(*inputs, idx)
            for key in outs:
                outs[key].append(getattr(out, key).float().cpu().numpy())
    mesh, joints, pose3d = (np.concatenate(outs[k]) for k in ("mesh", "joints", "pose3d"))
    return [
        TrackPrediction(t.track_id, mesh[a:b], joints[a:b], pose3d[a:b])
        for t, a, b in zip(tracks, starts[:-1], starts[1:], strict=True)
    ]


def track_windows(
    tracks: Sequence[TrackInput], seq_len: int, target_index: int | None, pad_mode: str
) -> tuple[np.ndarray, torch.Tensor]:
    """Each track's first row in the tracks' concatenated frames (len(tracks) + 1,) and the windows
    (sum N, T) over those rows: row k predicts frame k; windows never cross tracks."""
    starts = np.cumsum([0] + [len(t.pose2d) for t in tracks])
    windows = [
        make_windows(len(t.pose2d), seq_len, 1, target_index, pad_mode)[0] + s
        for t, s in zip(tracks, starts[:-1], strict=True)
    ]
    return starts, torch.from_numpy(np.concatenate(windows))
