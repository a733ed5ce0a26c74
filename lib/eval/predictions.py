"""The predictions file ``predictions_<dataset>.npz`` that eval.py writes: every test frame's prediction
and target, enough to recompute the metrics (and the report) without the model or the body files.

Arrays, one row per evaluated frame in sequence order (N frames, J joints of the input set ``joint_set``,
V vertices); metres, camera axes, root-relative like the model's output:

* ``video`` (N,) str, ``frame`` (N,) int64 target frame numbers, ``segment`` (N,) int64 gap-free segment
  of the video, ``camera_id`` (N,) int64 (-1 unknown), ``frame_valid`` (N,) bool the dataset's flag
* ``dataset``, ``joint_set`` and ``protocol`` () str: the protocol's frames (lib/eval/selection.py) and
  metrics (lib/eval/protocols.py)
* ``pred_pose3d`` (N, J, 3) pose-stream joints; ``gt_pose3d`` (N, J, 3), ``gt_pose3d_valid`` (N, J) bool
* ``gt_pose3d_h36m`` (N, 17, 3), ``gt_pose3d_h36m_valid`` (N, 17) bool: the dataset's Human3.6M-17 joints
* stage 2 only: ``pred_joints`` (N, J, 3) decoder-refined joints; ``mesh_valid`` (N,) bool;
  ``pred_mesh_h36m17``, ``gt_mesh_h36m17`` (N, 17, 3) float32: the joints the metrics use (Human3.6M-17
  regressed from the SMPL-pelvis-aligned meshes, rooted at joint 0); ``pred_vertices``, ``gt_vertices``
  (N, V, 3) float16: the SMPL-pelvis-aligned meshes PVE compares (~83 KB a frame for both; left out
  with EVAL.SAVE_VERTICES False, and PVE with them).

Everything is float32 except the vertices; float16 rounds them by up to 0.25 mm, but the roundings
average out: the recomputed PVE moves by well under 0.01 mm (measured: 2e-5 mm over 155 frames).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lib import metrics
from lib.constants import JOINT_SETS
from lib.eval.protocols import (
    MM_PER_M,
    evaluate_joints,
    pelvis_aligned_mesh,
    pose_metrics,
    rooted_h36m_joints,
    uses_annotated_joints,
)
from lib.eval.selection import scored_frames, sequence_ids
from lib.io import write_atomic

VERTEX_KEYS = ("pred_vertices", "gt_vertices")


def prediction_record(
    predictions: dict,
    joint_set: str,
    smpl_regressor: Tensor | None,
    h36m_regressor: Tensor | None,
    protocol: str,
    dataset: str,
) -> dict[str, np.ndarray]:
    """The file's arrays from ``lib.engine.validate.predict``'s output; arguments as the fields of
    ``lib.eval.scorer.Scorer`` (stage 2 needs the SMPL-24 (24, V) and Human3.6M-17 (17, V) regressors)."""
    p = predictions
    record = {
        "video": np.asarray(p["video"], dtype=str),
        "frame": p["frame"].numpy().astype(np.int64),
        "segment": p["segment"].numpy().astype(np.int64),
        "camera_id": p["camera_id"].numpy().astype(np.int64),
        "frame_valid": p["frame_valid"].numpy().astype(bool),
        "dataset": np.asarray(dataset),
        "joint_set": np.asarray(joint_set),
        "protocol": np.asarray(protocol),
        "pred_pose3d": p["pred_pose3d"].numpy(),
        "gt_pose3d": p["pose3d"].numpy(),
        "gt_pose3d_valid": p["pose3d_valid"].bool().numpy(),
        "gt_pose3d_h36m": p["pose3d_h36m"].numpy(),
        "gt_pose3d_h36m_valid": p["pose3d_h36m_valid"].bool().numpy(),
    }
    if "pred_mesh" in p:
        record |= mesh_arrays(p, smpl_regressor, h36m_regressor)
    return record


def mesh_arrays(predictions: dict, smpl_regressor: Tensor, h36m_regressor: Tensor) -> dict[str, np.ndarray]:
    """Stage-2 arrays: refined joints, mesh validity, the metric joints and the aligned meshes."""
    pred = pelvis_aligned_mesh(predictions["pred_mesh"], smpl_regressor)
    gt = pelvis_aligned_mesh(predictions["mesh"], smpl_regressor)
    return {
        "pred_joints": predictions["pred_joints"].numpy(),
        "mesh_valid": predictions["mesh_valid"].bool().numpy(),
        "pred_mesh_h36m17": rooted_h36m_joints(pred, h36m_regressor).numpy(),
        "gt_mesh_h36m17": rooted_h36m_joints(gt, h36m_regressor).numpy(),
        "pred_vertices": pred.numpy().astype(np.float16),
        "gt_vertices": gt.numpy().astype(np.float16),
    }


def save_predictions(path: str | os.PathLike, record: dict[str, np.ndarray], vertices: bool = True) -> Path:
    """Write ``record`` as an uncompressed .npz (the vertices only when ``vertices``)."""
    arrays = {k: v for k, v in record.items() if vertices or k not in VERTEX_KEYS}
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def load_predictions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def metric_joints(record: dict[str, np.ndarray]) -> tuple[np.ndarray, Tensor, Tensor]:
    """What a stage-2 record's joint metrics compare: (N,) bool, the frames with the protocol's ground
    truth, and the predicted and ground-truth Human3.6M-17 joints (N, 17, 3) m rooted at joint 0, the
    ground truth annotated (Human3.6M, MPI-INF-3DHP) or regressed from the GT mesh (the rest)."""
    if uses_annotated_joints(str(record["dataset"])):
        has_gt, gt = record["gt_pose3d_h36m_valid"][:, 0], record["gt_pose3d_h36m"]
    else:
        has_gt, gt = record["mesh_valid"], record["gt_mesh_h36m17"]
    return has_gt, torch.from_numpy(record["pred_mesh_h36m17"]), torch.from_numpy(gt)


def scored_rows(record: dict[str, np.ndarray]) -> np.ndarray:
    """Rows of the frames the joint metrics of the record's protocol average over (all in stage 1)."""
    if "pred_mesh_h36m17" not in record:
        return np.arange(len(record["video"]))
    has_gt = metric_joints(record)[0]
    dataset, protocol = str(record["dataset"]), str(record["protocol"])
    return np.flatnonzero(scored_frames(dataset, protocol, has_gt, record["frame_valid"]))


def record_metrics(record: dict[str, np.ndarray], mode: str | None = None) -> dict[str, float]:
    """The metrics (mm) eval.py reports, from a record alone: the dataset's protocol (no PVE without
    vertices), or the pose-stream scores of a stage-1 record. ``mode`` defaults to the record's
    protocol."""
    mode = mode or str(record["protocol"])
    seq_ids = sequence_ids(record["video"], record["segment"])
    if "pred_mesh_h36m17" not in record:
        root = JOINT_SETS[str(record["joint_set"])].index("Pelvis")
        pred, gt = torch.from_numpy(record["pred_pose3d"]), torch.from_numpy(record["gt_pose3d"])
        return pose_metrics(pred, gt, seq_ids, root)
    has_gt, pred, gt = metric_joints(record)
    valid = torch.from_numpy(record["frame_valid"][has_gt])
    values = evaluate_joints(str(record["dataset"]), pred[has_gt], gt[has_gt], seq_ids[has_gt], valid, mode)
    keep = record["mesh_valid"]
    if "pred_vertices" in record and keep.any():
        pred_mm, gt_mm = (torch.from_numpy(record[key][keep]).float() * MM_PER_M for key in VERTEX_KEYS)
        values["PVE"] = float(metrics.pve(pred_mm, gt_mm))
    return values


def recompute_metrics(path: str | os.PathLike, mode: str | None = None) -> dict[str, float]:
    """``record_metrics`` of a saved predictions file."""
    return record_metrics(load_predictions(path), mode)
