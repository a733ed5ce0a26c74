"""Sliding windows over videos: which frames each training / evaluation sample sees.

Window item contract
--------------------
A window is ``T`` frame indices and predicts exactly one *target* frame, the frame at position
``target_index`` of the window (the middle, ``T // 2``, by default). With our padding modes the targets of
a video (or of a gap-free segment of it) are the frames ``0, stride, 2 * stride, ...``; windows that reach
past either end of the video repeat its edge frame (``'replicate'``) or mirror it (``'reflect'``). Hence
with ``stride = 1`` every frame is the target of exactly one window, including videos shorter than ``T``.

``'official'`` reproduces the official code instead (TCMR's ``split_into_chunks``): no padding, videos
shorter than ``T`` skipped, no gap detection, and the "match_vibe" truncation of the tail whenever
``stride != T`` (see :func:`official_windows`). Its first and last ``T // 2`` frames are never targets;
the mesh variant (``split_into_chunks_mesh``) also drops windows whose target has no SMPL fit.

Everything here is pure numpy and works on frame *indices*; readers gather the frames themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lib.keypoints import resolve_target_index

PAD_MODES = ("replicate", "reflect", "official")
_NUMPY_PAD = {"replicate": "edge", "reflect": "reflect"}  # reflect: 2 1 | 0 1 2 ... (edge not repeated)
_VIBE_CHUNK = 16  # VIBE's non-overlapping chunk length, hard-coded by the official "match_vibe" truncation


@dataclass(frozen=True)
class WindowTable:
    """The windows of a whole dataset, one row per window (W windows of T frames).

    ``indices`` and ``target`` are row indices into the dataset's flat per-frame arrays (the arrays the
    ``video_ids`` / ``frame_ids`` passed to :func:`build_window_table` came from), so
    ``frames[indices[w]]`` is the (T, ...) input of window ``w`` and ``frames[target[w]]`` its label.
    """

    video_names: np.ndarray  # (V,) distinct video ids, in order of first appearance
    video: np.ndarray  # (W,) int, index into video_names
    segment: np.ndarray  # (W,) int, gap-free segment of the video the window lies in (0, 1, ...)
    indices: np.ndarray  # (W, T) int, rows of the window's frames
    target: np.ndarray  # (W,) int, row of the predicted frame; == indices[:, target_index]

    def __len__(self) -> int:
        return len(self.target)


def segment_video(frame_ids: np.ndarray, max_gap: int = 1) -> list[np.ndarray]:
    """Split one video where consecutive frame ids jump by more than ``max_gap``.

    Args:
        frame_ids: (N,) strictly increasing frame numbers of the video, in the dataset's frame step
            (a reader that keeps every 2nd frame passes ``frame_idx // 2``).
        max_gap: largest difference between consecutive ids inside one segment (1: no frame missing).

    Returns:
        Index arrays into ``frame_ids`` (positions 0..N-1), one per segment, in order; they cover
        every position exactly once.
    """
    frame_ids = np.asarray(frame_ids)
    if frame_ids.ndim != 1:
        raise ValueError(f"frame_ids must be 1-D (N,), got shape {frame_ids.shape}")
    if max_gap < 1:
        raise ValueError(f"max_gap must be >= 1, got {max_gap}")
    steps = np.diff(frame_ids)
    if np.any(steps <= 0):
        raise ValueError("frame_ids must be strictly increasing; sort the video's frames first")
    breaks = np.flatnonzero(steps > max_gap) + 1
    return np.split(np.arange(len(frame_ids)), breaks)


def make_windows(
    num_frames: int,
    seq_len: int,
    stride: int = 1,
    target_index: int | None = None,
    pad_mode: str = "replicate",
) -> tuple[np.ndarray, np.ndarray]:
    """Padded windows over one gap-free video of ``num_frames`` frames.

    Returns:
        indices: (W, T) int frame indices into the video; positions before the first / after the last
            frame are filled by ``pad_mode`` ('replicate': the edge frame, 'reflect': mirrored frames).
        targets: (W,) int, the predicted frames ``0, stride, 2 * stride, ... < num_frames``;
            ``indices[:, target_index] == targets``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if pad_mode not in _NUMPY_PAD:
        raise ValueError(f"pad_mode must be one of {tuple(_NUMPY_PAD)}, got {pad_mode!r}")
    target_index = resolve_target_index(seq_len, target_index)
    before, after = target_index, seq_len - 1 - target_index
    padded = np.pad(np.arange(num_frames), (before, after), mode=_NUMPY_PAD[pad_mode])  # (N + T - 1,)
    indices = sliding_window_view(padded, seq_len)[::stride]  # window w is centred on frame w * stride
    return indices.copy(), np.arange(0, num_frames, stride)


def official_windows(
    num_frames: int,
    seq_len: int,
    stride: int = 1,
    target_index: int | None = None,
    target_ok: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The official window set of one video (``view_as_windows`` + "match_vibe").

    Windows start at ``0, stride, 2 * stride, ...`` and never leave the video; a video shorter than
    ``seq_len`` has none. ``target_ok`` (N,) bool drops the windows whose target frame is False (the
    official mesh chunking: no SMPL fit). When ``stride != seq_len`` the windows after the one that ends
    on the last frame of VIBE's 16-frame chunking (frame ``16 * (N // 16) - 1``) are then dropped; if no
    remaining window ends there the set is kept whole, as in the official loop. For T = 16 this keeps the
    starts in ``[0, 16 * (N // 16) - 16]``.

    Returns:
        indices: (W, T) int frame indices (W may be 0); targets: (W,) int, ``indices[:, target_index]``.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    target_index = resolve_target_index(seq_len, target_index)
    if num_frames < seq_len:
        return np.zeros((0, seq_len), dtype=np.int64), np.zeros(0, dtype=np.int64)
    indices = sliding_window_view(np.arange(num_frames), seq_len)[::stride]
    if target_ok is not None:
        indices = indices[np.asarray(target_ok, dtype=bool)[indices[:, target_index]]]
    if stride != seq_len:
        last_vibe_frame = _VIBE_CHUNK * (num_frames // _VIBE_CHUNK) - 1
        hits = np.flatnonzero(indices[:, -1] == last_vibe_frame)
        if len(hits):
            indices = indices[: hits[0] + 1]
    return indices.copy(), indices[:, target_index].copy()


def build_window_table(
    video_ids: np.ndarray,
    frame_ids: np.ndarray,
    seq_len: int,
    stride: int = 1,
    target_index: int | None = None,
    pad_mode: str = "replicate",
    max_gap: int = 1,
    target_ok: np.ndarray | None = None,
) -> WindowTable:
    """Windows of every video of a dataset stored as flat per-frame arrays.

    Args:
        video_ids: (N,) video of each frame row (any hashable dtype: str or int); rows of one video need
            not be contiguous nor sorted.
        frame_ids: (N,) frame number of each row, unique within a video (see :func:`segment_video`).
        seq_len, stride, target_index: as in :func:`make_windows`.
        pad_mode: 'replicate' or 'reflect' (padded windows per gap-free segment, every frame a target
            when stride is 1) or 'official' (the official set: whole videos, no gap split, no padding).
        max_gap: frame-id jump above which a video is split into segments (ignored by 'official').
        target_ok: (N,) bool, rows that may be an 'official' window's target (see
            :func:`official_windows`); ignored by the padded modes, where every frame is a target.
    """
    video_ids, frame_ids = np.asarray(video_ids), np.asarray(frame_ids)
    if video_ids.shape != frame_ids.shape or video_ids.ndim != 1 or len(video_ids) == 0:
        raise ValueError(
            f"video_ids and frame_ids must be non-empty (N,) arrays, got {video_ids.shape}, {frame_ids.shape}"
        )
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    names, first, inverse = np.unique(video_ids, return_index=True, return_inverse=True)
    order = np.argsort(first)  # videos in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    inverse = rank[inverse.reshape(-1)]
    rows = np.lexsort((frame_ids, inverse))  # grouped by video, each video sorted by frame id
    per_video = np.split(rows, np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1])
    ok = np.ones(len(video_ids), dtype=bool) if target_ok is None else np.asarray(target_ok, dtype=bool)
    settings = (seq_len, stride, target_index, pad_mode, max_gap)
    parts = [_video_windows(v, r, frame_ids[r], ok[r], *settings) for v, r in enumerate(per_video)]
    video, segment, indices = (np.concatenate(column) for column in zip(*parts, strict=True))
    target = indices[:, resolve_target_index(seq_len, target_index)]
    return WindowTable(names[order], video, segment, indices, target)


def _video_windows(
    video: int,
    rows: np.ndarray,
    frame_ids: np.ndarray,
    target_ok: np.ndarray,
    seq_len: int,
    stride: int,
    target_index: int | None,
    pad_mode: str,
    max_gap: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W,) video, (W,) segment and (W, T) row indices of one video whose ``rows`` are sorted by frame."""
    if pad_mode == "official":
        segments = [np.arange(len(rows))]
        windows = [official_windows(len(rows), seq_len, stride, target_index, target_ok)[0]]
    else:
        segments = segment_video(frame_ids, max_gap)
        windows = [make_windows(len(s), seq_len, stride, target_index, pad_mode)[0] for s in segments]
    indices = np.concatenate([rows[s][w] for s, w in zip(segments, windows, strict=True)])
    segment = np.concatenate([np.full(len(w), i) for i, w in enumerate(windows)])
    return np.full(len(indices), video), segment, indices.reshape(-1, seq_len)
