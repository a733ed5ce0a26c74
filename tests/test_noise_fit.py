"""Fitting the detection-noise model to a detector's errors, and the consistency measures."""

from __future__ import annotations

import numpy as np
import pytest

from lib.constants import flip_pairs
from lib.data.noise import DetectionNoise, noise_rng, person_scale, torso_joints
from lib.data.synthetic.noise_fit import DetectorVideo, fit_noise, orientation_segments
from lib.data.synthetic.noise_stats import standing_skeleton
from lib.eval.consistency import acceleration_mm, bone_length_std_mm, limb_pa_mpjpe_mm


def walking_skeletons(frames: int, rng: np.random.Generator) -> np.ndarray:
    """(T, 17, 2) pixels: a standing COCO-17 skeleton drifting across the image and turning a little."""
    base = standing_skeleton("coco17", 400.0)
    angle = rng.uniform(-0.3, 0.3) + 0.01 * np.arange(frames)
    rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], 1).reshape(-1, 2, 2)
    path = np.stack([300 + 4 * np.arange(frames), np.full(frames, 400.0)], 1)
    return np.einsum("tij,kj->tki", rot, base) + path[:, None]


def test_fit_recovers_a_known_noise_model():
    pairs = flip_pairs("coco17")
    bias = np.zeros((17, 2))
    bias[11:13] = [0.03, 0.01]  # hips higher and wider, as BlazePose's
    known = DetectionNoise(
        std=(0.02,) * 17, pairs=pairs, jitter_corr=0.8, drift_share=0.2, drift_corr=0.95, swap_prob=0.02,
        miss_prob=0.0, outlier_prob=0.01, outlier_std=0.2, bias=tuple(map(tuple, bias)),
        torso=torso_joints("coco17"),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    videos = []
    for v in range(120):
        truth = walking_skeletons(40, rng)
        noisy, _ = known.apply(truth, person_scale(truth), noise_rng(0, 0, v))
        videos.append(DetectorVideo(truth, np.concatenate([noisy, np.ones((40, 17, 1))], axis=2)))
    fitted = fit_noise(videos)
    assert fitted["STD"] == pytest.approx(0.02, rel=0.1)
    assert fitted["JITTER_CORR"] == pytest.approx(0.8, abs=0.08)
    assert fitted["DRIFT_SHARE"] == pytest.approx(0.2, abs=0.08)
    assert fitted["OUTLIER_PROB"] == pytest.approx(0.01, abs=0.006)
    assert fitted["SWAP_PROB"] == pytest.approx(0.02, abs=0.01)
    assert fitted["MISS_PROB"] == 0.0
    got = np.asarray(fitted["JOINT_BIAS"]).reshape(17, 2)
    assert np.abs(got - bias).max() < 0.005  # the hips' offset found, the others near 0


def test_consistency_measures():
    rng = np.random.default_rng(1)
    body = rng.normal(size=(17, 3)) * 0.3
    still = np.repeat(body[None], 10, axis=0)
    assert bone_length_std_mm(still) == pytest.approx(0.0, abs=1e-9)
    assert acceleration_mm(still) == pytest.approx(0.0, abs=1e-9)
    steady = still + np.linspace(0, 1, 10)[:, None, None]  # moving at constant speed: no acceleration
    assert acceleration_mm(steady) == pytest.approx(0.0, abs=1e-6)
    shaky = still + rng.normal(0, 0.01, still.shape)
    assert 5 < bone_length_std_mm(shaky) < 20 and acceleration_mm(shaky) > 10
    assert limb_pa_mpjpe_mm(2 * still[:3] + 1, still[:3]) == pytest.approx(0.0, abs=1e-6)


def test_world_landmark_baseline_scores_both_on_the_frames_blazepose_found(tmp_path):
    import json

    from lib.eval.detector_baseline import load_world_landmarks, world_landmark_baseline
    from lib.people.blazepose import BLAZEPOSE_TO_COCO17

    rng = np.random.default_rng(2)
    gt = np.repeat(rng.normal(size=(1, 17, 3)) * 0.3, 6, axis=0)  # a still body, 6 frames
    landmarks = np.zeros((6, 33, 3))
    landmarks[:, list(BLAZEPOSE_TO_COCO17)] = gt + rng.normal(0, 0.02, gt.shape)  # BlazePose: noisy
    frames = {str(t): (landmarks[t].tolist() if t != 2 else None) for t in range(6)}  # missed frame 2
    (tmp_path / "blazepose_world_test.json").write_text(json.dumps({"seq_a": frames}))
    world = load_world_landmarks(tmp_path)
    videos = ["seq_a_0"] * 6
    scores = world_landmark_baseline(videos, np.arange(6), gt.copy(), gt, world)
    assert scores["frames"] == 5 and scores["frames_total"] == 6
    assert scores["model"]["limb_pa_mpjpe"] == pytest.approx(0.0, abs=1e-6)
    assert scores["model"]["bone_length_std"] == pytest.approx(0.0, abs=1e-6)
    assert scores["blazepose_world"]["limb_pa_mpjpe"] > 10  # mm
    assert scores["blazepose_world"]["bone_length_std"] > 5
    assert load_world_landmarks(tmp_path / "missing") is None


def test_orientation_segments_split_a_video_at_the_turn():
    rng = np.random.default_rng(2)
    truth = walking_skeletons(30, rng)
    centre = truth[10:].mean(axis=(0, 1))
    truth[10:] = 2 * centre - truth[10:]  # upside down from frame 10
    video = DetectorVideo(truth, np.concatenate([truth, np.ones((30, 17, 1))], axis=2))
    (turned,) = orientation_segments([video], turned=True, min_tilt_deg=60.0)
    (upright,) = orientation_segments([video], turned=False, min_tilt_deg=60.0)
    assert len(turned.truth) == 20 and len(upright.truth) == 10
    assert orientation_segments([video], turned=False, min_tilt_deg=60.0, min_frames=11) == []
