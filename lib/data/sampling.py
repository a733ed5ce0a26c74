"""Deterministic mixing of several training datasets with explicit ratios and epoch length.

The official ``MultipleDatasets`` picks a dataset uniformly at random per item, so an "epoch" is neither a
pass over the data nor reproducible. :class:`MixedDatasetSampler` fixes both: an epoch is exactly
``epoch_length`` samples, dataset ``d`` contributes ``round(epoch_length * ratio_d / sum(ratios))`` of them
(largest-remainder rounding, so the counts sum to the epoch length), each dataset is walked through
random permutations (no item repeats before all of its items were seen once in the epoch), and the result
is shuffled. The order is a function of ``(seed, epoch)`` only. The sampler runs in the main process, so
DataLoader workers do not affect it; per-sample randomness (noise) should be keyed by ``(seed, epoch,
index)`` as in :func:`lib.data.noise.noise_rng`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from yacs.config import CfgNode


class MixedDatasetSampler:
    """Yields global indices into ``ConcatDataset(datasets)``; with ``world_size > 1`` this rank's shard.

    The epoch's order is padded (by wrapping around) to a multiple of ``world_size`` and rank ``r`` takes
    positions ``r, r + world_size, ...``: the shards are disjoint and together cover the epoch, and the
    full order does not depend on ``world_size``. ``len(sampler) == ceil(epoch_length / world_size)``.
    Call :meth:`set_epoch` before iterating each epoch (as with ``DistributedSampler``).
    """

    def __init__(
        self,
        dataset_sizes: Sequence[int],
        ratios: Sequence[float],
        epoch_length: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        _check_mix(dataset_sizes, ratios)
        if epoch_length < 1:
            raise ValueError(f"epoch_length must be >= 1, got {epoch_length}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        self.dataset_sizes = tuple(int(n) for n in dataset_sizes)
        self.counts = _allocate(epoch_length, np.asarray(ratios, dtype=np.float64))
        self.epoch_length = epoch_length
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch whose order the next iteration yields, from this rank's ``start``-th item on
        (resuming mid-epoch continues with exactly the items an uninterrupted run would see)."""
        self.epoch = epoch
        self.start = start

    def epoch_order(self) -> np.ndarray:
        """(epoch_length,) global indices of the whole epoch, over all ranks, in order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        offsets = np.cumsum((0, *self.dataset_sizes[:-1]))
        parts = [
            offset + _walk(rng, size, count)
            for offset, size, count in zip(offsets, self.dataset_sizes, self.counts, strict=True)
        ]
        return rng.permutation(np.concatenate(parts))

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_order()
        padded = np.resize(order, len(self) * self.world_size)  # wraps around to a multiple of world_size
        return iter(padded[self.rank :: self.world_size][self.start :].tolist())

    def __len__(self) -> int:
        return -(-self.epoch_length // self.world_size)


def build_sampler(
    cfg: CfgNode, dataset_sizes: Sequence[int], rank: int = 0, world_size: int = 1
) -> MixedDatasetSampler:
    """The training sampler from DATA.TRAIN_RATIOS, DATA.EPOCH_LENGTH (0: sum of the sizes) and SEED."""
    epoch_length = cfg.DATA.EPOCH_LENGTH or int(sum(dataset_sizes))
    return MixedDatasetSampler(dataset_sizes, cfg.DATA.TRAIN_RATIOS, epoch_length, cfg.SEED, rank, world_size)


def _check_mix(dataset_sizes: Sequence[int], ratios: Sequence[float]) -> None:
    if len(dataset_sizes) == 0 or len(dataset_sizes) != len(ratios):
        raise ValueError(
            f"dataset_sizes and ratios need one entry per dataset, got {len(dataset_sizes)} and {len(ratios)}"
        )
    if any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be >= 0 with a positive sum, got {list(ratios)}")
    empty = [d for d, (n, r) in enumerate(zip(dataset_sizes, ratios, strict=True)) if r > 0 and n < 1]
    if empty:
        raise ValueError(f"dataset_sizes: datasets {empty} are empty but have a positive ratio")


def _allocate(total: int, ratios: np.ndarray) -> np.ndarray:
    """(D,) integer counts summing to ``total``, proportional to ``ratios`` (largest remainder)."""
    exact = total * ratios / ratios.sum()
    counts = np.floor(exact).astype(np.int64)
    remainder_order = np.argsort(-(exact - counts), kind="stable")
    counts[remainder_order[: total - counts.sum()]] += 1
    return counts


def _walk(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """(count,) local indices: consecutive random permutations of ``range(size)``, truncated."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    passes = -(-count // size)
    return np.concatenate([rng.permutation(size) for _ in range(passes)])[:count]
