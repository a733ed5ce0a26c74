"""Render-and-detect: synthetic videos rendered over real footage and found by the demo's people backend."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from lib.config import get_cfg
from lib.data.noise import build_noise
from lib.data.synthetic.generate import build_synthetic_settings, generate_video, settings_hash
from lib.data.synthetic.render_detect import Backgrounds, clothing_colors
from tests.conftest import body_cfg_opts

VIDEO = Path("data/demo/sports2d_demo.mp4")
MODELS = Path("data/models/blazepose/pose_landmark_full.tflite")
needs_assets = pytest.mark.skipif(
    not (VIDEO.is_file() and MODELS.is_file()),
    reason="sample video or BlazePose models missing: run scripts/fetch_assets.py (make test does)",
)


@needs_assets
def test_backgrounds_are_real_frames_of_the_asked_size():
    backgrounds = Backgrounds(VIDEO, every=40)
    assert len(backgrounds.frames) == 6  # frames 0, 40, ..., 200 of 230
    rng = np.random.default_rng(0)
    image = backgrounds.sample(rng, 640, 360)
    assert image.shape == (360, 640, 3) and image.dtype == np.uint8
    assert image.std() > 20  # real texture, not a flat colour


def test_clothing_colours_follow_the_body_parts(synthetic_body_model):
    layer = synthetic_body_model.layers["neutral"]
    faces = synthetic_body_model.faces.numpy()
    colors = clothing_colors(layer.lbs_weights.numpy(), faces, np.random.default_rng(1))
    assert colors.shape == (len(faces), 3)
    assert 3 <= len(np.unique(colors, axis=0)) <= 5  # skin, shirt, (sleeves), trousers, shoes


def test_noise_datasets_keep_their_hash(synthetic_body_dir):
    cfg = get_cfg(opts=body_cfg_opts(synthetic_body_dir))
    settings, noise = build_synthetic_settings(cfg), build_noise(cfg)
    moved = dataclasses.replace(settings, background_video="elsewhere.mp4")
    assert settings_hash(settings, noise, []) == settings_hash(moved, noise, [])  # unused by 'noise'
    rendered = dataclasses.replace(settings, detector="blazepose")
    assert settings_hash(rendered, noise, []) != settings_hash(settings, noise, [])


@pytest.mark.slow
@needs_assets
def test_rendered_video_is_detected_near_the_truth(synthetic_body_dir, synthetic_body_model):
    opts = [*body_cfg_opts(synthetic_body_dir), "DATA.SYNTHETIC.DETECTOR", "blazepose",
            "DATA.SYNTHETIC.SEQ_LEN_RANGE", "[12, 12]", "DATA.SYNTHETIC.OCCLUDER_PROB", "0.0"]  # fmt: skip
    cfg = get_cfg(opts=opts)
    settings = build_synthetic_settings(cfg)
    video = generate_video(
        synthetic_body_model, settings, build_noise(cfg), "test", 1, Backgrounds(VIDEO, every=20)
    )
    found = video.detections[:, :17, 2] > 0
    assert found.any(axis=1).mean() >= 0.9  # the person is found in (nearly) every frame
    height = np.ptp(video.keypoints[:, :17, 1], axis=1)[:, None]
    error = np.linalg.norm(video.detections[:, :17, :2] - video.keypoints[:, :17], axis=-1) / height
    ok = found & video.visible[:, :17]
    assert np.median(error[ok]) < 0.06  # BlazePose's joints are not exactly the body's COCO joints
    assert video.world.shape == (12, 33, 3) and np.isfinite(video.world[found.any(axis=1)]).all()
    assert (video.features[found.any(axis=1)].sum(axis=1) > 0).all()  # features from the backend's masks
