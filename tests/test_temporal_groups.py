"""Consecutive-window training groups and the acceleration loss."""

from __future__ import annotations

import numpy as np
import torch

from lib.data.temporal_groups import TemporalGroups, collate_groups
from lib.data.windows import WindowTable
from lib.losses import accel_loss


class _Windows:
    """A stand-in dataset: windows of two videos (4 and 2 targets), items are their indices."""

    def __init__(self) -> None:
        video, segment = np.array([0, 0, 0, 0, 1, 1]), np.zeros(6, dtype=int)
        self.windows = WindowTable(
            video_names=np.array(["a", "b"]), video=video, segment=segment,
            indices=np.zeros((6, 1), int), target=np.arange(6),
        )  # fmt: skip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict:
        return {"index": index, "x": torch.tensor([float(index)])}


def test_groups_are_consecutive_windows_of_one_segment():
    groups = TemporalGroups(_Windows(), 3)
    assert [groups.neighbours(i) for i in range(6)] == [
        [0, 1, 2], [0, 1, 2], [1, 2, 3], [1, 2, 3],  # video 0: centred, shifted inside at the ends
        [4, 5, 5], [4, 5, 5],  # video 1 has two windows: the last repeats
    ]  # fmt: skip
    batch = collate_groups([groups[1], groups[4]])
    assert batch["index"].tolist() == [0, 1, 2, 4, 5, 5]  # each group's windows contiguous
    assert batch["temporal_groups"] == 2
    groups.set_epoch(3)
    assert groups.dataset.epoch == 3


def test_a_share_of_groups_puts_them_first_and_is_redrawn_per_epoch():
    groups = TemporalGroups(_Windows(), 3, share=0.5, seed=1)
    draws = []
    for epoch in range(8):
        groups.set_epoch(epoch)
        draws.append([groups.is_group(i) for i in range(6)])
    assert 0.3 < np.mean(draws) < 0.7 and len({tuple(d) for d in draws}) > 1
    first = draws[0]
    single, group = first.index(False), first.index(True)
    groups.set_epoch(0)
    assert len(groups[single]) == 1 and len(groups[group]) == 3
    batch = collate_groups([groups[single], groups[group]])  # the single window comes after the group
    assert batch["index"].tolist() == [*groups.neighbours(group), single]
    assert batch["temporal_groups"] == 1
    assert collate_groups([groups[single]])["temporal_groups"] == 0  # a batch without a group


def test_acceleration_loss_is_zero_for_true_motion_and_counts_valid_groups():
    t = torch.arange(6.0)[:, None, None].expand(6, 4, 3)
    truth = 0.5 * t**2  # constant acceleration 1 in every coordinate
    valid = torch.ones(6, dtype=torch.bool)
    assert accel_loss(truth + 3.0, truth, valid, 3) == 0  # an offset changes no acceleration
    jitter = truth.clone()
    jitter[1] += 0.1  # the middle of the first group
    assert torch.isclose(accel_loss(jitter, truth, valid, 3), torch.tensor(0.1))  # (0.2 + 0) / 2 groups
    valid[4] = False  # the second group no longer counts
    assert torch.isclose(accel_loss(jitter, truth, valid, 3), torch.tensor(0.2))
