"""Where the error is: per-frame, per-sequence and per-joint errors (mm) of a predictions record
(``lib/eval/predictions.py``), on the frames and joints the metrics use.

Stage 2: the frames and Human3.6M-17 joints the dataset's protocol scores (``metric_joints``,
``scored_rows``), PVE when the record has vertices. Stage 1: every frame, the input joints rooted at the
pelvis. Shapes: N evaluated frames, J joints; sequences are runs of equal consecutive sequence ids (the
video, split at frame gaps; ``lib.eval.selection.sequence_ids``). Per-sequence ACCEL is over each
sequence's interior evaluated frames (the MPI-INF-3DHP metric also drops triplets with an invalid frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lib import metrics
from lib.constants import H36M17_JOINTS, JOINT_SETS
from lib.eval.predictions import VERTEX_KEYS, metric_joints, scored_rows
from lib.eval.protocols import MM_PER_M, scored_joints
from lib.eval.selection import sequence_ids


@dataclass(frozen=True)
class FrameErrors:
    """Errors of the evaluated frames of one dataset, in sequence order (all mm, numpy)."""

    rows: np.ndarray  # (N,) the frames' rows in the record
    video: np.ndarray  # (N,) str sequence id: the video, '<video>:<segment>' after a frame gap
    frame: np.ndarray  # (N,) frame numbers
    joint_names: tuple[str, ...]  # (J,)
    joint_error_mm: np.ndarray  # (N, J) position error per joint
    pa_error_mm: np.ndarray  # (N,) PA-MPJPE of each frame
    vertex_error_mm: np.ndarray | None  # (N,) PVE per frame, NaN without a valid GT mesh; None: no vertices
    pred_accel_mm: np.ndarray  # (N,) mean joint acceleration magnitude (mm/frame^2), NaN at sequence ends
    gt_accel_mm: np.ndarray  # (N,) the same for the ground truth
    accel_error_mm: np.ndarray  # (N,) ACCEL of each interior frame, NaN at sequence ends

    @property
    def mpjpe_mm(self) -> np.ndarray:
        """(N,) MPJPE of each frame."""
        return self.joint_error_mm.mean(axis=1)


@dataclass(frozen=True)
class SequenceErrors:
    """One sequence's means over its frames (ACCEL: over its interior frames); mm."""

    video: str
    frames: int
    mpjpe_mm: float
    pa_mpjpe_mm: float
    pve_mm: float | None
    accel_mm: float


def evaluated_joints(record: dict[str, np.ndarray]) -> tuple[np.ndarray, Tensor, Tensor, tuple[str, ...]]:
    """Rows of the evaluated frames, their predicted and ground-truth joints (N, J, 3) in mm, rooted,
    and the joint names."""
    rows = scored_rows(record)
    if "pred_mesh_h36m17" in record:
        joints = list(scored_joints(str(record["dataset"]), str(record["protocol"])))
        _, pred, gt = metric_joints(record)
        names = tuple(H36M17_JOINTS[i] for i in joints)
        return rows, pred[rows][:, joints] * MM_PER_M, gt[rows][:, joints] * MM_PER_M, names
    names = JOINT_SETS[str(record["joint_set"])]
    root = names.index("Pelvis")
    pred, gt = torch.from_numpy(record["pred_pose3d"]), torch.from_numpy(record["gt_pose3d"])
    rooted = ((x - x[:, root : root + 1]) * MM_PER_M for x in (pred, gt))
    return rows, *rooted, names


def frame_errors(record: dict[str, np.ndarray]) -> FrameErrors:
    """Per-frame errors of a predictions record."""
    rows, pred, gt, names = evaluated_joints(record)
    video = sequence_ids(record["video"], record["segment"])[rows]
    accel = {key: np.full(len(rows), np.nan) for key in ("pred", "gt", "error")}
    for start, end in metrics.sequence_spans(video):
        interior = slice(start + 1, end - 1)
        accel["pred"][interior] = acceleration_magnitude(pred[start:end])
        accel["gt"][interior] = acceleration_magnitude(gt[start:end])
        accel["error"][interior] = metrics.accel_error(pred[start:end], gt[start:end]).numpy()
    return FrameErrors(
        rows=rows,
        video=video,
        frame=record["frame"][rows],
        joint_names=names,
        joint_error_mm=metrics.point_errors(pred, gt).numpy(),
        pa_error_mm=metrics.pa_point_errors(pred, gt).mean(dim=1).numpy(),
        vertex_error_mm=vertex_errors(record, rows),
        pred_accel_mm=accel["pred"],
        gt_accel_mm=accel["gt"],
        accel_error_mm=accel["error"],
    )


def acceleration_magnitude(joints: Tensor) -> np.ndarray:
    """Mean joint acceleration norm per interior frame of one sequence. joints: (L, J, 3) -> (L-2,)."""
    return torch.linalg.vector_norm(metrics.acceleration(joints), dim=-1).mean(dim=-1).numpy()


def vertex_errors(record: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray | None:
    """(N,) PVE (mm) of the given frames, NaN where the ground-truth mesh is invalid; None when the record
    has no vertices."""
    if "pred_vertices" not in record:
        return None
    pred, gt = (torch.from_numpy(record[key][rows]).float() * MM_PER_M for key in VERTEX_KEYS)
    return np.where(record["mesh_valid"][rows], metrics.point_errors(pred, gt).mean(dim=1).numpy(), np.nan)


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN when there is none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def per_sequence(errors: FrameErrors) -> list[SequenceErrors]:
    """Mean errors of every sequence, in order."""
    table = []
    for start, end in metrics.sequence_spans(errors.video):
        span = slice(start, end)
        pve = None if errors.vertex_error_mm is None else finite_mean(errors.vertex_error_mm[span])
        table.append(
            SequenceErrors(
                video=str(errors.video[start]),
                frames=end - start,
                mpjpe_mm=float(errors.mpjpe_mm[span].mean()),
                pa_mpjpe_mm=float(errors.pa_error_mm[span].mean()),
                pve_mm=pve,
                accel_mm=finite_mean(errors.accel_error_mm[span]),
            )
        )
    return table


def worst_frames(errors: FrameErrors, count: int, among: np.ndarray | None = None) -> list[int]:
    """Indices (into ``errors``) of the ``count`` highest-MPJPE frames, at most one per video, chosen
    ``among`` the frames where that (N,) bool mask is True (all by default)."""
    chosen: dict[str, int] = {}
    candidates = np.arange(len(errors.rows)) if among is None else np.flatnonzero(among)
    for i in candidates[np.argsort(-errors.mpjpe_mm[candidates], kind="stable")]:
        chosen.setdefault(str(errors.video[i]), int(i))
        if len(chosen) == count:
            break
    return list(chosen.values())
