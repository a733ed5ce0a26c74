"""DeepMimic motion-capture clips: parsing, forward kinematics, resampling, mirroring, SMPL retargeting."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.body.rotations import rodrigues
from lib.data.synthetic import mocap
from lib.data.synthetic.mocap import (
    Clip,
    forward_kinematics,
    load_clip,
    load_skeleton,
    lowest_sole,
    mirror,
    mirror_joint_order,
    resample,
    retarget,
)
from scripts import fetch_mocap

CLIP_DIR = Path(__file__).resolve().parents[1] / "data" / "mocap" / "deepmimic"
needs_clips = pytest.mark.skipif(
    not (CLIP_DIR / "humanoid.urdf").is_file() or len(mocap.clip_paths(CLIP_DIR)) != 15,
    reason="DeepMimic clips missing: run python scripts/fetch_mocap.py (downloads the pybullet wheel)",
)
WALK_ERROR_MM = 10.0  # measured 2.4 mm (walk and its mirror) with the generated body, 200 steps
ALL_ERROR_MM = 15.0  # measured 2.4-7.6 mm over the 30 clips


@pytest.fixture(scope="module")
def skeleton() -> mocap.Skeleton:
    return load_skeleton(CLIP_DIR / "humanoid.urdf")


@pytest.fixture(scope="module")
def walk() -> Clip:
    return load_clip(CLIP_DIR / "humanoid3d_walk.txt")


@pytest.fixture(scope="module")
def walk_smpl(walk, skeleton, synthetic_body_model) -> list[mocap.SmplMotion]:
    """Walk and its mirror at 30 fps, retargeted to the generated body in one batch."""
    torch.set_num_threads(1)
    clip = resample(walk)
    return retarget([clip, mirror(clip)], skeleton, synthetic_body_model)


def local_rotation_steps(pose: np.ndarray) -> np.ndarray:
    """(N, 72) poses -> (N - 1, 24) angles (deg) between consecutive frames' local rotations."""
    rot = rodrigues(torch.as_tensor(pose, dtype=torch.float64).view(len(pose), 24, 3))
    rel = rot[1:].transpose(-1, -2) @ rot[:-1]
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return np.degrees(torch.arccos(cos).numpy())


@needs_clips
def test_clip_files_parse_with_44_values(walk):
    raw = json.loads((CLIP_DIR / "humanoid3d_walk.txt").read_text())["Frames"]
    assert walk.name == "walk" and walk.loop == "wrap"
    assert np.asarray(raw).shape == (39, 44)
    np.testing.assert_allclose(walk.frames, raw, atol=1e-12)  # round trip to the file layout
    assert walk.fps == pytest.approx(30.0, abs=0.01) and walk.duration == pytest.approx(1.2666, abs=1e-3)
    clips = [load_clip(p) for p in mocap.clip_paths(CLIP_DIR)]
    assert sum(len(c.times) for c in clips) == 1620
    assert {round(c.fps) for c in clips} == {16, 24, 30, 60}
    assert all(c.frames.shape[1] == 44 for c in clips)


@needs_clips
def test_skeleton_offsets_are_the_urdf_origins_scaled(skeleton):
    offset = lambda name: skeleton.offsets[skeleton.index(name)]  # noqa: E731
    np.testing.assert_allclose(offset("right_knee"), [0, -1.686184 * 0.25, 0])
    np.testing.assert_allclose(offset("left_hip"), [0, 0, -0.339548 * 0.25])
    assert skeleton.parents[skeleton.index("left_wrist")] == skeleton.index("left_elbow")
    np.testing.assert_allclose(skeleton.axes[skeleton.index("left_elbow")], [0, 0, 1])
    assert skeleton.names[-1] == "head" and skeleton.parents[-1] == skeleton.index("neck")


@needs_clips
def test_walk_kinematics_matches_the_measured_facts(walk, skeleton):
    joints = forward_kinematics(walk, skeleton)
    assert joints.shape == (39, 16, 3)
    pelvis = joints[:, skeleton.index("root")]
    assert 0.8 < pelvis[:, 1].min() and pelvis[:, 1].max() < 0.9
    speed = (pelvis[-1, 0] - pelvis[0, 0]) / walk.duration  # walks along +x, DeepMimic's forward
    assert speed == pytest.approx(1.0, abs=0.1)
    assert 1.4 < joints[:, skeleton.index("head"), 1].mean() < 1.6
    assert np.abs(lowest_sole(walk, skeleton)).max() < 0.02  # a foot box on the floor in every frame


@needs_clips
def test_mirror_swaps_sides_and_twice_is_identity(walk, skeleton):
    mirrored = mirror(walk)
    assert mirrored.name == "walk_mirror" and mirror(mirrored).name == "walk"
    reflected = forward_kinematics(walk, skeleton) * [1, 1, -1]
    np.testing.assert_allclose(forward_kinematics(mirrored, skeleton)[:, mirror_joint_order(skeleton)],
                               reflected, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(mirror(mirrored).frames, walk.frames, atol=1e-15)


@needs_clips
def test_resample_to_30_fps_keeps_duration_and_samples(skeleton):
    # 60 fps: every other frame is on the 30 fps grid, up to the files' rounded durations (0.01667 s).
    clip = load_clip(CLIP_DIR / "humanoid3d_cartwheel.txt")
    out = resample(clip)
    assert out.fps == pytest.approx(30.0) and abs(out.duration - clip.duration) <= 0.5 / 30
    np.testing.assert_allclose(out.root_pos, clip.root_pos[::2], atol=2e-4)
    np.testing.assert_allclose(forward_kinematics(out, skeleton), forward_kinematics(clip, skeleton)[::2],
                               atol=1e-3)  # fmt: skip
    walk = resample(load_clip(CLIP_DIR / "humanoid3d_walk.txt"), fps=60.0)  # between frames: slerp
    np.testing.assert_allclose(np.linalg.norm(walk.quats, axis=-1), 1.0, atol=1e-12)
    middle = forward_kinematics(walk, skeleton)[1:-1:2]
    ends = forward_kinematics(walk, skeleton)[0:-2:2], forward_kinematics(walk, skeleton)[2::2]
    assert np.abs(middle - (ends[0] + ends[1]) / 2).max() < 0.02


@needs_clips
def test_retargeted_walk_fits_and_stands_on_the_floor(walk_smpl, synthetic_body_model):
    for motion in walk_smpl:
        assert motion.pose.shape == (39, 72) and motion.transl.shape == (39, 3) and motion.fps == 30.0
        assert not motion.betas.any() and motion.fit_error_mm < WALK_ERROR_MM
        pose, transl = torch.as_tensor(motion.pose), torch.as_tensor(motion.transl)
        verts = synthetic_body_model.vertices(pose, pose.new_zeros(len(pose), 10), transl, "neutral")
        soles = verts[:, mocap._foot_vertices(synthetic_body_model, "neutral"), 1].amin(1)
        assert soles.abs().max() < 0.02  # walking: one foot on y = 0 in every frame
        facing = rodrigues(pose[:, :3])[:, :, 2]  # the body's forward axis (SMPL's z) in the world
        assert (facing @ (transl[-1] - transl[0]) > 1.0).all()  # walks ~1.17 m, facing the way it goes
    assert walk_smpl[1].name == "walk_mirror"
    np.testing.assert_allclose(walk_smpl[1].transl[:, 0], -walk_smpl[0].transl[:, 0], atol=0.01)


@needs_clips
def test_retargeted_walk_has_no_joint_flips(walk_smpl):
    for motion in walk_smpl:
        assert local_rotation_steps(motion.pose).max() < 20  # measured 12 deg per frame at 30 fps
        assert np.abs(np.diff(motion.pose[:, 3:], axis=0)).max() < 0.5  # axis-angle never wraps


@pytest.mark.slow
@needs_clips
def test_real_motion_clips_all_fit(synthetic_body_model, skeleton):
    torch.set_num_threads(1)
    motions = mocap.real_motion_clips(CLIP_DIR, synthetic_body_model)
    assert len(motions) == 30 and motions[15].name == motions[0].name + "_mirror"
    for motion in motions:
        source = resample(load_clip(CLIP_DIR / f"humanoid3d_{motion.name.removesuffix('_mirror')}.txt"))
        assert len(motion.pose) == len(source.times) and motion.fit_error_mm < ALL_ERROR_MM
        # No flips: SMPL's joints turn no faster than DeepMimic's own fastest joint (+ slack).
        dm = mocap.local_rotations(source, skeleton)
        rel = np.swapaxes(dm[1:], -1, -2) @ dm[:-1]
        dm_max = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1))).max()
        assert local_rotation_steps(motion.pose).max() < dm_max + 10


def test_fetch_reads_wheel_and_sdist_members(tmp_path):
    member = "pybullet_data/humanoid/humanoid.urdf"
    wheel = tmp_path / "p-1.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, b"<robot/>")
    sdist = tmp_path / "p-1.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        info = tarfile.TarInfo(f"p-1/examples/{member}")
        info.size = 8
        archive.addfile(info, io.BytesIO(b"<robot/>"))
    for path in (wheel, sdist):
        assert fetch_mocap._read_archive(path, [member, "missing.txt"]) == {member: b"<robot/>"}


def test_fetch_skips_present_files_and_exits_2_on_failure(tmp_path, monkeypatch, capsys):
    for name in fetch_mocap.MEMBERS.values():
        (tmp_path / name).write_text("x")
    assert fetch_mocap.fetch_mocap(tmp_path) == []
    (tmp_path / "humanoid.urdf").unlink()

    def fail(package, members):
        raise fetch_mocap.FetchError(f"pip could not download {package}: no network")

    monkeypatch.setattr(fetch_mocap, "archive_members", fail)
    monkeypatch.setattr("sys.argv", ["fetch_mocap.py", "--out", str(tmp_path)])
    assert fetch_mocap.main() == 2
    assert capsys.readouterr().err.strip() == "error: pip could not download pybullet==3.2.7: no network"
