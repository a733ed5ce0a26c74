"""The closed-form weak-perspective camera fit, its smoothing and the perspective translation."""

import numpy as np
import pytest

from lib.demo.camera import fit_camera, fit_weak_perspective, project, smooth


def random_poses(n: int = 20, j: int = 19, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, (n, j, 3))


def test_exact_recovery_without_noise():
    rng = np.random.default_rng(1)
    joints = random_poses()
    s = rng.uniform(200, 800, 20)
    t = rng.uniform(100, 900, (20, 2))
    x = s[:, None, None] * joints[..., :2] + t[:, None]
    w = rng.uniform(0.1, 1.0, (20, 19))
    scale, offset, total = fit_weak_perspective(joints, x, w)
    assert np.allclose(scale, s, rtol=1e-10) and np.allclose(offset, t, atol=1e-8)
    assert np.allclose(total, w.sum(1))


def test_confidences_weight_out_outliers_and_noise_stays_small():
    rng = np.random.default_rng(2)
    joints = random_poses(n=200)
    s, t = 500.0, np.array([640.0, 360.0])
    x = s * joints[..., :2] + t + rng.normal(0, 3.0, (200, 19, 2))  # 3 px noise
    w = np.ones((200, 19))
    x[:, 0] += 400  # a gross outlier on joint 0 ...
    w[:, 0] = 0  # ... with zero confidence
    scale, offset, _ = fit_weak_perspective(joints, x, w)
    assert np.median(np.abs(scale / s - 1)) < 0.02
    assert np.median(np.linalg.norm(offset - t, axis=1)) < 2.0


def test_frames_without_confidence_are_filled_by_smoothing():
    joints = random_poses(n=10)
    x = 300 * joints[..., :2] + 50
    w = np.ones((10, 19))
    w[4] = 0
    scale, _, total = fit_weak_perspective(joints, x, w)
    assert np.isnan(scale[4]) and total[4] == 0
    cam = fit_camera(joints, x, w, width=640, height=480, sigma=1.5)
    assert np.allclose(cam.scale, 300) and np.allclose(cam.offset, 50)


def test_smoothing_keeps_constants_and_reduces_jitter():
    rng = np.random.default_rng(3)
    values = np.full((50, 2), 7.0)
    assert np.allclose(smooth(values, np.ones(50), 2.0), 7.0)
    noisy = values + rng.normal(0, 1, values.shape)
    assert np.std(smooth(noisy, np.ones(50), 2.0)) < 0.5 * np.std(noisy)
    assert np.allclose(smooth(noisy, np.ones(50), 0.0), noisy)


def test_translation_reprojects_the_root_and_matches_perspective():
    """A person rendered with a pinhole camera at known depth: the fit recovers the translation."""
    rng = np.random.default_rng(4)
    width, height, focal = 1280, 720, 1000.0
    n = 30
    joints = rng.normal(0, 0.25, (n, 19, 3)) * np.array([1, 1, 0.2])  # a fairly flat body
    trans = np.stack([np.linspace(-0.5, 0.5, n), np.full(n, 0.2), np.full(n, 6.0)], axis=1)
    x = project(joints, trans, focal, np.array([width / 2, height / 2]))
    cam = fit_camera(joints, x, np.ones((n, 19)), width, height, focal=focal, sigma=1.0)
    assert np.allclose(cam.translation, trans, rtol=0.03, atol=0.03)
    assert cam.weak_perspective.shape == (n, 3)
    default = fit_camera(joints, x, np.ones((n, 19)), width, height)
    assert default.focal == pytest.approx(np.hypot(width, height))


def test_mirrored_prediction_falls_back_to_the_spread_scale():
    joints = random_poses(n=2)
    x = -200 * joints[..., :2] + 10  # mirrored: the best s is negative
    scale, _, total = fit_weak_perspective(joints, x, np.ones((2, 19)))
    assert np.allclose(scale, 200) and np.allclose(total, 19e-3)


def test_no_confident_frame_is_an_error():
    joints = random_poses(n=3)
    with pytest.raises(ValueError, match="confidence"):
        fit_camera(joints, joints[..., :2], np.zeros((3, 19)), 10, 10)
