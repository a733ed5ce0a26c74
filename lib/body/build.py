"""Build the body model and the coarse mesh from the config: the only place in ``lib.body`` that reads it."""

from __future__ import annotations

import torch
from yacs.config import CfgNode

from lib.body.coarse_mesh import CoarseMesh, load_coarse_mesh
from lib.body.files import BodyFileError, find_smpl_file
from lib.body.regressors import load_regressor
from lib.body.smpl import BodyModel, load_smpl_layer
from lib.constants import COCO17_JOINTS, H36M17_JOINTS, SMPL24_JOINTS

# Joints every set places at (almost) the same spot; a regressor made for another mesh puts them far off.
_CHECKED_JOINTS = ("L_Knee", "R_Knee", "L_Ankle", "R_Ankle", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist")
MAX_JOINT_MISMATCH = 0.08  # metres


def build_body_model(cfg: CfgNode) -> BodyModel:
    """SMPL layers for ``BODY.GENDERS`` from ``BODY.SMPL_DIR`` and the H36M / COCO regressors."""
    b = cfg.BODY
    layers = {g: load_smpl_layer(find_smpl_file(b.SMPL_DIR, g), g) for g in b.GENDERS}
    model = BodyModel(
        layers,
        h36m_regressor=load_regressor(b.J_REGRESSOR_H36M, "h36m17"),
        coco_regressor=load_regressor(b.J_REGRESSOR_COCO, "coco17"),
    )
    check_same_body(model, {"h36m17": b.J_REGRESSOR_H36M, "coco17": b.J_REGRESSOR_COCO})
    return model


def build_coarse_mesh_from_cfg(cfg: CfgNode) -> CoarseMesh:
    """The network's coarse mesh from BODY.MEAN_VERTICES, BODY.MESH_DOWNSAMPLING and BODY.J_REGRESSOR_H36M."""
    b = cfg.BODY
    return load_coarse_mesh(b.MEAN_VERTICES, b.MESH_DOWNSAMPLING, b.J_REGRESSOR_H36M)


def check_same_body(model: BodyModel, regressor_paths: dict[str, str]) -> None:
    """Raise ``BodyFileError`` if a regressor was made for another mesh (e.g. generated files mixed with
    real SMPL): its limb joints on the rest template must lie near SMPL's own."""
    layer = next(iter(model.layers.values()))
    template = layer.v_template[None]  # (1, V, 3)
    smpl = model.joints(template, "smpl24")[0]
    for joint_set, names in (("h36m17", H36M17_JOINTS), ("coco17", COCO17_JOINTS)):
        joints = model.joints(template, joint_set)[0]
        for name in _CHECKED_JOINTS:
            gap = torch.linalg.norm(joints[names.index(name)] - smpl[SMPL24_JOINTS.index(name)]).item()
            if gap > MAX_JOINT_MISMATCH:
                raise BodyFileError(
                    regressor_paths[joint_set],
                    f"this regressor does not fit the SMPL model in use ({name} lands {gap:.2f} m from "
                    "SMPL's; are generated and real body files mixed?)",
                    regressor_paths[joint_set].split("/")[-1],
                )
