"""Joint regressors: loading them, and regressing joint sets from meshes (COCO-19 built from COCO-17).

Shapes: B batch, V vertices, J joints.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from lib.body.files import load_array
from lib.constants import COCO17_JOINTS, NUM_VERTICES

REGRESSOR_FILES = {"h36m17": "J_regressor_h36m_correct.npy", "coco17": "J_regressor_coco.npy"}


def load_regressor(path: str | os.PathLike, joint_set: str, num_vertices: int = NUM_VERTICES) -> torch.Tensor:
    """(J, V) float32 regressor of ``joint_set`` ('h36m17' or 'coco17') from a .npy file."""
    array = load_array(path, REGRESSOR_FILES[joint_set], (17, num_vertices))
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def regress(vertices: torch.Tensor, regressor: torch.Tensor) -> torch.Tensor:
    """(B, V, 3), (J, V) -> (B, J, 3)."""
    return torch.einsum("jv,bvc->bjc", regressor.to(vertices.dtype), vertices)


def coco19_from_coco17(joints: torch.Tensor) -> torch.Tensor:
    """(..., 17, C) COCO-17 -> (..., 19, C): appends Pelvis (mean of hips) and Neck (mean of shoulders)."""
    hips = joints[..., [COCO17_JOINTS.index("L_Hip"), COCO17_JOINTS.index("R_Hip")], :]
    shoulders = joints[..., [COCO17_JOINTS.index("L_Shoulder"), COCO17_JOINTS.index("R_Shoulder")], :]
    extra = torch.stack([hips.mean(dim=-2), shoulders.mean(dim=-2)], dim=-2)
    return torch.cat([joints, extra], dim=-2)
