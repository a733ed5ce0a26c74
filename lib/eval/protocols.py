"""Per-dataset evaluation protocols of PMCE (3DPW, Human3.6M, MPI-INF-3DHP), metric side only.

Inputs are in metres (the model's unit) and are converted to millimetres once on entry, as the official
Tester does; every returned value is in millimetres (ACCEL in mm/frame^2), except PCK / AUC (fractions).
Frame selection (which windows / cameras / frames are evaluated) is ``lib/eval/selection.py``; these
functions receive one prediction per evaluated frame, in sequence order. Regressors are arguments.
Joints are compared with each dataset's official ground truth: the annotated Human3.6M-17 joints for
Human3.6M and MPI-INF-3DHP, the joints regressed from the ground-truth mesh for 3DPW (and the rest).

Two modes:
* ``official``: reproduces the official ``evaluate()`` computations exactly, quirks included: ACCEL with
  zero-padded sequence ends counted in the mean; MPI-INF-3DHP with the zero-error root joint in the
  mean and ``valid`` ignored.
* ``full`` (default): the corrected protocol: ACCEL is the mean over interior frames of each sequence;
  MPI-INF-3DHP excludes the root joint and uses valid frames only.
Shapes: N frames, J joints, V vertices.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import Tensor

from lib import metrics
from lib.constants import H36M_EVAL_JOINTS
from lib.data.datasets import h36m, mpi_inf_3dhp

MODES = ("official", "full")
MM_PER_M = 1000.0
ANNOTATED_JOINT_DATASETS = (h36m.NAME, mpi_inf_3dhp.NAME)
MPII3D_JOINTS = {"official": tuple(range(17)), "full": tuple(range(1, 17))}  # official: the root included


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown evaluation mode {mode!r}; expected one of {MODES}")


def regress(regressor: Tensor, verts: Tensor) -> Tensor:
    """Joints from vertices. regressor: (J, V), verts: (N, V, 3) -> (N, J, 3)."""
    return torch.einsum("jv,nvc->njc", regressor.to(verts.dtype), verts)


def root_relative(points: Tensor, root: Tensor) -> Tensor:
    """Translate every frame so that its root is at the origin. points: (N, P, 3), root: (N, 3)."""
    return points - root[:, None]


def pelvis_aligned_mesh(verts: Tensor, smpl_regressor: Tensor) -> Tensor:
    """Mesh translated so that the SMPL-24 pelvis (regressor row 0) is at the origin. verts: (N, V, 3)."""
    return root_relative(verts, regress(smpl_regressor[:1], verts)[:, 0])


def rooted_h36m_joints(aligned_verts: Tensor, h36m_regressor: Tensor) -> Tensor:
    """Human3.6M-17 joints of a pelvis-aligned mesh, rooted at joint 0. (N, V, 3), (17, V) -> (N, 17, 3)."""
    joints = regress(h36m_regressor, aligned_verts)
    return root_relative(joints, joints[:, 0])


def h36m_joints_from_mesh(verts: Tensor, smpl_regressor: Tensor, h36m_regressor: Tensor) -> Tensor:
    """Human3.6M-17 joints as the official evaluate() derives them: SMPL-pelvis alignment, regression,
    re-rooting at joint 0. verts: (N, V, 3); smpl_regressor: (24, V); h36m_regressor: (17, V) -> (N, 17, 3).
    """
    return rooted_h36m_joints(pelvis_aligned_mesh(verts, smpl_regressor), h36m_regressor)


def _rooted_mm(joints: Tensor) -> Tensor:
    """Metres to millimetres, rooted at joint 0. joints: (N, J, 3)."""
    joints_mm = joints * MM_PER_M
    return root_relative(joints_mm, joints_mm[:, 0])


def _accel(
    pred: Tensor, gt: Tensor, seq_ids: Sequence[Hashable] | Tensor, mode: str, valid: Tensor | None = None
) -> Tensor:
    """ACCEL of the mode: official zero-padded aggregation, or interior mean over valid triplets."""
    if mode == "official":
        return metrics.accel_official(metrics.accel_per_sequence(pred, gt, seq_ids), pred.shape[0])
    return metrics.accel_interior_mean(metrics.accel_per_sequence(pred, gt, seq_ids, valid))


def _as_floats(values: dict[str, Tensor]) -> dict[str, float]:
    return {name: float(value) for name, value in values.items()}


def evaluate_mesh_sequences(
    pred_verts: Tensor,
    gt_verts: Tensor,
    seq_ids: Sequence[Hashable] | Tensor,
    smpl_regressor: Tensor,
    h36m_regressor: Tensor,
    mode: str = "full",
) -> dict[str, float]:
    """3DPW protocol (official ``PW3D.evaluate``): MPJPE, PA-MPJPE, PVE, ACCEL in mm.

    pred_verts, gt_verts: (N, V, 3) metres; seq_ids: (N,) sequence of each frame, runs of equal consecutive
    ids form a sequence (official: the video name of each window's mid frame); smpl_regressor: (24, V);
    h36m_regressor: (17, V).
    PVE after SMPL-pelvis alignment; joint metrics on the 14 Human3.6M evaluation joints.
    """
    _check_mode(mode)
    pred_mesh = pelvis_aligned_mesh(pred_verts * MM_PER_M, smpl_regressor)
    gt_mesh = pelvis_aligned_mesh(gt_verts * MM_PER_M, smpl_regressor)
    pred_joints = rooted_h36m_joints(pred_mesh, h36m_regressor)[:, H36M_EVAL_JOINTS]
    gt_joints = rooted_h36m_joints(gt_mesh, h36m_regressor)[:, H36M_EVAL_JOINTS]
    return _as_floats(
        {
            "MPJPE": metrics.mpjpe(pred_joints, gt_joints),
            "PA-MPJPE": metrics.pa_mpjpe(pred_joints, gt_joints),
            "PVE": metrics.pve(pred_mesh, gt_mesh),
            "ACCEL": _accel(pred_joints, gt_joints, seq_ids, mode),
        }
    )


def evaluate_h36m_joints(
    pred_joints: Tensor,
    gt_joints: Tensor,
    seq_ids: Sequence[Hashable] | Tensor,
    actions: Sequence[str] | None = None,
    mode: str = "full",
) -> dict[str, float]:
    """Human3.6M protocols 1 and 2 (MPJPE, PA-MPJPE) and ACCEL in mm, optionally per action.

    pred_joints, gt_joints: (N, 17, 3) metres, Human3.6M-17 order (predictions from
    ``h36m_joints_from_mesh``, ground truth from the dataset); both are rooted at joint 0 and reduced to
    the 14 evaluation joints. actions: (N,) action names; adds keys 'MPJPE/<action>', 'PA-MPJPE/<action>'.
    PVE is ``evaluate_mesh_pve`` (pseudo-GT meshes).
    """
    _check_mode(mode)
    pred = _rooted_mm(pred_joints)[:, H36M_EVAL_JOINTS]
    gt = _rooted_mm(gt_joints)[:, H36M_EVAL_JOINTS]
    errors, pa_errors = metrics.point_errors(pred, gt), metrics.pa_point_errors(pred, gt)
    results = {"MPJPE": errors.mean(), "PA-MPJPE": pa_errors.mean(), "ACCEL": _accel(pred, gt, seq_ids, mode)}
    if actions is not None:
        for name, frame_errors in (("MPJPE", errors), ("PA-MPJPE", pa_errors)):
            for action, mean in metrics.group_means(frame_errors.mean(dim=1), actions).items():
                results[f"{name}/{action}"] = mean
    return _as_floats(results)


def evaluate_mesh_pve(pred_verts: Tensor, gt_verts: Tensor, smpl_regressor: Tensor) -> float:
    """PVE in mm after SMPL-pelvis alignment. pred_verts, gt_verts: (N, V, 3) metres; regressor (24, V)."""
    pred_mesh = pelvis_aligned_mesh(pred_verts * MM_PER_M, smpl_regressor)
    gt_mesh = pelvis_aligned_mesh(gt_verts * MM_PER_M, smpl_regressor)
    return float(metrics.pve(pred_mesh, gt_mesh))


def evaluate_mpii3d_joints(
    pred_joints: Tensor,
    gt_joints: Tensor,
    seq_ids: Sequence[Hashable] | Tensor,
    valid: Tensor | None = None,
    mode: str = "full",
) -> dict[str, float]:
    """MPI-INF-3DHP: MPJPE, PA-MPJPE, ACCEL in mm, PCK@150mm and AUC (fractions) on Human3.6M-17 joints.

    pred_joints, gt_joints: (N, 17, 3) metres, both rooted at joint 0 here; valid: (N,) bool; seq_ids: (N,)
    (official: the test sequence TS1-TS6, i.e. image path minus its last 11 characters; corrected: the
    contiguous segments, so that ACCEL differences do not straddle removed frames).
    official: all 17 joints (the zero-error root included) and all frames, as the official code (which
    reports no PCK / AUC; here they use the same joints and frames). full: the 16 non-root joints, valid
    frames only, ACCEL over interior frames whose three frames are valid.
    """
    _check_mode(mode)
    joints = list(MPII3D_JOINTS[mode])
    pred, gt = _rooted_mm(pred_joints)[:, joints], _rooted_mm(gt_joints)[:, joints]
    accel = _accel(pred, gt, seq_ids, mode, valid)
    if mode == "full" and valid is not None:
        pred, gt = pred[valid], gt[valid]
    errors = metrics.point_errors(pred, gt)
    return _as_floats(
        {
            "MPJPE": errors.mean(),
            "PA-MPJPE": metrics.pa_mpjpe(pred, gt),
            "ACCEL": accel,
            "PCK": metrics.pck(errors),
            "AUC": metrics.auc(errors),
        }
    )


def pose_metrics(pred: Tensor, gt: Tensor, seq_ids: Sequence[Hashable], root: int) -> dict[str, float]:
    """Stage-1 scores (mm) on all joints of the input set, rooted at ``root``: MPJPE, PA-MPJPE, ACCEL (the
    interior mean, in both modes). pred, gt: (N, J, 3) metres; seq_ids: (N,)."""
    pred_mm = (pred - pred[:, root : root + 1]) * MM_PER_M
    gt_mm = (gt - gt[:, root : root + 1]) * MM_PER_M
    accel = metrics.accel_interior_mean(metrics.accel_per_sequence(pred_mm, gt_mm, seq_ids))
    return {
        "MPJPE": float(metrics.mpjpe(pred_mm, gt_mm)),
        "PA-MPJPE": float(metrics.pa_mpjpe(pred_mm, gt_mm)),
        "ACCEL": float(accel),
    }


def uses_annotated_joints(dataset: str) -> bool:
    """Whether ``dataset``'s protocol compares with its annotated joints rather than the GT mesh's."""
    return dataset in ANNOTATED_JOINT_DATASETS


def scored_joints(dataset: str, mode: str = "full") -> tuple[int, ...]:
    """The Human3.6M-17 joints ``dataset``'s joint metrics average over."""
    _check_mode(mode)
    return MPII3D_JOINTS[mode] if dataset == mpi_inf_3dhp.NAME else H36M_EVAL_JOINTS


def evaluate_joints(
    dataset: str,
    pred_joints: Tensor,
    gt_joints: Tensor,
    seq_ids: Sequence[Hashable] | Tensor,
    valid: Tensor | None = None,
    mode: str = "full",
) -> dict[str, float]:
    """The joint metrics of ``dataset``'s protocol: ``evaluate_mpii3d_joints`` for MPI-INF-3DHP (with the
    frames' ``valid`` flags), else ``evaluate_h36m_joints`` (Human3.6M, and 3DPW's joints from meshes).

    pred_joints, gt_joints: (N, 17, 3) metres, Human3.6M-17; seq_ids, valid: (N,).
    """
    if dataset == mpi_inf_3dhp.NAME:
        return evaluate_mpii3d_joints(pred_joints, gt_joints, seq_ids, valid, mode)
    return evaluate_h36m_joints(pred_joints, gt_joints, seq_ids, mode=mode)
