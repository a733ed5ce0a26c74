"""Image features of the demo: silhouettes from person masks, and SPIN ResNet-50 from a SPIN checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.data.silhouette import crop_mask, silhouette_features, square_box
from lib.demo.errors import DemoError
from lib.demo.features import silhouette_track_features
from lib.demo.spin import SpinFeatureExtractor, crop_box, crop_image, load_spin_backbone, resnet50_trunk
from lib.demo.video import FrameSource, write_video
from lib.people.tracking import track_people
from lib.people.types import Detection
from tests.test_people import person_keypoints

W, H = 200, 160


def person_mask(kp: np.ndarray) -> np.ndarray:
    """(H / 2, W / 2) uint8 mask (x 255) of the frame at half size: an ellipse covering the keypoints."""
    yy, xx = np.mgrid[: H // 2, : W // 2] * 2.0
    cx, cy = kp[:, :2].mean(0)
    return (255 * (((xx - cx) / 20) ** 2 + ((yy - cy) / 55) ** 2 <= 1)).astype(np.uint8)


def test_silhouette_features_follow_the_keypoint_crop_and_fill_gaps():
    kps = [person_keypoints(80 + 2 * f, 80) for f in range(6)]
    dets = [[Detection(np.array([0, 0, 10, 10.0]), 1.0, kp, mask=person_mask(kp))] for kp in kps]
    dets[3] = []  # a missed frame: filled by the tracker, no mask
    (track,) = track_people(list(enumerate(dets)), max_gap=2)
    assert track.masks[3] is None and track.masks[2].shape == (80, 100)
    feats = silhouette_track_features(track, W, crop_size=64, crop_scale=1.2)
    cx, cy, side = square_box(kps[0][:, :2], 1.2)
    expected = silhouette_features(crop_mask(track.masks[0], (cx / 2, cy / 2, side / 2), 64))
    np.testing.assert_allclose(feats[0], expected)
    assert feats.shape == (6, 2048) and feats[0].any()
    np.testing.assert_array_equal(feats[3], feats[2])  # nearest frame with a mask (ties: the earlier)


def test_silhouette_features_without_masks_is_a_clear_error():
    (track,) = track_people([(0, [Detection(np.array([0, 0, 9, 9.0]), 1.0, person_keypoints(50, 50))])])
    with pytest.raises(DemoError, match="silhouette features need the 'blazepose'"):
        silhouette_track_features(track, W, 64, 1.2)


@pytest.fixture(scope="module")
def spin_checkpoint(tmp_path_factory):
    """A checkpoint laid out as SPIN's spin_model_checkpoint.pth.tar: HMR = ResNet-50 + a regressor."""
    torch.manual_seed(0)
    backbone = resnet50_trunk().state_dict()
    regressor = {"fc1.weight": torch.zeros(1024, 2205), "decpose.weight": torch.zeros(144, 1024)}
    path = tmp_path_factory.mktemp("spin") / "spin_model_checkpoint.pth.tar"
    torch.save({"model": {**backbone, **regressor}, "optimizer": {}}, path)
    return path, backbone


def test_spin_features_equal_the_resnet_trunk_on_the_official_crop(spin_checkpoint, tmp_path):
    path, backbone = spin_checkpoint
    frames = [(f, np.random.default_rng(f).integers(0, 255, (H, W, 3), dtype=np.uint8)) for f in range(3)]
    write_video(tmp_path / "v.mp4", frames, 30.0)
    source = FrameSource(tmp_path / "v.mp4")
    kp = person_keypoints(100, 80)
    (track,) = track_people([(f, [Detection(np.array([0, 0, 9, 9.0]), 1.0, kp)]) for f in range(3)])
    feats = SpinFeatureExtractor(path, box_scale=1.1, device="cpu")([track], source)[0]
    net = resnet50_trunk()
    net.load_state_dict(backbone)
    decoded = [frame for _, frame in source]
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(np.stack([crop_image(f, crop_box(kp, 1.1)) for f in decoded])))
    assert feats.shape == (3, 2048)
    np.testing.assert_allclose(feats, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_spin_crop_is_the_keypoint_box_diagonal_times_the_scale():
    kp = np.array([[10, 20, 0.9], [40, 60, 0.9], [500, 500, 0.1]])  # the low-confidence point is ignored
    assert crop_box(kp, 1.1) == pytest.approx((25.0, 40.0, 55.0))


def test_a_checkpoint_that_is_not_spin_is_a_clear_error(tmp_path):
    torch.save({"model": {"conv1.weight": torch.zeros(3)}}, tmp_path / "bad.pth.tar")
    with pytest.raises(DemoError, match="is not a SPIN HMR checkpoint"):
        load_spin_backbone(tmp_path / "bad.pth.tar")
    with pytest.raises(DemoError, match="SPIN checkpoint not found"):
        load_spin_backbone(tmp_path / "none.pth.tar")
