"""Per-frame work once per frame when every frame of a video enters T overlapping windows.

Window by window, a frame passes through the parts of the network that see one frame only (the image
feature's projections: the pose stream's image token and the GRU's first-layer input gates; with screen
input also the pose stream's embedding and first spatial block) once per window containing it, T times.
``SharedFrames`` computes those parts once per distinct frame of a batch of windows, reuses them from the
previous batch where the windows overlap, and runs the rest of the network window by window: the same
outputs as ``model(pose2d, img_feat)`` up to float rounding.

Frames are identified by a row id per window slot (B, T) and checked by content: a frame id whose 2D
poses differ between windows (per-window synthetic noise) shares its image parts only, and a cached part
is reused only for the identical frame. Models: ``PMCE`` or ``PoseStream`` (``frame_parts`` /
``forward_frames``); anything else runs window by window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


def supports_shared_frames(model: nn.Module) -> bool:
    """Whether ``model`` has the per-frame interface (``frame_parts`` and ``forward_frames``)."""
    return callable(getattr(model, "frame_parts", None)) and callable(getattr(model, "forward_frames", None))


@dataclass
class _Cache:
    """The parts of the previous batch's distinct frames (U frames, rows sorted)."""

    rows: Tensor  # (U,) int64, sorted
    pose2d: Tensor | None  # (U, J, 2): the poses the parts were computed from; None: image parts only
    img_feat: Tensor  # (U, D)
    parts: dict[str, Tensor]  # name -> (U, ...)


class SharedFrames:
    """Callable ``(pose2d (B, T, J, 2), img_feat (B, T, D), rows (B, T) int) -> model output`` over
    consecutive batches of windows of the same frames (one evaluation loader, one demo video)."""

    def __init__(self, model: nn.Module) -> None:
        if not supports_shared_frames(model):
            raise TypeError(f"{type(model).__name__} has no frame_parts / forward_frames")
        self.model = model
        self._cache: _Cache | None = None

    def __call__(self, pose2d: Tensor, img_feat: Tensor, rows: Tensor):
        rows = rows.to(pose2d.device)
        uniq, inverse = torch.unique(rows, return_inverse=True)  # (U,), (B, T)
        first = _first_occurrence(inverse.flatten(), len(uniq))
        frames_img = img_feat.flatten(0, 1)[first]  # (U, D)
        if not torch.equal(frames_img[inverse], img_feat):  # a frame id with several features: no sharing
            self._cache = None
            return self.model(pose2d, img_feat)
        frames_pose = pose2d.flatten(0, 1)[first]  # (U, J, 2)
        if not torch.equal(frames_pose[inverse], pose2d):
            frames_pose = None  # per-window poses (e.g. synthetic noise): share the image parts only
        parts = self._frame_parts(uniq, frames_pose, frames_img)
        return self.model.forward_frames({k: v[inverse] for k, v in parts.items()}, pose2d)

    def _frame_parts(self, rows: Tensor, pose2d: Tensor | None, img_feat: Tensor) -> dict[str, Tensor]:
        """The parts of frames ``rows`` (U,), reused from the previous batch where the frame is identical."""
        hit, where = self._lookup(rows, pose2d, img_feat)
        if not hit.any():
            parts = self.model.frame_parts(pose2d, img_feat)
        else:
            miss = ~hit
            fresh = {}
            if miss.any():
                fresh = self.model.frame_parts(None if pose2d is None else pose2d[miss], img_feat[miss])
            parts = {}
            for name, old in self._cache.parts.items():
                part = old.new_empty((len(rows), *old.shape[1:]))
                part[hit] = old[where[hit]]
                if name in fresh:
                    part[miss] = fresh[name]
                parts[name] = part
        self._cache = _Cache(rows, pose2d, img_feat, parts)
        return parts

    def _lookup(self, rows: Tensor, pose2d: Tensor | None, img_feat: Tensor) -> tuple[Tensor, Tensor]:
        """(U,) bool: the frame is in the cache with the same inputs; (U,) its position there."""
        cache = self._cache
        none = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        if cache is None or (cache.pose2d is None) != (pose2d is None) or len(cache.rows) == 0:
            return none, none.long()
        where = torch.searchsorted(cache.rows, rows).clamp_max(len(cache.rows) - 1)
        hit = (cache.rows[where] == rows) & (cache.img_feat[where] == img_feat).all(-1)
        if pose2d is not None:
            hit &= (cache.pose2d[where] == pose2d).flatten(1).all(-1)
        return hit, where


def _first_occurrence(inverse: Tensor, count: int) -> Tensor:
    """inverse: (M,) ids in [0, count) -> (count,) the first position of each id."""
    positions = torch.arange(len(inverse), device=inverse.device)
    first = torch.full((count,), len(inverse), dtype=torch.long, device=inverse.device)
    return first.scatter_reduce_(0, inverse, positions, reduce="amin")
