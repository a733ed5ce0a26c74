"""Windows over videos, gap splitting and the mixing sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lib.config import get_cfg
from lib.data.sampling import MixedDatasetSampler, build_sampler
from lib.data.windows import build_window_table, make_windows, official_windows, segment_video


@pytest.mark.parametrize("pad_mode", ["replicate", "reflect"])
@pytest.mark.parametrize("seq_len", [4, 16])
@pytest.mark.parametrize("position", ["middle", "first", "last"])
@pytest.mark.parametrize("num_frames", [1, 3, 4, 15, 16, 17, 40])
def test_every_frame_is_the_target_of_exactly_one_window(pad_mode, seq_len, position, num_frames):
    target_index = {"middle": None, "first": 0, "last": seq_len - 1}[position]
    indices, targets = make_windows(num_frames, seq_len, 1, target_index, pad_mode)
    resolved = seq_len // 2 if target_index is None else target_index
    assert indices.shape == (num_frames, seq_len)
    np.testing.assert_array_equal(targets, np.arange(num_frames))
    np.testing.assert_array_equal(indices[:, resolved], targets)
    assert indices.min() >= 0 and indices.max() < num_frames
    # Inside the video a window is consecutive frames around its target.
    offsets = np.arange(seq_len) - resolved
    inside = (targets[:, None] + offsets >= 0) & (targets[:, None] + offsets < num_frames)
    np.testing.assert_array_equal(indices[inside], (targets[:, None] + offsets)[inside])


def test_replicate_padding_repeats_the_edge_frames():
    indices, _ = make_windows(5, 4, pad_mode="replicate")
    np.testing.assert_array_equal(indices[0], [0, 0, 0, 1])
    np.testing.assert_array_equal(indices[-1], [2, 3, 4, 4])
    indices, _ = make_windows(5, 4, pad_mode="reflect")
    np.testing.assert_array_equal(indices[0], [2, 1, 0, 1])
    np.testing.assert_array_equal(indices[-1], [2, 3, 4, 3])


def test_stride_keeps_every_stride_th_target():
    indices, targets = make_windows(10, 4, stride=3)
    np.testing.assert_array_equal(targets, [0, 3, 6, 9])
    np.testing.assert_array_equal(indices[:, 2], targets)


def test_official_windows_n40_t16_stride1():
    # view_as_windows gives starts 0..24; match_vibe keeps starts in [0, 16 * (40 // 16) - 16] = [0, 16].
    indices, targets = official_windows(40, 16, stride=1)
    assert indices.shape == (17, 16)
    np.testing.assert_array_equal(indices[:, 0], np.arange(17))
    np.testing.assert_array_equal(targets, np.arange(8, 25))  # frames 0-7 and 25-39 are never targets


def test_official_windows_other_cases():
    np.testing.assert_array_equal(
        official_windows(40, 16, stride=16)[1], [8, 24]
    )  # stride == T: no truncation
    np.testing.assert_array_equal(official_windows(50, 16, stride=1)[1], np.arange(8, 41))  # starts 0..32
    np.testing.assert_array_equal(official_windows(40, 16, stride=4)[0][:, 0], [0, 4, 8, 12, 16])
    np.testing.assert_array_equal(official_windows(40, 16, stride=5)[0][:, 0], [0, 5, 10, 15, 20])  # no hit
    assert official_windows(15, 16)[0].shape == (0, 16)  # shorter than T: skipped


def test_official_mesh_windows_drop_targets_without_a_fit_before_match_vibe():
    ok = np.ones(40, dtype=bool)
    ok[10] = False
    np.testing.assert_array_equal(official_windows(40, 16, target_ok=ok)[1], np.delete(np.arange(8, 25), 2))
    ok[24] = False  # the window ending on VIBE's last chunk frame is gone: the official loop keeps the tail
    expected = [t for t in range(8, 33) if t not in (10, 24)]
    np.testing.assert_array_equal(official_windows(40, 16, target_ok=ok)[1], expected)
    table = build_window_table(np.zeros(40), np.arange(40), 16, pad_mode="replicate", target_ok=ok)
    assert len(table) == 40  # padded modes predict every frame


def test_segment_video_splits_at_gaps():
    parts = segment_video(np.array([0, 1, 2, 5, 6, 9]), max_gap=1)
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4], [5]]
    parts = segment_video(np.array([0, 2, 4, 7]), max_gap=2)
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3]]
    assert [p.tolist() for p in segment_video(np.array([7]))] == [[0]]
    with pytest.raises(ValueError, match="frame_ids"):
        segment_video(np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="max_gap"):
        segment_video(np.array([0, 1]), max_gap=0)


def test_window_table_covers_every_row_once_and_respects_segments():
    rng = np.random.default_rng(0)
    video_ids = np.array(["b"] * 10 + ["a"] * 25 + ["c"] * 3)
    frame_ids = np.concatenate([np.arange(10), np.r_[np.arange(12), np.arange(20, 33)], np.arange(3)])
    perm = rng.permutation(len(video_ids))  # rows of a video need not be contiguous or sorted
    table = build_window_table(video_ids[perm], frame_ids[perm], seq_len=4, max_gap=1)
    assert list(table.video_names) == list(dict.fromkeys(video_ids[perm]))  # order of first appearance
    assert sorted(table.target.tolist()) == list(range(len(video_ids)))
    np.testing.assert_array_equal(table.indices[:, 2], table.target)
    window_video = video_ids[perm][table.indices]  # (W, T)
    assert (window_video == table.video_names[table.video][:, None]).all()
    window_frames = frame_ids[perm][table.indices]
    assert (np.abs(np.diff(window_frames, axis=1)) <= 1).all()  # no window straddles the gap 11 -> 20
    a = list(table.video_names).index("a")
    assert sorted(set(table.segment[table.video == a].tolist())) == [0, 1]


def test_window_table_official_mode_matches_official_windows():
    video_ids = np.repeat([0, 1, 2], [40, 10, 50])
    frame_ids = np.concatenate([np.arange(40), np.arange(10), np.arange(50)])
    table = build_window_table(video_ids, frame_ids, seq_len=16, pad_mode="official")
    assert len(table) == 17 + 0 + 33
    np.testing.assert_array_equal(table.target[:17], np.arange(8, 25))
    np.testing.assert_array_equal(table.target[17:], 50 + np.arange(8, 41))


def test_window_errors_name_the_argument():
    with pytest.raises(ValueError, match="pad_mode"):
        make_windows(5, 4, pad_mode="zeros")
    with pytest.raises(ValueError, match="target_index"):
        make_windows(5, 4, target_index=4)
    with pytest.raises(ValueError, match="stride"):
        make_windows(5, 4, stride=0)
    with pytest.raises(ValueError, match="num_frames"):
        make_windows(0, 4)
    with pytest.raises(ValueError, match="video_ids"):
        build_window_table(np.zeros(3), np.zeros(2), 4)


def test_sampler_is_deterministic_per_seed_and_epoch():
    def order(seed, epoch):
        sampler = MixedDatasetSampler([50, 200, 7], [1.0, 2.0, 1.0], epoch_length=300, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 3) == order(0, 3)
    assert order(0, 3) != order(0, 4)
    assert order(0, 3) != order(1, 3)


def test_sampler_respects_ratios_and_walks_permutations():
    sizes = [100, 1000, 7]
    sampler = MixedDatasetSampler(sizes, [0.5, 0.3, 0.2], epoch_length=1000, seed=5)
    order = np.array(list(sampler))
    assert len(order) == len(sampler) == 1000
    dataset = np.searchsorted(np.cumsum(sizes), order, side="right")
    counts = np.bincount(dataset, minlength=3) / len(order)
    np.testing.assert_allclose(counts, [0.5, 0.3, 0.2], atol=0.01)
    assert set(Counter(order[dataset == 0]).values()) == {5}  # 500 draws of 100 items: five full passes
    assert len(set(order[dataset == 1].tolist())) == 300  # 300 of 1000 items: no repeats
    assert order.min() >= 0 and order.max() < sum(sizes)


@pytest.mark.parametrize("epoch_length", [999, 1000])
def test_sampler_shards_are_disjoint_and_cover_the_epoch(epoch_length):
    world_size = 4
    full = MixedDatasetSampler([30, 400], [1, 1], epoch_length, seed=2)
    full.set_epoch(1)
    order = full.epoch_order()
    shards = []
    for rank in range(world_size):
        sampler = MixedDatasetSampler(
            [30, 400], [1, 1], epoch_length, seed=2, rank=rank, world_size=world_size
        )
        sampler.set_epoch(1)
        shards.append(list(sampler))
    assert all(len(s) == -(-epoch_length // world_size) for s in shards)
    interleaved = np.stack(shards, axis=1).reshape(-1)  # position p of the epoch went to rank p % world_size
    np.testing.assert_array_equal(interleaved[:epoch_length], order)


def test_build_sampler_reads_the_config():
    cfg = get_cfg(opts=["DATA.TRAIN_LIST", "['a', 'b']", "DATA.TRAIN_RATIOS", "[3.0, 1.0]"])
    sampler = build_sampler(cfg, [10, 30])
    assert len(sampler) == 40 and sampler.counts.tolist() == [30, 10]
    with pytest.raises(ValueError, match="ratios"):
        MixedDatasetSampler([10, 10], [1.0, -1.0], 5, seed=0)
    with pytest.raises(ValueError, match="dataset_sizes"):
        MixedDatasetSampler([10, 0], [1.0, 1.0], 5, seed=0)
    with pytest.raises(ValueError, match="rank"):
        MixedDatasetSampler([10], [1.0], 5, seed=0, rank=2, world_size=2)
