"""COCO-19 keypoints per track, normalised by the full frame as in training."""

import numpy as np
import pytest

from lib.demo.errors import DemoError
from lib.demo.keypoints import track_keypoints
from lib.keypoints import add_pelvis_neck, add_pelvis_neck_scored, denormalize_screen, normalize_screen
from lib.people.types import Track


def test_pelvis_and_neck_are_appended():
    kp = np.random.default_rng(0).uniform(0, 100, (5, 17, 3))
    out = add_pelvis_neck_scored(kp)
    assert out.shape == (5, 19, 3)
    assert np.allclose(out[:, 17, :2], (kp[:, 11, :2] + kp[:, 12, :2]) / 2)
    assert np.allclose(out[:, 18, :2], (kp[:, 5, :2] + kp[:, 6, :2]) / 2)
    assert np.allclose(out[:, 17, 2], np.minimum(kp[:, 11, 2], kp[:, 12, 2]))
    assert np.allclose(add_pelvis_neck(kp[..., :2]), out[..., :2])  # points alone: the same means


def test_normalisation_matches_training():
    w, h = 1920, 1080
    xy = np.array([[0.0, 0.0], [w, h], [w / 2, h / 2]])
    out = normalize_screen(xy, np.array([w, h]))
    assert np.allclose(out, [[-1, -h / w], [1, h / w], [0, 0]])
    assert np.allclose(denormalize_screen(out, np.array([w, h])), xy)
    import lib.data.video_dataset as training

    assert training.normalize_screen is normalize_screen  # the training items use the same function


def test_track_keypoints():
    kp = np.random.default_rng(1).uniform(0, 640, (6, 17, 3))
    track = Track(0, np.arange(6), np.zeros((6, 4)), np.ones(6), kp)
    pose2d, conf = track_keypoints(track, 640, 480)
    assert pose2d.shape == (6, 19, 2) and conf.shape == (6, 19) and pose2d.dtype == np.float32
    assert np.allclose(pose2d[:, :17], normalize_screen(kp[..., :2], np.array([640, 480])), atol=1e-6)
    with pytest.raises(DemoError, match="no keypoints"):
        track_keypoints(Track(3, np.arange(6), np.zeros((6, 4)), np.ones(6)), 640, 480)
    with pytest.raises(DemoError, match="h36m17"):
        track_keypoints(track, 640, 480, joint_set="h36m17")
