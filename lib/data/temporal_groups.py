"""Training items of consecutive windows, for a loss on the motion between target frames.

Windows are predicted independently, so nothing in a per-window loss asks consecutive outputs to move
like the body does. :class:`TemporalGroups` turns window ``i`` of a dataset into the ``size`` windows
whose targets are consecutive frames of the same video segment around it (shifted to stay inside the
segment; a segment shorter than ``size`` repeats its windows), and :func:`collate_groups` flattens a batch
of groups to plain windows with each group's windows next to each other, so the model sees plain windows
and the loss can view the first ``batch["temporal_groups"] * size`` outputs as ``(groups, size, ...)``.

A group spends ``size`` windows on one position, so the same training time sees fewer distinct positions;
with ``share`` < 1 only that share of the samples are groups (redrawn every epoch) and the rest are single
windows, placed after the groups in the batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from lib.data.video_dataset import VideoDataset


class TemporalGroups(Dataset):
    """Item ``i``: the list of ``size`` items of ``dataset`` around window ``i`` (consecutive targets), or
    with probability ``1 - share`` (per item and epoch, from ``seed``) the single window ``i``."""

    def __init__(self, dataset: VideoDataset, size: int, share: float = 1.0, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.dataset, self.size, self.share, self.seed = dataset, size, share, seed
        self.epoch = 0
        windows = dataset.windows
        key = np.stack([windows.video, windows.segment], axis=1)
        starts = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]).any(axis=1)])  # first window of a segment
        self._first = np.repeat(starts, np.diff(np.r_[starts, len(key)]))  # (W,) its segment's first window
        self._end = np.repeat(np.r_[starts[1:], len(key)], np.diff(np.r_[starts, len(key)]))  # one past last

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def neighbours(self, index: int) -> list[int]:
        """The ``size`` window indices of item ``index``: centred on it, inside its segment."""
        first, end = int(self._first[index]), int(self._end[index])
        start = min(max(index - self.size // 2, first), max(end - self.size, first))
        return [min(start + k, end - 1) for k in range(self.size)]

    def is_group(self, index: int) -> bool:
        """Whether item ``index`` is a group this epoch."""
        if self.share >= 1.0:
            return True
        return np.random.default_rng([self.seed, self.epoch, index]).random() < self.share

    def __getitem__(self, index: int) -> list[dict]:
        if not self.is_group(index):
            return [self.dataset[index]]
        return [self.dataset[i] for i in self.neighbours(index)]


def collate_groups(groups: list[list[dict]]) -> dict:
    """A batch of groups (lists of G items) and single items (lists of one) -> one batch: the groups' items
    first, each group's contiguous, then the single items; ``temporal_groups`` counts the groups."""
    multi = [g for g in groups if len(g) > 1]
    ordered = multi + [g for g in groups if len(g) == 1]
    batch = default_collate([item for group in ordered for item in group])
    batch["temporal_groups"] = torch.tensor(len(multi))
    return batch
