"""eval.py under both protocols on tiny 3DPW, Human3.6M and MPI-INF-3DHP files in their published formats:
the frames each protocol scores, the protocol named in every output, and the official figures recomputed
with the official formulas from the predictions file.

T = 4 (target index 2): an official window set never predicts the first 2 frames or the last frame of a
video; the padded windows of 'full' predict every frame.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eval import main as eval_main
from lib.config import ConfigError, get_cfg
from lib.constants import H36M_EVAL_JOINTS
from lib.engine.build import BodyAssets, build_body_assets, protocol_pad_mode
from lib.eval.predictions import load_predictions
from lib.models.build import build_model
from tests.conftest import body_cfg_opts
from tests.reader_files import write_h36m, write_mpii3d_test, write_pw3d
from tests.test_train import TINY_MODEL

SMALL = [
    *TINY_MODEL, "MODEL.SEQ_LEN", "4", "DATA.DETECTOR", "gt", "DATA.WORKERS", "0", "EVAL.BATCH_SIZE", "8",
    "EVAL.SAVE_VERTICES", "False", "DATA.H36M_TEST_SUBJECTS", "[9]",
]  # fmt: skip
# MPI-INF-3DHP: TS1 lost frame 7 (TCMR's 'subj1_seg1' starts at 8); three frames have valid_i = 0.
MPI_FRAMES = {1: tuple(f for f in range(12) if f != 7), 5: tuple(range(8))}
MPI_INVALID = ((1, 3), (1, 9), (5, 0))


@pytest.fixture(scope="module")
def workspace(synthetic_body_dir, tmp_path_factory) -> tuple[list[str], BodyAssets]:
    """Config overrides pointing at the three datasets' files, and the generated body's assets."""
    root = tmp_path_factory.mktemp("protocols")
    opts = [
        *body_cfg_opts(synthetic_body_dir), *SMALL, "OUTPUT_DIR", str(root / "output"),
        "DATA.CACHE_DIR", str(root / "cache"), "DATA.PW3D_DIR", str(root / "pw3d"),
        "DATA.H36M_DIR", str(root / "h36m"), "DATA.MPII3D_DIR", str(root / "mpii3d"),
    ]  # fmt: skip
    assets = build_body_assets(get_cfg(opts=opts))
    write_pw3d(root / "pw3d")
    write_h36m(root / "h36m", assets.body_model, assets.regressors["h36m17"], cameras=(1, 4), frames=16)
    write_mpii3d_test(root / "mpii3d", frames=MPI_FRAMES, invalid=MPI_INVALID)
    for joint_set in ("coco19", "h36m17"):
        torch.manual_seed(0)
        cfg = get_cfg(opts=[*opts, "MODEL.INPUT_JOINT_SET", joint_set])
        torch.save({"model": build_model(cfg, assets.coarse_mesh).state_dict()}, root / f"{joint_set}.pth")
    return opts, assets


def evaluate(workspace, dataset: str, protocol: str) -> tuple[dict, dict[str, np.ndarray], Path]:
    """Run eval.py; return its metrics.json entry of ``dataset``, its predictions record and the run."""
    opts, _ = workspace
    joint_set = "h36m17" if dataset == "h36m" else "coco19"
    output = Path(opts[opts.index("OUTPUT_DIR") + 1])
    experiment = f"{dataset}_{protocol}"
    argv = [
        "--checkpoint", str(output.parent / f"{joint_set}.pth"), *opts, "MODEL.INPUT_JOINT_SET", joint_set,
        "DATA.TEST_LIST", f"['{dataset}']", "EVAL.PROTOCOL", protocol, "EXPERIMENT", experiment,
    ]  # fmt: skip
    assert eval_main(argv) == 0
    run = (output / experiment / "eval" / "latest").resolve()
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["protocol"] == protocol
    assert f"protocol: **{protocol}**" in (run / "report.md").read_text()
    return summary["results"][dataset], load_predictions(run / f"predictions_{dataset}.npz"), run


def rigid_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The official similarity alignment of one frame's (J, 3) ``pred`` onto ``gt`` (Umeyama)."""
    pred_c, gt_c = pred - pred.mean(0), gt - gt.mean(0)
    u, s, vt = np.linalg.svd(pred_c.T @ gt_c / len(pred))
    if np.linalg.det(vt.T @ u.T) < 0:
        s[-1], vt[2] = -s[-1], -vt[2]
    rotation = vt.T @ u.T
    scale = s.sum() / pred_c.var(0).sum()
    return scale * pred_c @ rotation.T + gt.mean(0)


def official_figures(pred_m: np.ndarray, gt_m: np.ndarray, videos: np.ndarray, joints) -> dict[str, float]:
    """The official evaluate() loop on (N, 17, 3) metre joints: root-aligned mm, MPJPE and PA-MPJPE on
    ``joints``, ACCEL zero-padded at both ends of every run of a video and divided by the frame count."""
    pred, gt = pred_m * 1000.0, gt_m * 1000.0
    pred, gt = (pred - pred[:, :1])[:, joints], (gt - gt[:, :1])[:, joints]
    accel_sum = 0.0
    starts = [i for i in range(len(videos)) if i == 0 or videos[i] != videos[i - 1]]
    for start, end in zip(starts, [*starts[1:], len(videos)], strict=True):
        second = lambda x: x[:-2] - 2 * x[1:-1] + x[2:]  # noqa: E731
        padded = np.zeros(end - start)
        padded[1:-1] = np.linalg.norm(second(pred[start:end]) - second(gt[start:end]), axis=-1).mean(-1)
        accel_sum += padded.mean() * (end - start)
    return {
        "MPJPE": np.linalg.norm(pred - gt, axis=-1).mean(),
        "PA-MPJPE": np.mean(
            [np.linalg.norm(rigid_align(p, g) - g, axis=-1).mean() for p, g in zip(pred, gt, strict=True)]
        ),
        "ACCEL": accel_sum / len(pred),
    }


def assert_official_figures(result: dict, pred: np.ndarray, gt: np.ndarray, videos, joints) -> None:
    expected = official_figures(pred.astype(np.float64), gt.astype(np.float64), videos, joints)
    for name, value in expected.items():
        assert result["metrics"][name] == pytest.approx(value, rel=1e-4), name


def test_3dpw_official_drops_the_video_ends_full_predicts_every_frame(workspace):
    official, record, _ = evaluate(workspace, "3dpw", "official")
    # courtyard_0 has 6 frames (0-2, 4-6; the gap does not split an official video), outdoors_1 only 3 (< T)
    assert official["frames"] == official["frames_predicted"] == 3
    assert record["video"].tolist() == ["courtyard_0"] * 3 and record["frame"].tolist() == [2, 4, 5]
    assert official["selection"].startswith("official windows")
    assert_official_figures(official, record["pred_mesh_h36m17"], record["gt_mesh_h36m17"], record["video"],
                            list(H36M_EVAL_JOINTS))  # fmt: skip
    full, record, _ = evaluate(workspace, "3dpw", "full")
    assert full["frames"] == full["frames_predicted"] == 9
    assert sorted(zip(record["video"], record["frame"], strict=True)) == sorted(
        [("courtyard_0", f) for f in (0, 1, 2, 4, 5, 6)] + [("outdoors_1", f) for f in (0, 1, 2)]
    )


def test_h36m_official_scores_camera_4_only(workspace):
    result, record, _ = evaluate(workspace, "h36m", "official")
    # Per camera 8 frames (16 at 50 fps): the official windows target frames 2-6, less frame 3 (no fit).
    assert result["frames"] == result["frames_predicted"] == 4
    assert set(record["camera_id"].tolist()) == {4} and record["frame"].tolist() == [2, 4, 5, 6]
    assert "camera_4" not in result and result["selection"].endswith("camera 4 only")
    assert "PVE" in result["metrics"]  # on frames 4-6: frame 2's fit fails the 25 mm check
    assert_official_figures(result, record["pred_mesh_h36m17"], record["gt_pose3d_h36m"], record["video"],
                            list(H36M_EVAL_JOINTS))  # fmt: skip


def test_h36m_full_scores_every_camera_and_reports_camera_4(workspace, capsys):
    result, record, run = evaluate(workspace, "h36m", "full")
    assert result["frames"] == result["frames_predicted"] == 16
    assert sorted(set(record["camera_id"].tolist())) == [1, 4]
    camera_4 = result["camera_4"]
    assert camera_4["frames"] == 8 and camera_4["metrics"]["MPJPE"] != result["metrics"]["MPJPE"]
    rows = record["camera_id"] == 4
    pred, gt = (
        record[key][rows][:, H36M_EVAL_JOINTS] * 1000.0 for key in ("pred_mesh_h36m17", "gt_pose3d_h36m")
    )
    assert camera_4["metrics"]["MPJPE"] == pytest.approx(np.linalg.norm(pred - gt, axis=-1).mean(), rel=1e-4)
    assert "PMCE, camera 4" in capsys.readouterr().out
    assert "| ours, camera 4 only |" in (run / "report.md").read_text()


def test_mpi_inf_3dhp_official_ignores_the_valid_flags(workspace):
    result, record, _ = evaluate(workspace, "mpi_inf_3dhp", "official")
    # TS1: 11 images (frame 7 removed, not a split), targets of images 3-10; TS5: 8 images, targets 3-7.
    assert result["frames"] == result["frames_predicted"] == 8 + 5
    assert not record["frame_valid"].all() and set(record["segment"].tolist()) == {0}
    assert {"PCK", "AUC"} <= set(result["metrics"]) and "PVE" not in result["metrics"]
    assert_official_figures(result, record["pred_mesh_h36m17"], record["gt_pose3d_h36m"], record["video"],
                            list(range(17)))  # fmt: skip  # the zero-error root joint in the mean


def test_mpi_inf_3dhp_full_scores_the_valid_frames_of_every_segment(workspace):
    result, record, run = evaluate(workspace, "mpi_inf_3dhp", "full")
    assert result["frames_predicted"] == 11 + 8 and result["frames"] == 11 + 8 - len(MPI_INVALID)
    valid = record["frame_valid"]
    pred, gt = (record[key][valid][:, 1:] * 1000.0 for key in ("pred_mesh_h36m17", "gt_pose3d_h36m"))
    assert result["metrics"]["MPJPE"] == pytest.approx(np.linalg.norm(pred - gt, axis=-1).mean(), rel=1e-4)
    with open(run / "per_sequence.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["sequence"]: int(row["frames"]) for row in rows} == {"TS1": 6, "TS1:1": 3, "TS5": 7}
    assert {row["pve_mm"] for row in rows} == {""}  # no test meshes
    assert not (run / "plots" / "mpi_inf_3dhp_worst_frames.png").exists()


def test_test_windows_follow_the_protocol():
    official = get_cfg(opts=["EVAL.PROTOCOL", "official", "DATA.PAD_MODE", "reflect"])
    assert protocol_pad_mode(official) == "official"  # DATA.PAD_MODE is not consulted
    assert protocol_pad_mode(get_cfg(opts=["DATA.PAD_MODE", "reflect"])) == "reflect"
    with pytest.raises(ConfigError, match="PAD_MODE official leaves the video ends out"):
        protocol_pad_mode(get_cfg(opts=["DATA.PAD_MODE", "official"]))  # 'full' must predict every frame
