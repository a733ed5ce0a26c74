"""The demo end to end on a rendered video of the generated body with a known camera and motion.

The people stage reads the exact projected COCO-17 keypoints from a detection file. To check the
geometry of the pipeline (keypoint normalisation, windows, camera fit, SMPL fit, exports) independently
of how well a network was trained, the network is replaced by an oracle with the PMCE interface that
returns the ground truth of each window's target frame. ``demo.py`` itself then runs with a real (tiny,
untrained) PMCE checkpoint on the same video, and on bad input.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import demo
from lib.config import get_cfg
from lib.demo.export import read_accessor, read_glb
from lib.demo.pipeline import DemoSettings, run_demo
from lib.demo.video import FrameSource, write_video
from lib.engine.build import build_body_assets
from lib.keypoints import normalize_screen
from lib.models.build import build_model
from lib.models.pmce import PMCEOutput
from lib.people.detection_file import DetectionFileBackend
from lib.render import Camera, render_mesh
from tests.conftest import body_cfg_opts
from tests.test_people import coco_entry
from tests.test_train import TINY_MODEL

W, H, FRAMES, FOCAL = 320, 240, 24, 300.0
SMPL_TO_CAMERA = np.diag([1.0, -1.0, -1.0])  # SMPL y up, facing +z -> camera y down, facing the camera


class GroundTruthOracle(torch.nn.Module):
    """PMCE interface returning the ground truth of the frame whose 2D pose is nearest to the window's
    target frame: (B, T, 19, 2), (B, T, D) -> mesh (B, V, 3), joints (B, 19, 3), root-relative metres."""

    def __init__(self, pose2d: np.ndarray, mesh: np.ndarray, joints: np.ndarray, target: int) -> None:
        super().__init__()
        self.pose2d = torch.as_tensor(pose2d, dtype=torch.float32).flatten(1)
        self.mesh = torch.as_tensor(mesh, dtype=torch.float32)
        self.joints = torch.as_tensor(joints, dtype=torch.float32)
        self.target = target

    def forward(self, pose2d: torch.Tensor, img_feat: torch.Tensor) -> PMCEOutput:
        frame = torch.cdist(pose2d[:, self.target].flatten(1), self.pose2d).argmin(dim=1)
        return PMCEOutput(mesh=self.mesh[frame], joints=self.joints[frame], pose3d=self.joints[frame])


@pytest.fixture(scope="module")
def scene(synthetic_body_model, tmp_path_factory):
    """A person walking sideways at ~3.5 m, bending elbows and knees, filmed by a fixed pinhole camera."""
    body, rng = synthetic_body_model, np.random.default_rng(0)
    t = np.linspace(0, 1, FRAMES)[:, None]
    pose = np.zeros((FRAMES, 72))
    pose[:, 1] = 0.6 * np.sin(2 * np.pi * t[:, 0])  # turning about the vertical axis
    for joint, amplitude in ((4, 0.8), (5, 0.5), (18, -1.0), (19, 1.0), (16, 0.5)):
        pose[:, 3 * joint + (1 if joint >= 16 else 0)] = amplitude * np.sin(3 * np.pi * t[:, 0]) ** 2
    betas = np.tile(rng.normal(0, 0.8, 10), (FRAMES, 1))
    with torch.no_grad():
        verts = body.vertices(torch.tensor(pose).float(), torch.tensor(betas).float(), None, "neutral")
    root_cam = np.concatenate([-0.3 + 0.6 * t, 0.15 + 0 * t, 3.5 + 0.5 * t], axis=1)  # (F, 3) metres
    local = verts.numpy() @ SMPL_TO_CAMERA.T
    pelvis = body.joints(torch.from_numpy(local).float(), "h36m17")[:, 0].numpy()
    mesh_cam = local - pelvis[:, None] + root_cam[:, None]  # (F, V, 3) camera frame
    joints_cam = body.joints(torch.from_numpy(mesh_cam).float(), "coco19").numpy()
    camera = Camera(FOCAL, (W / 2, H / 2))
    pixels = np.stack([camera.project(j)[0] for j in joints_cam])  # (F, 19, 2)
    folder = tmp_path_factory.mktemp("scene")
    faces = body.faces.numpy()
    background = np.full((H, W, 3), 90, np.uint8)
    frames = [
        (f, render_mesh(mesh_cam[f], faces, (H, W), camera, background=background)) for f in range(FRAMES)
    ]
    write_video(folder / "walk.mp4", frames, 30.0)
    keypoints = np.concatenate([pixels[:, :17], np.ones((FRAMES, 17, 1))], axis=2)
    (folder / "keypoints.json").write_text(json.dumps([coco_entry(f, keypoints[f]) for f in range(FRAMES)]))
    return {
        "folder": folder,
        "video": folder / "walk.mp4",
        "detections": folder / "keypoints.json",
        "pose2d": normalize_screen(pixels, np.array([W, H])),
        "mesh_rel": mesh_cam - root_cam[:, None],
        "joints_rel": joints_cam - root_cam[:, None],
        "joints_cam": joints_cam,
        "root_cam": root_cam,
        "pose": pose,
        "betas": betas[0],
        "faces": faces,
    }


def test_recovers_camera_joints_and_smpl_parameters(scene, synthetic_body_model, tmp_path):
    """Tolerances: weak perspective ignores the body's depth extent, a few percent of the distance."""
    oracle = GroundTruthOracle(scene["pose2d"], scene["mesh_rel"], scene["joints_rel"], target=4)
    fit = demo.body_fitter(synthetic_body_model, iters=4, smooth_sigma=0.0)
    result = run_demo(
        FrameSource(scene["video"]), DetectionFileBackend(scene["detections"]), oracle,
        lambda tracks, source: [np.zeros((len(tr), 1), np.float32) for tr in tracks], scene["faces"],
        tmp_path / "out", DemoSettings(seq_len=8, min_track_len=8, focal=FOCAL, camera_sigma=0.0),
        fit_body=fit,
        regressors={s: synthetic_body_model.regressor_smpl24.numpy() for s in ["smpl24"]}, log=lambda _: None,
    )  # fmt: skip
    (track,) = result.tracks
    assert track.frame_ids.tolist() == list(range(FRAMES))
    translation = result.cameras[0].translation
    xy_error = np.abs(translation[:, :2] - scene["root_cam"][:, :2]).max()
    depth_error = np.abs(translation[:, 2] / scene["root_cam"][:, 2] - 1).max()
    print(f"camera: xy {xy_error:.4f} m, depth {depth_error:.4f}")
    assert xy_error < 0.03, xy_error  # metres
    assert depth_error < 0.03, depth_error  # relative
    joints_cam = result.predictions[0].joints + translation[:, None]
    joint_error = np.linalg.norm(joints_cam - scene["joints_cam"], axis=-1).mean()
    print(f"camera-frame joints: {joint_error:.4f} m")
    assert joint_error < 0.04
    smpl = np.load(tmp_path / "out" / "track_000.npz")
    assert smpl["smpl_pose"].shape == (FRAMES, 72) and smpl["smpl_betas"].shape == (10,)
    assert smpl["smpl_vertex_error_m"].mean() < 0.01
    refit = synthetic_body_model.vertices(
        torch.from_numpy(smpl["smpl_pose"]), torch.from_numpy(smpl["smpl_betas"]).expand(FRAMES, 10),
        torch.from_numpy(smpl["smpl_transl"]), "neutral",
    ).numpy()  # fmt: skip
    assert np.linalg.norm(refit - scene["mesh_rel"], axis=-1).mean() < 0.01
    assert smpl["joints_smpl24"].shape == (FRAMES, 24, 3)


@pytest.fixture(scope="module")
def tiny_checkpoint(synthetic_body_dir, tmp_path_factory):
    """A tiny untrained PMCE saved as our checkpoints are: weights and the config that built them."""
    opts = [*body_cfg_opts(synthetic_body_dir), *TINY_MODEL, "STAGE", "mesh", "DEVICE", "cpu"]
    cfg = get_cfg("configs/synthetic_mesh.yaml", opts)
    torch.manual_seed(0)
    model = build_model(cfg, build_body_assets(cfg).coarse_mesh)
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    torch.save({"model": model.state_dict(), "config": cfg.dump()}, path)
    return path


def run_cli(*args: str) -> int:
    return demo.run_main(demo.main, list(args))


def test_demo_cli_writes_outputs_that_load_back(scene, tiny_checkpoint, tmp_path):
    out = tmp_path / "demo"
    code = run_cli(
        "--video", str(scene["video"]), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
        "DEMO.PEOPLE", "file", "DEMO.DETECTION_FILE", str(scene["detections"]), "DEMO.FEATURES", "zeros",
        "DEMO.MIN_TRACK_LEN", "8", "DEMO.SMPL_FIT_ITERS", "2", "DEMO.SIDE_VIEW", "True",
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "animation.glb", "overlay.mp4", "summary.json", "track_000.bvh", "track_000.glb", "track_000.npz",
    ]  # fmt: skip
    arrays = np.load(out / "track_000.npz")
    assert arrays["vertices"].shape == (FRAMES, 6890, 3) and arrays["cam_t"].shape == (FRAMES, 3)
    doc, binary = read_glb(out / "animation.glb")
    positions = read_accessor(doc, binary, doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"])
    assert positions.shape == (6890, 3)
    overlay = FrameSource(out / "overlay.mp4")
    assert (overlay.info.width, overlay.info.height) == (2 * W, H)  # frame + side view


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--video": "missing.mp4"}, "input not found: missing.mp4"),
        ({"DEMO.MIN_TRACK_LEN": "100"}, "every track is shorter than DEMO.MIN_TRACK_LEN = 100"),
        ({"DEMO.FEATURES": "silhouette"}, "silhouette features need the 'blazepose'"),
        ({"DEMO.FEATURES": "spin", "DEMO.SPIN_CHECKPOINT": "none.pth.tar"}, "SPIN checkpoint not found"),
    ],
)
def test_demo_cli_bad_input_is_one_clear_line(scene, tiny_checkpoint, tmp_path, capsys, change, message):
    args = {
        "--video": str(scene["video"]), "--checkpoint": str(tiny_checkpoint), "--out": str(tmp_path / "o"),
    }  # fmt: skip
    opts = {"DEMO.PEOPLE": "file", "DEMO.DETECTION_FILE": str(scene["detections"]), "DEMO.FEATURES": "zeros"}
    for key, value in change.items():
        (args if key.startswith("--") else opts)[key] = value
    argv = [x for pair in [*args.items(), *opts.items()] for x in pair]
    assert run_cli(*argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_demo_runs_an_official_format_checkpoint_with_a_config(scene, tiny_checkpoint, tmp_path, capsys):
    """Official checkpoints hold 'model_state_dict' with DataParallel's 'module.' prefix and no config."""
    ours = torch.load(tiny_checkpoint, weights_only=True)
    official = tmp_path / "mesh_vis.pth.tar"
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in ours["model"].items()}}, official)
    args = ["--video", str(scene["video"]), "--checkpoint", str(official), "--out", str(tmp_path / "o")]
    opts = [
        "DEMO.PEOPLE", "file", "DEMO.DETECTION_FILE", str(scene["detections"]), "DEMO.FEATURES", "zeros",
        "DEMO.MIN_TRACK_LEN", "8", "DEMO.SAVE_VIDEO", "False", "DEMO.FIT_SMPL", "False",
    ]  # fmt: skip
    assert run_cli(*args, *opts) == 2
    assert "carries no config (an official checkpoint?): pass --cfg" in capsys.readouterr().err
    cfg_file = tmp_path / "official_like.yaml"
    cfg_file.write_text(ours["config"])  # stands in for configs/demo_official.yaml (licensed files)
    assert run_cli("--cfg", str(cfg_file), *args, *opts) == 0
    assert (tmp_path / "o" / "track_000.npz").is_file()


def test_demo_refuses_an_output_folder_with_other_files(scene, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    args = ["--video", str(scene["video"]), "--checkpoint", str(tiny_checkpoint), "--out", str(out)]
    assert run_cli(*args, "--focal", "300", "DEMO.PEOPLE", "file") == 2
    assert "holds files the demo did not write (notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
