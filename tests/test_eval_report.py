"""The evaluation results folder: predictions file, per-sequence CSV, report.md, plots and TensorBoard.

Report logic is checked on a hand-made record with four sequences of known error; eval.py end to end on
the tiny synthetic dataset with a randomly initialised tiny model.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from eval import main as eval_main
from lib.config import get_cfg
from lib.constants import H36M_EVAL_JOINTS
from lib.engine.build import build_body_assets
from lib.eval.breakdown import frame_errors, per_sequence
from lib.eval.mesh_view import compare_meshes
from lib.eval.plots import PALETTE, bar_chart, line_plot, nice_ticks
from lib.eval.predictions import (
    VERTEX_KEYS,
    load_predictions,
    recompute_metrics,
    record_metrics,
    save_predictions,
    scored_rows,
)
from lib.eval.report import CSV_FIELDS, PAPER_TABLE1, PROTOCOLS, EvalReport
from lib.models.build import build_model
from tests.conftest import body_cfg_opts
from tests.test_train import TINY_MODEL

FRAMES = 12
VIDEOS = ("walk_a", "walk_b", "jump_c", "sit_d")


# ------------------------------------------------------------------------------------------------------
# A hand-made record: video i is predicted with noise growing with i; the body is the generated template.
@pytest.fixture(scope="module")
def body_in_camera_axes(synthetic_body) -> tuple[np.ndarray, np.ndarray]:
    """The template (y up) turned to camera axes (y down, facing the camera), and its faces."""
    return synthetic_body.vertices * np.array([1.0, -1.0, -1.0]), synthetic_body.faces


def make_record(vertices: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(VIDEOS) * FRAMES
    noise_m = np.repeat(0.01 * (1 + np.arange(len(VIDEOS))), FRAMES)[:, None, None]  # 1 to 4 cm per axis
    gt = np.cumsum(rng.normal(scale=0.02, size=(n, 17, 3)), axis=0) + rng.normal(scale=0.3, size=(17, 3))
    pred = gt + noise_m * rng.normal(size=gt.shape)
    gt, pred = gt - gt[:, :1], pred - pred[:, :1]
    gt_vertices = np.broadcast_to(vertices, (n, *vertices.shape))
    pred_vertices = gt_vertices + noise_m * rng.normal(size=gt_vertices.shape)
    mesh_valid = np.ones(n, bool)
    mesh_valid[FRAMES + 3] = False  # one unusable frame in the second video
    return {
        "video": np.repeat(np.asarray(VIDEOS), FRAMES),
        "frame": np.tile(np.arange(100, 100 + FRAMES), len(VIDEOS)),
        "segment": np.zeros(n, np.int64),
        "camera_id": np.full(n, -1),
        "frame_valid": np.ones(n, bool),
        "dataset": np.asarray("3dpw"),
        "joint_set": np.asarray("h36m17"),
        "protocol": np.asarray("full"),
        "pred_pose3d": pred.astype(np.float32),
        "gt_pose3d": gt.astype(np.float32),
        "gt_pose3d_valid": np.ones((n, 17), bool),
        "pred_joints": pred.astype(np.float32),
        "mesh_valid": mesh_valid,
        "pred_mesh_h36m17": pred.astype(np.float32),
        "gt_mesh_h36m17": gt.astype(np.float32),
        "pred_vertices": pred_vertices.astype(np.float16),
        "gt_vertices": gt_vertices.astype(np.float16),
    }


@pytest.fixture(scope="module")
def record(body_in_camera_axes) -> dict[str, np.ndarray]:
    return make_record(body_in_camera_axes[0])


@pytest.fixture(scope="module")
def report_3dpw(record, body_in_camera_axes, tmp_path_factory) -> Path:
    """A report of ``record`` as if it were 3DPW, under the official protocol."""
    run_dir = tmp_path_factory.mktemp("report_3dpw")
    result = result_entry(record, 123.4)
    report = EvalReport(run_dir, "official", "ckpt.pth", body_in_camera_axes[1])
    report.add("3dpw", result, record)
    report.write()
    return run_dir


def result_entry(record: dict[str, np.ndarray], frames_per_s: float) -> dict:
    """metrics.json's entry of a record, as eval.py writes it."""
    return {
        "selection": "every frame",
        "frames": len(scored_rows(record)),
        "frames_predicted": len(record["video"]),
        "frames_per_s": frames_per_s,
        "metrics": record_metrics(record),
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_per_sequence_csv_has_one_row_per_sequence_with_its_means(report_3dpw, record):
    rows = read_csv(report_3dpw / "per_sequence.csv")
    assert tuple(rows[0]) == CSV_FIELDS
    assert [(r["dataset"], r["sequence"]) for r in rows] == [("3dpw", v) for v in VIDEOS]
    assert [int(r["frames"]) for r in rows] == [FRAMES, FRAMES - 1, FRAMES, FRAMES]  # the invalid mesh is out
    for row, video in zip(rows, VIDEOS, strict=True):
        keep = (record["video"] == video) & record["mesh_valid"]
        pred, gt = (record[f"{who}_mesh_h36m17"][keep][:, H36M_EVAL_JOINTS] for who in ("pred", "gt"))
        expected = np.linalg.norm(pred - gt, axis=-1).mean() * 1000
        assert float(row["mpjpe_mm"]) == pytest.approx(expected, abs=0.006)
        assert float(row["pve_mm"]) > 0 and float(row["accel_mm_per_frame2"]) > 0
    mpjpe = [float(r["mpjpe_mm"]) for r in rows]
    assert mpjpe == sorted(mpjpe)  # the noise grows from the first video to the last


def test_per_sequence_means_add_up_to_the_metrics(record):
    sequences = per_sequence(frame_errors(record))
    totals = record_metrics(record)
    frames = sum(s.frames for s in sequences)
    for attribute, metric in (("mpjpe_mm", "MPJPE"), ("pa_mpjpe_mm", "PA-MPJPE"), ("pve_mm", "PVE")):
        weighted = sum(getattr(s, attribute) * s.frames for s in sequences) / frames
        assert weighted == pytest.approx(totals[metric], rel=1e-5), metric
    interior = sum(s.accel_mm * (s.frames - 2) for s in sequences) / (frames - 2 * len(sequences))
    assert interior == pytest.approx(totals["ACCEL"], rel=1e-5)  # 'full': mean over interior frames


def test_report_names_the_protocol_and_shows_the_papers_figures(report_3dpw):
    text = (report_3dpw / "report.md").read_text()
    assert "protocol: **official**" in text and PROTOCOLS["official"] in text
    assert "| paper, Table 1 (PMCE) | 69.5 | 46.7 | 84.8 | 6.5 |" in text
    assert PAPER_TABLE1["3dpw"] == {"MPJPE": 69.5, "PA-MPJPE": 46.7, "PVE": 84.8, "ACCEL": 6.5}
    frames = len(VIDEOS) * FRAMES
    assert f"Frames: every frame; {frames - 1} scored of {frames} predicted, inference 123.4 frames/s" in text
    worst_first = text.index("### Worst sequences")
    assert text.index("sit_d", worst_first) < text.index("walk_a", worst_first)
    for kind in ("error_over_time", "error_per_joint", "acceleration", "worst_frames"):
        assert f"(plots/3dpw_{kind}.png)" in text
        assert (report_3dpw / "plots" / f"3dpw_{kind}.png").is_file()


def test_stage1_record_reports_the_pose_stream_without_mesh_parts(record, body_in_camera_axes, tmp_path):
    stage2_only = ("pred_joints", *VERTEX_KEYS)
    pose_only = {k: v for k, v in record.items() if "mesh" not in k and k not in stage2_only}
    result = result_entry(pose_only, 50.0)
    assert set(result["metrics"]) == {"MPJPE", "PA-MPJPE", "ACCEL"}
    report = EvalReport(tmp_path, "full", "pose.pth", body_in_camera_axes[1])
    report.add("3dpw", result, pose_only)
    report.write()
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["3dpw_acceleration.png", "3dpw_error_over_time.png", "3dpw_error_per_joint.png"]
    text = (tmp_path / "report.md").read_text()
    assert "Stage-1 checkpoint" in text and "| paper" not in text
    rows = read_csv(tmp_path / "per_sequence.csv")
    assert [int(r["frames"]) for r in rows] == [FRAMES] * len(VIDEOS) and {r["pve_mm"] for r in rows} == {""}


def assert_nontrivial_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None and image.dtype == np.uint8 and image.ndim == 3, path
    assert image.shape[0] >= 200 and image.shape[1] >= 300, path
    dark = (image.max(axis=2) < 100).mean()  # text, axes
    coloured = (image.max(axis=2).astype(int) - image.min(axis=2) > 40).mean()  # lines, bars, meshes
    assert 0.001 < dark < 0.5 and coloured > 0.002, path
    return image


def test_report_plots_are_nontrivial_images(report_3dpw):
    for path in sorted((report_3dpw / "plots").iterdir()):
        assert_nontrivial_image(path)
    renders = cv2.imread(str(report_3dpw / "plots" / "3dpw_worst_frames.png"))
    assert renders.shape[0] == 3 * 300  # one row per rendered frame


def test_line_plot_draws_every_series_and_the_axes():
    x = np.arange(50)
    image = line_plot({"one": (x, np.sin(x / 5)), "two": (x, np.cos(x / 5) + 3)}, "title", "frame", "value")
    assert image.shape == (420, 800, 3)
    for color in PALETTE[:2]:
        assert (np.abs(image.astype(int) - color).sum(axis=2) < 30).sum() > 100  # each line's colour
    assert (image[40:365, 75] == 0).all()  # the left frame line of the plotting area


def test_bar_chart_bar_heights_are_proportional():
    image = bar_chart(["small", "large"], np.array([10.0, 40.0]), "title", "error (mm)")
    bars = (np.abs(image.astype(int) - PALETTE[0]).sum(axis=2) < 10).sum(axis=0)  # bar pixels per column
    heights = [bars[: image.shape[1] // 2].max(), bars[image.shape[1] // 2 :].max()]
    assert heights[1] == pytest.approx(4 * heights[0], rel=0.03)


def test_nice_ticks():
    assert nice_ticks(0, 97).tolist() == [0, 20, 40, 60, 80]
    assert nice_ticks(0, 0.9).tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    assert nice_ticks(103, 131).tolist() == [110, 120, 130]


def test_compare_meshes_shows_prediction_and_ground_truth_from_two_sides(body_in_camera_axes):
    vertices, faces = body_in_camera_axes
    shifted = vertices + np.array([0.1, 0.0, 0.0])
    image = compare_meshes(shifted, vertices, faces, height=256, caption="frame 3")
    assert image.shape == (256, 4 * 192, 3)
    panels = [image[44:, i * 192 : (i + 1) * 192].astype(int) for i in range(4)]
    blue = [((p[..., 0] > p[..., 1] + 20) & (p[..., 0] > p[..., 2] + 20)).mean() for p in panels]
    green = [((p[..., 1] > p[..., 0] + 20) & (p[..., 1] > p[..., 2] + 20)).mean() for p in panels]
    assert min(blue[0], blue[2], green[1], green[3]) > 0.02  # prediction blue, ground truth green
    assert max(blue[1], blue[3], green[0], green[2]) == 0
    assert np.abs(panels[0] - panels[2]).mean() > 5  # the side view is another view


# ------------------------------------------------------------------------------------------------------
# eval.py end to end on the tiny synthetic dataset.
@pytest.fixture(scope="module")
def eval_run(synthetic_body_dir, tiny_synthetic_data, tmp_path_factory) -> Path:
    """The results folder of eval.py on a randomly initialised tiny stage-2 model, with the baseline."""
    output, cache = tmp_path_factory.mktemp("eval_output"), tmp_path_factory.mktemp("cache")
    opts = [
        *body_cfg_opts(synthetic_body_dir), *TINY_MODEL, "OUTPUT_DIR", str(output),
        "DATA.SYNTHETIC.DIR", str(tiny_synthetic_data[0]), "DATA.CACHE_DIR", str(cache),
        "DATA.WORKERS", "0", "EVAL.BATCH_SIZE", "8", "EVAL.MEAN_BASELINE", "True",
    ]  # fmt: skip
    cfg = get_cfg("configs/synthetic_mesh.yaml", opts)
    torch.manual_seed(0)
    checkpoint = output / "tiny.pth"
    torch.save({"model": build_model(cfg, build_body_assets(cfg).coarse_mesh).state_dict()}, checkpoint)
    assert eval_main(["--cfg", "configs/synthetic_mesh.yaml", "--checkpoint", str(checkpoint), *opts]) == 0
    return (output / "synthetic_mesh" / "eval" / "latest").resolve()


def test_eval_writes_the_results_folder(eval_run):
    names = {"config.yaml", "metrics.json", "predictions_synthetic.npz", "per_sequence.csv", "report.md"}
    assert names <= {p.name for p in eval_run.iterdir()}
    plots = sorted(p.name for p in (eval_run / "plots").iterdir())
    assert plots == [f"synthetic_{kind}.png" for kind in
                     ("acceleration", "error_over_time", "error_per_joint", "worst_frames")]  # fmt: skip
    for name in plots:
        assert_nontrivial_image(eval_run / "plots" / name)
    text = (eval_run / "report.md").read_text()
    assert "protocol: **full**" in text and "mean-target baseline" in text and "Table 1" not in text
    frames = json.loads((eval_run / "metrics.json").read_text())["results"]["synthetic"]["frames"]
    assert sum(int(r["frames"]) for r in read_csv(eval_run / "per_sequence.csv")) == frames


def test_predictions_file_recomputes_the_metrics(eval_run, tmp_path):
    reported = json.loads((eval_run / "metrics.json").read_text())["results"]["synthetic"]["metrics"]
    path = eval_run / "predictions_synthetic.npz"
    record = load_predictions(path)
    assert record["pred_vertices"].dtype == np.float16 and record["frame"].dtype == np.int64
    assert len(record["video"]) == len(record["frame"]) == len(record["pred_mesh_h36m17"])
    recomputed = recompute_metrics(path)
    assert set(recomputed) == set(reported) == {"MPJPE", "PA-MPJPE", "PVE", "ACCEL"}
    for name in ("MPJPE", "PA-MPJPE", "ACCEL"):
        assert recomputed[name] == pytest.approx(reported[name], abs=1e-3), name  # float32 joints
    assert recomputed["PVE"] == pytest.approx(reported["PVE"], abs=0.01)  # float16 vertices
    save_predictions(tmp_path / "small.npz", record, vertices=False)
    without = recompute_metrics(tmp_path / "small.npz")
    assert "PVE" not in without and without["MPJPE"] == recomputed["MPJPE"]


def test_eval_images_go_to_tensorboard(eval_run):
    events = EventAccumulator(str(eval_run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert set(events.Tags()["images"]) == {
        f"synthetic/{kind}" for kind in ("error_over_time", "error_per_joint", "acceleration", "worst_frames")
    }
