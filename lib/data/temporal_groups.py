"""Training items of consecutive windows, for a loss on the motion between target frames.

Windows are predicted independently, so nothing in a per-window loss asks consecutive outputs to move
like the body does. :class:`TemporalGroups` turns window ``i`` of a dataset into the ``size`` windows
whose targets are consecutive frames of the same video segment around it (shifted to stay inside the
segment; a segment shorter than ``size`` repeats its windows), and :func:`collate_groups` flattens a batch
of groups to ``B * size`` windows with each group's windows next to each other, so the model sees plain
windows and the loss can view its outputs as ``(B, size, ...)``.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, default_collate

from lib.data.video_dataset import VideoDataset


class TemporalGroups(Dataset):
    """Item ``i``: the list of ``size`` items of ``dataset`` around window ``i`` (consecutive targets)."""

    def __init__(self, dataset: VideoDataset, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.dataset, self.size = dataset, size
        windows = dataset.windows
        key = np.stack([windows.video, windows.segment], axis=1)
        starts = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]).any(axis=1)])  # first window of a segment
        self._first = np.repeat(starts, np.diff(np.r_[starts, len(key)]))  # (W,) its segment's first window
        self._end = np.repeat(np.r_[starts[1:], len(key)], np.diff(np.r_[starts, len(key)]))  # one past last

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def neighbours(self, index: int) -> list[int]:
        """The ``size`` window indices of item ``index``: centred on it, inside its segment."""
        first, end = int(self._first[index]), int(self._end[index])
        start = min(max(index - self.size // 2, first), max(end - self.size, first))
        return [min(start + k, end - 1) for k in range(self.size)]

    def __getitem__(self, index: int) -> list[dict]:
        return [self.dataset[i] for i in self.neighbours(index)]


def collate_groups(groups: list[list[dict]]) -> dict:
    """A batch of B groups of G items -> one batch of B * G items, each group's items contiguous."""
    return default_collate([item for group in groups for item in group])
