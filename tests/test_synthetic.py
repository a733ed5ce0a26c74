"""The synthetic 3DPW-format dataset: file formats, geometry, motions, silhouette features, determinism."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from lib.config import get_cfg
from lib.data.noise import build_noise
from lib.data.silhouette import FEATURE_DIM, crop_mask, silhouette_features, square_box
from lib.data.synthetic.cameras import look_at, project, smpl_world_to_camera
from lib.data.synthetic.generate import (
    SHAPE_CODE_DIM,
    SPLITS,
    build_synthetic_settings,
    generate_video,
    is_current,
    settings_hash,
)
from lib.data.synthetic.masks import facing_camera, render_silhouette, to_crop
from lib.data.synthetic.motion import ATHLETICS, JOINT_LIMITS_DEG, sample_motion
from tests.conftest import TINY_DATA_OPTS, body_cfg_opts


@pytest.fixture(scope="module")
def tiny_cfg(synthetic_body_dir):
    return get_cfg(opts=[*body_cfg_opts(synthetic_body_dir), *TINY_DATA_OPTS])


@pytest.fixture(scope="module")
def dataset(tiny_synthetic_data) -> tuple[Path, dict]:
    return tiny_synthetic_data


def _load(root: Path, name: str):
    return json.loads((root / name).read_text())


def test_files_have_the_3dpw_format(dataset):
    root, manifest = dataset
    assert is_current(root, "abc") and not is_current(root, "other")
    assert manifest["seconds"] > 0  # generation time is reported in the manifest
    for split in SPLITS:
        coco = _load(root, f"3DPW_latest_{split}.json")
        images = {img["id"]: img for img in coco["images"]}
        assert {"id", "file_name", "width", "height", "sequence"} <= set(coco["images"][0])
        assert len(coco["annotations"]) == len(images) == manifest["splits"][split]["frames"]
        for ann in coco["annotations"]:
            assert {"id", "image_id", "person_id", "smpl_param"} <= set(ann)
            p = ann["smpl_param"]
            assert (len(p["pose"]), len(p["shape"]), len(p["trans"])) == (72, 10, 3)
            assert p["gender"] in ("male", "female", "neutral")
        img = coco["images"][0]
        assert (img["width"], img["height"]) in ((1920, 1080), (1080, 1920), (1000, 1000))
        assert img["file_name"] == "image_00000.jpg"
        shapes = {
            "joint_coco_cam": (19, 3),
            "joint_h36m_cam": (17, 3),
            "gt_joint_coco_img": (19, 3),
            "joint_coco_img_noise": (19, 3),
        }
        nested = {k: _load(root, f"3DPW_{split}_{k}.json") for k in shapes}
        feats = _load(root, f"3DPW_{split}_img_feat.json")
        for image in images.values():
            seq, idx = image["sequence"], str(int(image["file_name"][6:11]))
            for k, shape in shapes.items():
                assert np.asarray(nested[k][seq][idx]["0"]).shape == shape, k
            feat = np.asarray(feats[f"{seq}_0_{idx}"])
            assert feat.shape == (FEATURE_DIM,) and feat.min() >= 0
        h36m = np.asarray(nested["joint_h36m_cam"][seq][idx]["0"])  # millimetres, camera frame
        assert 1000 < h36m[0, 2] < 30000
        thigh = np.linalg.norm(h36m[1] - h36m[2])  # R_Hip - R_Knee
        assert 250 < thigh < 600
    detections = _load(root, "vitpose_3dpw_test_output.json")
    ann_ids = {a["id"] for a in _load(root, "3DPW_latest_test.json")["annotations"]}
    assert {d["annotation_id"] for d in detections} == ann_ids
    assert np.asarray(detections[0]["keypoints"]).shape == (17, 3)


def test_projection_of_3d_joints_matches_gt_2d(dataset):
    root, _ = dataset
    coco = _load(root, "3DPW_latest_train.json")
    cam3d, img2d = (
        _load(root, "3DPW_train_joint_coco_cam.json"),
        _load(root, "3DPW_train_gt_joint_coco_img.json"),
    )
    for image in coco["images"]:
        seq, idx = image["sequence"], str(image["frame_idx"])
        joints = np.asarray(cam3d[seq][idx]["0"]) / 1000.0
        param = image["cam_param"]
        uv = project(joints, param["focal"], param["princpt"])
        np.testing.assert_allclose(uv, np.asarray(img2d[seq][idx]["0"])[:, :2], atol=0.05)


def test_camera_frame_smpl_params_reproduce_the_joints(dataset, synthetic_body_model):
    root, _ = dataset
    coco = _load(root, "3DPW_latest_validation.json")
    h36m = _load(root, "3DPW_validation_joint_h36m_cam.json")
    images = {img["id"]: img for img in coco["images"]}
    anns = coco["annotations"]
    pose = torch.tensor([a["smpl_param"]["pose"] for a in anns])
    betas = torch.tensor([a["smpl_param"]["shape"] for a in anns])
    trans = torch.tensor([a["smpl_param"]["trans"] for a in anns])
    genders = [a["smpl_param"]["gender"] for a in anns]
    with torch.no_grad():
        joints = synthetic_body_model(pose, betas, trans, gender=genders).joints["h36m17"].numpy() * 1000
    for ann, pred in zip(anns, joints, strict=True):
        img = images[ann["image_id"]]
        gt = np.asarray(h36m[img["sequence"]][str(img["frame_idx"])]["0"])
        assert np.abs(pred - gt).max() < 1.0  # mm


def test_world_to_camera_conversion_matches_rigid_transform(synthetic_body_model):
    rng = np.random.default_rng(0)
    n = 4
    pose = rng.normal(0, 0.3, (n, 72))
    trans = rng.normal(0, 1.0, (n, 3))
    betas = torch.tensor(rng.normal(0, 1.0, (n, 10)), dtype=torch.float32)
    rotation, translation = look_at(
        rng.normal(0, 3, (n, 3)) + np.array([0.0, 0.0, 6.0]), rng.normal(0, 0.5, (n, 3))
    )
    model = synthetic_body_model
    with torch.no_grad():
        rest = model(torch.zeros(n, 72), betas, joint_sets=("smpl24",))
        root = rest.joints["smpl24"][:, 0].double().numpy()
        world = (
            model(torch.tensor(pose).float(), betas, torch.tensor(trans).float()).vertices.double().numpy()
        )
        pose_c, trans_c = smpl_world_to_camera(pose, trans, root, rotation, translation)
        cam = (
            model(torch.tensor(pose_c).float(), betas, torch.tensor(trans_c).float())
            .vertices.double()
            .numpy()
        )
    expected = np.einsum("tij,tvj->tvi", rotation, world) + translation[:, None]
    np.testing.assert_allclose(cam, expected, atol=1e-4)  # metres, float32 body model
    # Without the root-joint correction the translation would be off by (R - I) J0.
    assert np.abs(np.einsum("tij,tj->ti", rotation, root) - root).max() > 0.01


def test_motions_respect_joint_limits_and_are_smooth():
    for seed in range(6):
        motion = sample_motion(np.random.default_rng(seed), 240)
        degrees = np.rad2deg(motion.euler)
        assert np.all(degrees >= JOINT_LIMITS_DEG[:, 0] - 1e-9) and np.all(
            degrees <= JOINT_LIMITS_DEG[:, 1] + 1e-9
        )
        from_pose = Rotation.from_rotvec(motion.pose[:, 3:].reshape(-1, 3))
        from_euler = Rotation.from_euler("XYZ", motion.euler[:, 1:].reshape(-1, 3))
        assert (from_pose.inv() * from_euler).magnitude().max() < 1e-6
        accel = np.abs(np.diff(motion.euler, n=2, axis=0)).max()  # rad / frame^2
        assert accel < 0.25, accel  # 225 rad/s^2 at 30 fps: no jumps between frames
        root_accel = np.linalg.norm(np.diff(motion.trans, n=2, axis=0), axis=-1).max()
        assert root_accel < 0.05, root_accel  # m / frame^2
        speed = np.linalg.norm(np.diff(motion.trans[:, [0, 2]], axis=0), axis=-1).max() * motion.fps
        assert speed < 3.0  # m/s: walking pace


def test_acrobatic_motions_turn_the_whole_body_and_stay_smooth():
    upright = sample_motion(np.random.default_rng(3), 120)
    again = sample_motion(np.random.default_rng(3), 120, acrobatics=0.0)
    np.testing.assert_array_equal(upright.pose, again.pose)  # acrobatics 0: the old draws exactly
    tilts, names = [], set()
    for seed in range(8):
        motion = sample_motion(np.random.default_rng(seed), 120, acrobatics=1.0)
        names |= {a for a, _, _ in motion.actions}
        up = Rotation.from_rotvec(motion.pose[:, :3]).apply([0.0, 1.0, 0.0])  # the body's up axis
        tilts.append(np.rad2deg(np.arccos(np.clip(up[:, 1], -1, 1))).max())
        assert np.abs(np.diff(motion.euler, n=2, axis=0)).max() < 0.35  # rad / frame^2: fast, no jumps
        turn = Rotation.from_rotvec(motion.pose[1:, :3]) * Rotation.from_rotvec(motion.pose[:-1, :3]).inv()
        assert turn.magnitude().max() < np.deg2rad(45)  # degrees a frame: a flip takes ~1 s
    assert names & {"flip", "cartwheel", "crawl", "lie", "kick", "punch"}
    assert max(tilts) > 150  # upside down at some point (flip or cartwheel)
    assert np.median(tilts) > 60  # most motions leave the upright posture


def test_free_limb_motions_cover_more_of_the_joint_ranges_and_stay_smooth():
    again = sample_motion(np.random.default_rng(3), 120, free_limbs=0.0)
    np.testing.assert_array_equal(sample_motion(np.random.default_rng(3), 120).pose, again.pose)
    scripted, free = [], []
    for seed in range(8):
        scripted.append(np.rad2deg(sample_motion(np.random.default_rng(seed), 240).euler))
        motion = sample_motion(np.random.default_rng(seed), 240, free_limbs=1.0)
        assert "free" in {a for a, _, _ in motion.actions}
        assert np.abs(np.diff(motion.euler, n=2, axis=0)).max() < 0.25  # rad / frame^2: no jumps
        degrees = np.rad2deg(motion.euler)
        assert np.all(degrees >= JOINT_LIMITS_DEG[:, 0] - 1e-9) and np.all(
            degrees <= JOINT_LIMITS_DEG[:, 1] + 1e-9
        )
        free.append(degrees)
    arms = [16, 17, 18, 19]  # shoulders and elbows: the spread of their angles over all frames
    spread = {
        name: np.concatenate(d)[:, arms].std(axis=0).mean() for name, d in (("s", scripted), ("f", free))
    }
    assert spread["f"] > 1.3 * spread["s"], spread


def test_athletic_motions_run_spin_and_get_up_smoothly():
    acrobatic = sample_motion(np.random.default_rng(3), 120, acrobatics=0.25)
    again = sample_motion(np.random.default_rng(3), 120, acrobatics=0.25, athletics=0.0)
    np.testing.assert_array_equal(acrobatic.pose, again.pose)  # athletics 0: the old draws exactly
    names, spin_deg_s, run_m_s, get_ups = set(), [], [], []
    for seed in range(12):
        motion = sample_motion(np.random.default_rng(seed), 150, athletics=1.0)
        names |= {a for a, _, _ in motion.actions}
        assert np.abs(np.diff(motion.euler, n=2, axis=0)).max() < 0.35  # rad / frame^2: fast, no jumps
        assert np.linalg.norm(np.diff(motion.trans, n=2, axis=0), axis=-1).max() < 0.08  # m / frame^2: flips
        orient = Rotation.from_rotvec(motion.pose[:, :3])
        turn = orient[1:] * orient[:-1].inv()
        assert turn.magnitude().max() < np.deg2rad(45)
        spin_deg_s.append(np.rad2deg(np.abs(turn.as_rotvec()[:, 1])).max() * motion.fps)
        run_m_s.append(np.linalg.norm(np.diff(motion.trans[:, [0, 2]], axis=0), axis=-1).max() * motion.fps)
        tilt = np.rad2deg(np.arccos(np.clip(orient.apply([0.0, 1.0, 0.0])[:, 1], -1, 1)))
        for name, start, end in motion.actions:  # the next action starts 0.5 s before one ends
            last = int((end - 0.5) * motion.fps)
            if name == "get_up" and start >= 0 and last < len(tilt):
                get_ups.append((tilt[int(start * motion.fps) : last].max(), tilt[last]))
    assert set(ATHLETICS) <= names and not names & {"walk", "squat", "sit", "jump", "flip", "crawl"}
    assert max(spin_deg_s) > 400  # degrees a second about the vertical: spins, not walking turns
    assert max(run_m_s) > 2.5  # running pace
    assert get_ups and all(down > 70 and up < 30 for down, up in get_ups)  # down on the floor and up again
    with pytest.raises(ValueError, match=r"acrobatics \+ athletics"):
        sample_motion(np.random.default_rng(0), 30, acrobatics=0.6, athletics=0.6)


def test_action_shares_beyond_one_are_refused():
    cfg = get_cfg(opts=["DATA.SYNTHETIC.ACROBATICS", "0.5", "DATA.SYNTHETIC.ATHLETICS", "0.75"])
    with pytest.raises(ValueError, match="ACROBATICS and ATHLETICS are shares"):
        build_synthetic_settings(cfg)


def _silhouette(vertices: np.ndarray, faces: np.ndarray, size: int) -> np.ndarray:
    cam = vertices + np.array([0.0, 0.0, 4.0])
    cam[:, 1] *= -1  # y down
    uv = project(cam, (1000.0, 1000.0), (500.0, 500.0))
    box = square_box(uv, 1.2)
    return render_silhouette(to_crop(uv, box, size), faces, size, facing_camera(cam, faces))


def test_silhouette_features_are_deterministic_scale_invariant_and_shape_aware(synthetic_body_model):
    model, faces = synthetic_body_model, synthetic_body_model.faces.numpy()
    motion = sample_motion(np.random.default_rng(1), 30)
    with torch.no_grad():
        verts = model(torch.tensor(motion.pose, dtype=torch.float32), torch.zeros(30, 10)).vertices.numpy()
    mask = _silhouette(verts[10], faces, 128)
    feat = silhouette_features(mask)
    assert feat.shape == (FEATURE_DIM,) and feat.dtype == np.float32 and feat.min() >= 0
    np.testing.assert_array_equal(feat, silhouette_features(mask.copy()))
    np.testing.assert_array_equal(feat, silhouette_features(mask.astype(bool)))
    big = silhouette_features(_silhouette(verts[10], faces, 256))
    nearby = np.linalg.norm(feat - silhouette_features(_silhouette(verts[11], faces, 128)))
    centre = verts[10].mean(axis=0)
    thin = (verts[10] - centre) * [0.8, 1.0, 0.8] + centre
    wide = (verts[10] - centre) * [1.25, 1.0, 1.25] + centre
    shape_gap = np.linalg.norm(
        silhouette_features(_silhouette(thin, faces, 128))
        - silhouette_features(_silhouette(wide, faces, 128))
    )
    assert np.linalg.norm(feat - big) < 0.5 * shape_gap  # crop resolution matters much less than shape
    assert nearby < shape_gap
    # A full-frame mask (as from a person segmentation) cropped to the same square gives the same features.
    full = np.zeros((300, 300), np.uint8)
    full[50:250, 120:180] = 255
    box = (150.0, 150.0, 240.0)
    np.testing.assert_allclose(
        silhouette_features(crop_mask(full, box, 128)), silhouette_features(crop_mask(full > 0, box, 128))
    )
    assert not silhouette_features(np.zeros((64, 64), np.uint8)).any()


def test_generation_is_deterministic_for_a_seed(tiny_cfg, synthetic_body_model):
    settings, noise = build_synthetic_settings(tiny_cfg), build_noise(tiny_cfg)
    a = generate_video(synthetic_body_model, settings, noise, "train", 0)
    b = generate_video(synthetic_body_model, settings, noise, "train", 0)
    for name in ("pose", "trans", "betas", "keypoints", "visible", "detections", "features"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    other = build_synthetic_settings(get_cfg(opts=[*TINY_DATA_OPTS, "DATA.SYNTHETIC.SEED", "7"]))
    c = generate_video(synthetic_body_model, other, noise, "train", 0)
    assert c.pose.shape != a.pose.shape or not np.allclose(c.pose, a.pose)
    assert settings_hash(settings, noise, []) != settings_hash(other, noise, [])
    assert a.visible.mean() < 1.0  # some joints are hidden or out of view
    assert np.isfinite(a.features).all()


def test_shape_code_replaces_only_the_first_features(tiny_cfg, synthetic_body_model):
    settings, noise = build_synthetic_settings(tiny_cfg), build_noise(tiny_cfg)
    plain = generate_video(synthetic_body_model, settings, noise, "train", 0)
    exact = generate_video(synthetic_body_model, replace(settings, shape_code_noise=0.0), noise, "train", 0)
    for name in ("pose", "betas", "keypoints", "detections"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(exact, name), err_msg=name)
    np.testing.assert_array_equal(plain.features[:, SHAPE_CODE_DIM:], exact.features[:, SHAPE_CODE_DIM:])
    code = exact.features[:, :SHAPE_CODE_DIM] * 2  # values are halved
    np.testing.assert_allclose(
        code[:, :9] - code[:, 9:18], np.tile(plain.betas[1:], (len(code), 1)), atol=1e-6
    )
    assert code[:, 18:20].tolist() == [[plain.gender == "male", plain.gender == "female"]] * len(code)
    np.testing.assert_array_equal(code[:, 20:40], code[:, :20])  # tiled
    noisy = generate_video(synthetic_body_model, replace(settings, shape_code_noise=0.5), noise, "train", 0)
    estimate = (noisy.features[:, :9] - noisy.features[:, 9:18]) * 2
    assert np.ptp(estimate, axis=0).min() > 0  # fresh noise every frame
    assert 0.2 < np.std(estimate - plain.betas[1:]) < 0.8
