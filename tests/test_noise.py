"""The synthetic detection-noise model: statistics, temporal structure, determinism."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lib.config import get_cfg
from lib.constants import flip_pairs
from lib.data.noise import DetectionNoise, build_noise, default_std_multipliers, noise_rng, person_scale
from lib.data.synthetic.noise_stats import measure_noise, standing_skeleton

ROOT = Path(__file__).resolve().parents[1]


def _noise(joint_set: str = "coco17", *opts: str) -> DetectionNoise:
    return build_noise(get_cfg(opts=["DATA.NOISE.JOINT_SET", joint_set, *opts]))


def _window(joint_set: str = "coco17", num_frames: int = 16) -> np.ndarray:
    return np.broadcast_to(standing_skeleton(joint_set, 300.0) + 500.0, (num_frames, 17, 2)).copy()


@pytest.mark.parametrize("joint_set", ["coco17", "h36m17"])
def test_measured_statistics_match_the_config(joint_set):
    noise = _noise(joint_set)
    stats = measure_noise(noise, joint_set, num_windows=400, num_frames=16, seed=1)
    np.testing.assert_allclose(stats.std_ratio(), 1.0, atol=0.10)
    np.testing.assert_allclose(stats.lag1, noise.lag1_corr, atol=0.06)
    np.testing.assert_allclose(stats.miss.mean(), noise.miss_prob, rtol=0.3)
    np.testing.assert_allclose(stats.outlier.mean(), noise.outlier_prob, rtol=0.4)
    paired = ~np.isnan(stats.swap)
    assert paired.sum() == 2 * len(flip_pairs(joint_set))
    np.testing.assert_allclose(stats.swap[paired].mean(), noise.swap_prob, rtol=0.4)


def test_noise_is_temporally_correlated_only_when_configured():
    correlated = measure_noise(_noise(), "coco17", num_windows=200, seed=2)
    assert correlated.lag1.min() > 0.6
    white = _noise("coco17", "DATA.NOISE.JITTER_CORR", "0.0", "DATA.NOISE.DRIFT_SHARE", "0.0")
    assert np.abs(measure_noise(white, "coco17", num_windows=200, seed=2).lag1).max() < 0.05


def test_same_seed_epoch_key_gives_the_same_noise_and_epochs_differ():
    noise, clean = _noise(), _window()
    scale = person_scale(clean)
    first, visible = noise.apply(clean, scale, noise_rng(7, 3, "3dpw/courtyard/12"))
    again, visible_again = noise.apply(clean, scale, noise_rng(7, 3, "3dpw/courtyard/12"))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(visible, visible_again)
    next_epoch, _ = noise.apply(clean, scale, noise_rng(7, 4, "3dpw/courtyard/12"))
    other_key, _ = noise.apply(clean, scale, noise_rng(7, 3, 12))
    assert not np.allclose(first, next_epoch) and not np.allclose(first, other_key)


def test_noise_scales_with_the_person_so_units_do_not_matter():
    noise, pixels = _noise(), _window()
    normalised = pixels / 960.0 - 1.0
    noisy_px, _ = noise.apply(pixels, person_scale(pixels), noise_rng(0, 0, 0))
    noisy_norm, _ = noise.apply(normalised, person_scale(normalised), noise_rng(0, 0, 0))
    np.testing.assert_allclose(noisy_px / 960.0 - 1.0, noisy_norm, atol=1e-9)


def test_swaps_exchange_left_and_right_positions():
    pairs = flip_pairs("coco17")
    noise = DetectionNoise(
        std=(0.0,) * 17, pairs=pairs, swap_prob=0.3, swap_len=2.0, miss_prob=0, outlier_prob=0
    )
    clean = _window(num_frames=200)
    noisy, visible = noise.apply(clean, 300.0, np.random.default_rng(0))
    assert visible.all()
    left, right = np.array(pairs).T
    swapped = np.all(noisy[:, left] == clean[:, right], axis=-1)  # (T, P)
    kept = np.all(noisy[:, left] == clean[:, left], axis=-1)
    assert (swapped ^ kept).all() and 0.15 < swapped.mean() < 0.45
    np.testing.assert_array_equal(noisy[:, right][swapped], clean[:, left][swapped])


def test_missed_joints_are_invisible_and_hold_their_last_position():
    noise = DetectionNoise(std=(0.02,) * 17, miss_prob=0.2, miss_len=3.0, outlier_prob=0, swap_prob=0)
    clean = _window(num_frames=300)
    draw = noise.draw(300, np.random.default_rng(3))
    noisy, visible = noise.compose(clean, 300.0, draw)
    np.testing.assert_array_equal(visible, ~draw.missed)
    held = ~visible[1:]
    np.testing.assert_array_equal(noisy[1:][held], noisy[:-1][held])
    assert 0.1 < (~visible).mean() < 0.3


def test_build_noise_per_joint_std():
    multipliers = default_std_multipliers("coco17")
    assert multipliers.mean() == pytest.approx(1.0)
    noise = _noise("coco17", "DATA.NOISE.STD", "0.05")
    np.testing.assert_allclose(noise.std, 0.05 * multipliers)
    custom = _noise("coco17", "DATA.NOISE.JOINT_STD_MULT", str([1.0] * 17))
    np.testing.assert_allclose(custom.std, 0.02)
    with pytest.raises(ValueError, match="JOINT_STD_MULT"):
        _noise("coco17", "DATA.NOISE.JOINT_STD_MULT", "[1.0, 2.0]")


def test_bad_noise_settings_name_the_argument():
    with pytest.raises(ValueError, match="jitter_corr"):
        DetectionNoise(std=(0.01,), jitter_corr=1.5)
    with pytest.raises(ValueError, match="miss_prob"):
        DetectionNoise(std=(0.01,), miss_prob=0.9, miss_len=2.0)
    with pytest.raises(ValueError, match="pairs"):
        DetectionNoise(std=(0.01,), pairs=((0, 1),))
    noise = DetectionNoise(std=(0.01,) * 17)
    with pytest.raises(ValueError, match="keypoints"):
        noise.apply(np.zeros((4, 16, 2)), 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="scale"):
        noise.apply(np.zeros((4, 17, 2)), 0.0, np.random.default_rng(0))


def test_flip_pairs_match_left_and_right_names():
    assert flip_pairs("coco17")[0] == (1, 2)  # L_Eye, R_Eye
    assert (4, 1) in flip_pairs("h36m17")  # L_Hip, R_Hip
    with pytest.raises(ValueError, match="joint set"):
        flip_pairs("coco18")


def test_noise_stats_script_passes_on_the_defaults(capsys):
    spec = importlib.util.spec_from_file_location("noise_stats_script", ROOT / "scripts" / "noise_stats.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--windows", "200", "DATA.NOISE.STD", "0.03"]) == 0
    out = capsys.readouterr().out
    assert "L_Hip" in out and out.rstrip().splitlines()[-1].startswith("OK")


def _turned_noise(*opts: str):
    return build_noise(get_cfg(opts=["DATA.TURNED_NOISE.ENABLED", "True", *opts]))


def test_turned_noise_only_on_frames_whose_torso_is_turned():
    noise = _turned_noise("DATA.TURNED_NOISE.MISS_PROB", "0.5", "DATA.TURNED_NOISE.MISS_LEN", "3.0")
    upright = _window(num_frames=400)
    centre = upright.mean(axis=(0, 1))
    inverted = 2 * centre - upright  # turned by 180 degrees in the image
    lying = (upright - centre) @ np.array([[0.0, 1.0], [-1.0, 0.0]]) + centre  # turned by 90 degrees
    assert not noise.turned_frames(upright).any()
    assert noise.turned_frames(inverted).all() and noise.turned_frames(lying).all()
    rng = noise_rng(0, 0, 1)
    _, seen_upright = noise.apply(upright, person_scale(upright), rng)
    _, seen_inverted = noise.apply(inverted, person_scale(inverted), rng)
    assert 1 - seen_upright.mean() == pytest.approx(noise.upright.miss_prob, abs=0.02)
    assert 1 - seen_inverted.mean() == pytest.approx(0.5, abs=0.1)


def test_without_turned_frames_the_upright_noise_is_unchanged():
    plain, both, clean = _noise(), _turned_noise(), _window()
    scale = person_scale(clean)
    np.testing.assert_array_equal(
        plain.apply(clean, scale, noise_rng(3, 1, 5))[0], both.apply(clean, scale, noise_rng(3, 1, 5))[0]
    )
    mixed = np.concatenate([clean[:8], 2 * clean.mean(axis=(0, 1)) - clean[8:]])
    noisy, _ = both.apply(mixed, person_scale(mixed), noise_rng(3, 1, 5))
    alone, _ = plain.apply(mixed, person_scale(mixed), noise_rng(3, 1, 5))
    np.testing.assert_array_equal(noisy[:8], alone[:8])  # upright frames keep the upright draw
    assert not np.allclose(noisy[8:], alone[8:])
