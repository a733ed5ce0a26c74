"""The evaluation report in eval.py's results folder: ``report.md``, ``per_sequence.csv`` and the plots
(``plots/<dataset>_<kind>.png``, also in TensorBoard under ``tensorboard/``), built from the predictions
records, one dataset at a time.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import cv2
import numpy as np

from lib.eval.breakdown import FrameErrors, SequenceErrors, frame_errors, per_sequence, worst_frames
from lib.eval.mesh_view import compare_meshes
from lib.eval.plots import bar_chart, line_plot
from lib.eval.selection import camera_figures
from lib.io import write_atomic, write_text_atomic

METRIC_ORDER = ("MPJPE", "PA-MPJPE", "PVE", "ACCEL")
# PMCE's row of the paper's Table 1 (mm; ACCEL per frame^2), by DATA.TEST_LIST name.
PAPER_TABLE1 = {
    "3dpw": {"MPJPE": 69.5, "PA-MPJPE": 46.7, "PVE": 84.8, "ACCEL": 6.5},
    "mpi_inf_3dhp": {"MPJPE": 79.7, "PA-MPJPE": 54.5, "ACCEL": 7.1},
    "h36m": {"MPJPE": 53.5, "PA-MPJPE": 37.7, "ACCEL": 3.1},
}
PROTOCOLS = {
    "full": "the corrected protocol: every frame of every test video, all Human3.6M cameras (camera 4 also "
    "reported), MPI-INF-3DHP valid frames only and without the root joint; ACCEL is the mean over the "
    "interior frames of each sequence.",
    "official": "reproduces the official PMCE evaluation code, quirks included: its window set (the first "
    "and last frames of each video are not evaluated), Human3.6M camera 4 only, MPI-INF-3DHP with its "
    "valid flags ignored and the zero-error root joint in the mean; ACCEL counts the two end frames of "
    "every sequence as zero error.",
}
CSV_FIELDS = ("dataset", "sequence", "frames", "mpjpe_mm", "pa_mpjpe_mm", "pve_mm", "accel_mm_per_frame2")
WORST_PLOTTED = 3  # sequences in the error-over-time plot, and frames rendered
WORST_LISTED = 5  # sequences in report.md's table
RENDER_HEIGHT = 300  # pixels of one rendered frame


class EvalReport:
    """Collects one section per dataset (``add``), writing its plots at once, then ``write``s the rest."""

    def __init__(self, run_dir: Path, protocol: str, checkpoint: str, faces: np.ndarray) -> None:
        from torch.utils.tensorboard import SummaryWriter  # off the import path of eval.py's start-up

        self.run_dir, self.protocol, self.checkpoint, self.faces = Path(run_dir), protocol, checkpoint, faces
        self.sections: list[str] = []
        self.sequences: list[tuple[str, SequenceErrors]] = []
        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def add(self, name: str, result: dict, record: dict[str, np.ndarray]) -> None:
        """One dataset: ``result`` as in metrics.json, ``record`` from ``lib.eval.predictions``."""
        errors = frame_errors(record)
        sequences = per_sequence(errors)
        self.sequences += [(name, s) for s in sequences]
        images = figures(name, errors, sequences, record, self.faces)
        paths = {kind: self.save_image(name, kind, image) for kind, image in images.items()}
        is_mesh = "pred_mesh_h36m17" in record
        self.sections.append(dataset_section(name, self.protocol, result, sequences, paths, is_mesh))

    def save_image(self, name: str, kind: str, image: np.ndarray) -> Path:
        """Write a BGR image to plots/<name>_<kind>.png and to TensorBoard as <name>/<kind>; return the
        PNG's path relative to the run folder."""
        path = Path("plots") / f"{name}_{kind}.png"
        ok, data = cv2.imencode(".png", image)
        if not ok:
            raise RuntimeError(f"could not encode {path}")
        write_atomic(self.run_dir / path, lambda f: f.write(data.tobytes()))
        self.writer.add_image(f"{name}/{kind}", image[..., ::-1], 0, dataformats="HWC")  # TensorBoard: RGB
        return path

    def write(self) -> None:
        """per_sequence.csv and report.md; closes the TensorBoard file."""
        write_text_atomic(self.run_dir / "per_sequence.csv", sequence_csv(self.sequences))
        header = [
            "# Evaluation report",
            "",
            f"- checkpoint: `{self.checkpoint}`",
            f"- protocol: **{self.protocol}**: {PROTOCOLS[self.protocol]}",
            "- errors in mm, ACCEL in mm/frame² (the paper's mm/s² is the same per-frame quantity); stage 2 "
            "scores the Human3.6M joints regressed from the mesh (14; MPI-INF-3DHP 16, official 17) "
            "against each dataset's ground truth",
            "- every sequence: `per_sequence.csv`; every frame: `predictions_<dataset>.npz`",
        ]
        write_text_atomic(self.run_dir / "report.md", "\n".join([*header, *self.sections]) + "\n")
        self.writer.close()


def figures(
    name: str,
    errors: FrameErrors,
    sequences: list[SequenceErrors],
    record: dict[str, np.ndarray],
    faces: np.ndarray,
) -> dict[str, np.ndarray]:
    """The plots of one dataset by kind (BGR images)."""
    worst = sorted(sequences, key=lambda s: -s.mpjpe_mm)[:WORST_PLOTTED]
    per_joint = errors.joint_error_mm.mean(axis=0)
    images = {
        "error_over_time": error_over_time(name, errors, [s.video for s in worst]),
        "error_per_joint": bar_chart(errors.joint_names, per_joint, f"{name}: MPJPE per joint", "MPJPE (mm)"),
    }
    smooth = [s for s in sequences if math.isfinite(s.accel_mm)]
    if smooth:
        images["acceleration"] = acceleration_plot(name, errors, max(smooth, key=lambda s: s.accel_mm))
    if errors.vertex_error_mm is not None and np.isfinite(errors.vertex_error_mm).any():
        images["worst_frames"] = worst_frame_renders(errors, record, faces)
    return images


def error_over_time(name: str, errors: FrameErrors, videos: list[str]) -> np.ndarray:
    """Per-frame MPJPE against the frame number, one line per video."""
    masks = {video: errors.video == video for video in videos}
    series = {
        f"{video} (mean {errors.mpjpe_mm[mask].mean():.0f})": (errors.frame[mask], errors.mpjpe_mm[mask])
        for video, mask in masks.items()
    }
    return line_plot(series, f"{name}: MPJPE per frame, worst sequences", "frame", "MPJPE (mm)")


def acceleration_plot(name: str, errors: FrameErrors, sequence: SequenceErrors) -> np.ndarray:
    """Mean joint acceleration of prediction and ground truth over the interior frames of ``sequence``."""
    mask = (errors.video == sequence.video) & np.isfinite(errors.pred_accel_mm)
    frames = errors.frame[mask]
    series = {
        "prediction": (frames, errors.pred_accel_mm[mask]),
        "ground truth": (frames, errors.gt_accel_mm[mask]),
    }
    title = f"{name}: acceleration, {sequence.video} (ACCEL {sequence.accel_mm:.1f})"
    return line_plot(series, title, "frame", "mean joint acceleration (mm/frame^2)")


def worst_frame_renders(errors: FrameErrors, record: dict[str, np.ndarray], faces: np.ndarray) -> np.ndarray:
    """Prediction next to ground truth for the worst frames with a valid GT mesh (one per video), stacked
    vertically."""
    renders = []
    for i in worst_frames(errors, WORST_PLOTTED, among=np.isfinite(errors.vertex_error_mm)):
        row = errors.rows[i]
        caption = f"{errors.video[i]} frame {errors.frame[i]}: MPJPE {errors.mpjpe_mm[i]:.0f} mm"
        caption += f", PVE {errors.vertex_error_mm[i]:.0f} mm"
        renders.append(compare_meshes(record["pred_vertices"][row], record["gt_vertices"][row], faces,
                                      height=RENDER_HEIGHT, caption=caption))  # fmt: skip
    return np.concatenate(renders, axis=0)


def dataset_section(
    name: str,
    protocol: str,
    result: dict,
    sequences: list[SequenceErrors],
    plots: dict[str, Path],
    is_mesh: bool,
) -> str:
    """report.md's part for one dataset: figures (also single-camera ones) next to the paper's, the frames
    scored, speed, worst sequences, plots."""
    rows = [("ours", result["metrics"])]
    rows += [
        (f"ours, {key.replace('_', ' ')} only", result[key]["metrics"])
        for key in camera_figures(name, protocol)
    ]
    if "fitted_body" in result:
        rows.append(("ours + SMPL fit (what the demo shows)", result["fitted_body"]["metrics"]))
    if "mean_baseline" in result:
        rows.append(("mean-target baseline", result["mean_baseline"]))
    paper = PAPER_TABLE1.get(name) if is_mesh else None
    if paper:
        rows.append(("paper, Table 1 (PMCE)", paper))
    figures_table = [[label, *(values.get(k) for k in METRIC_ORDER)] for label, values in rows]
    speed = (
        f"Frames: {result['selection']}; {result['frames']} scored of {result['frames_predicted']} "
        f"predicted, inference {result['frames_per_s']:.1f} frames/s."
    )
    worst = sorted(sequences, key=lambda s: -s.mpjpe_mm)[:WORST_LISTED]
    worst_table = [[s.video, s.frames, s.mpjpe_mm, s.pa_mpjpe_mm, s.pve_mm, s.accel_mm] for s in worst]
    lines = [
        "",
        f"## {name}",
        "",
        markdown_table(["", *METRIC_ORDER], figures_table),
        "",
        f"{speed} {paper_note(paper, result, is_mesh)}",
        "",
        "### Worst sequences (by MPJPE)",
        "",
        markdown_table(["sequence", "frames", *METRIC_ORDER], worst_table),
    ]
    lines += [f"\n![{kind.replace('_', ' ')}]({path.as_posix()})" for kind, path in plots.items()]
    return "\n".join(lines)


def paper_note(paper: dict | None, result: dict, is_mesh: bool) -> str:
    if not is_mesh:
        return "Stage-1 checkpoint: pose-stream joints; the paper's Table 1 is for the mesh."
    if paper:
        return "Paper: the PMCE row of Table 1."
    if "mean_baseline" in result:
        return "No paper figure for this dataset; the mean-target baseline (mean training mesh) is for scale."
    return "No paper figure for this dataset (EVAL.MEAN_BASELINE True adds a trivial baseline)."


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A markdown table; numbers right-aligned with one decimal, None / NaN as '-'."""
    align = ["---" if i == 0 else "---:" for i in range(len(header))]
    body = ["| " + " | ".join(format_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|", *body])


def format_cell(value, decimals: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{decimals}f}" if isinstance(value, float) else str(value)


def sequence_csv(sequences: list[tuple[str, SequenceErrors]]) -> str:
    """per_sequence.csv: one row per (dataset, sequence); empty cells where a value does not exist."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for name, s in sequences:
        values = (s.mpjpe_mm, s.pa_mpjpe_mm, s.pve_mm, s.accel_mm)
        writer.writerow([name, s.video, s.frames, *(csv_cell(v) for v in values)])
    return out.getvalue()


def csv_cell(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.2f}"
