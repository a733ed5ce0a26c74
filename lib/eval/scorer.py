"""How a run scores its predictions: one ``Scorer``, built once from the config and the body assets
(``lib.engine.build.build_scorer``), used by validation during training and by eval.py.

The scorer holds what does not change between datasets (the input joint set, the regressors, the
protocol); the dataset is named at each call, since which ground truth a prediction is compared with is
the dataset's protocol: the annotated Human3.6M-17 joints for Human3.6M and MPI-INF-3DHP, the joints
regressed from the ground-truth mesh for 3DPW and the rest (lib/eval/protocols.py).

Shapes: N frames (one prediction per window's target frame), J joints, V vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from lib.constants import JOINT_SETS
from lib.eval.predictions import prediction_record
from lib.eval.protocols import (
    evaluate_joints,
    evaluate_mesh_pve,
    h36m_joints_from_mesh,
    pose_metrics,
    uses_annotated_joints,
)
from lib.eval.selection import sequence_ids


@dataclass(frozen=True)
class Scorer:
    """Scores ``lib.engine.validate.predict``'s output under each dataset's protocol.

    joint_set: the input joint set (stage 1 scores its joints rooted at its pelvis); smpl_regressor (24, V)
    and h36m_regressor (17, V): stage 2 regresses the metric joints from the meshes with them; protocol:
    'full' or 'official' (lib/eval/protocols.py).
    """

    joint_set: str
    smpl_regressor: Tensor | None = None
    h36m_regressor: Tensor | None = None
    protocol: str = "full"

    def score(self, predictions: dict, dataset: str) -> dict[str, float]:
        """Metrics (mm) of ``predictions`` on ``dataset``.

        Stage 1 (no mesh): pose-stream scores. Stage 2: the Human3.6M-17 joints regressed from the
        predicted mesh against the protocol's ground truth on the frames that have it, and PVE on the
        frames with a valid ground-truth mesh.
        """
        p = predictions
        seq_ids = sequence_ids(p["video"], p["segment"].tolist())
        if "pred_mesh" not in p:
            root = JOINT_SETS[self.joint_set].index("Pelvis")
            return pose_metrics(p["pred_pose3d"], p["pose3d"], seq_ids, root)
        mesh_ok = p["mesh_valid"].bool()
        if uses_annotated_joints(dataset):
            gt, has_gt = p["pose3d_h36m"], p["pose3d_h36m_valid"][:, 0].bool()
        else:
            gt, has_gt = self._h36m_joints(p["mesh"]), mesh_ok
        pred = self._h36m_joints(p["pred_mesh"])
        values = evaluate_joints(dataset, pred[has_gt], gt[has_gt], seq_ids[has_gt.numpy()],
                                 p["frame_valid"][has_gt], self.protocol)  # fmt: skip
        if mesh_ok.any():
            pred_verts, gt_verts = p["pred_mesh"][mesh_ok], p["mesh"][mesh_ok]
            values["PVE"] = evaluate_mesh_pve(pred_verts, gt_verts, self.smpl_regressor)
        return values

    def record(self, predictions: dict, dataset: str) -> dict[str, np.ndarray]:
        """The predictions file's arrays of ``predictions`` on ``dataset`` (lib/eval/predictions.py)."""
        return prediction_record(
            predictions, self.joint_set, self.smpl_regressor, self.h36m_regressor, self.protocol, dataset
        )

    def _h36m_joints(self, verts: Tensor) -> Tensor:
        """(N, V, 3) -> (N, 17, 3) the metric joints, as the official evaluate() derives them."""
        return h36m_joints_from_mesh(verts, self.smpl_regressor, self.h36m_regressor)
