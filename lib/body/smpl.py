"""SMPL through smplx, batched, with the joint regressors as buffers.

Shapes: B batch, V vertices (6890), J joints, F faces.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lib.body.files import BodyFileError, load_smpl_data
from lib.body.regressors import coco19_from_coco17, regress
from lib.constants import NUM_VERTICES

JOINT_SETS = ("h36m17", "coco17", "coco19", "smpl24")
_SMPL_SHAPES = {
    "v_template": (NUM_VERTICES, 3),
    "weights": (NUM_VERTICES, 24),
    "kintree_table": (2, 24),
    "J_regressor": (24, NUM_VERTICES),
}


def load_smpl_layer(path: str | os.PathLike, gender: str) -> nn.Module:
    """An ``smplx.SMPL`` layer (10 betas, no learnable parameters) from a real or generated SMPL pickle."""
    import smplx
    from smplx.utils import Struct

    data = load_smpl_data(path)
    for key, shape in _SMPL_SHAPES.items():
        if tuple(data[key].shape) != shape:
            raise BodyFileError(path, f"'{key}' has shape {tuple(data[key].shape)}, expected {shape}", "smpl")
    if data["shapedirs"].shape[-1] < 10 or data["posedirs"].shape[-1] != 207:
        raise BodyFileError(path, "needs >= 10 shape and 207 pose blend shapes", "smpl")
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a notice about the 10-beta model
        return smplx.SMPL(
            model_path=str(path),
            data_struct=Struct(**data),
            gender=gender,
            num_betas=10,
            create_betas=False,
            create_global_orient=False,
            create_body_pose=False,
            create_transl=False,
        )


@dataclass(frozen=True)
class BodyOutput:
    vertices: torch.Tensor  # (B, V, 3) metres
    joints: dict[str, torch.Tensor]  # joint set -> (B, J, 3), regressed from the vertices


class BodyModel(nn.Module):
    """SMPL layers per gender + joint regressors; batched forward on any device, no per-sample loops."""

    def __init__(
        self, layers: dict[str, nn.Module], h36m_regressor: torch.Tensor, coco_regressor: torch.Tensor
    ):
        super().__init__()
        if not layers:
            raise ValueError("BodyModel needs at least one SMPL layer")
        self.layers = nn.ModuleDict(layers)
        first = next(iter(layers.values()))
        self.register_buffer("faces", first.faces_tensor.clone(), persistent=False)  # (F, 3)
        self.register_buffer("regressor_h36m17", h36m_regressor.float(), persistent=False)  # (17, V)
        self.register_buffer("regressor_coco17", coco_regressor.float(), persistent=False)  # (17, V)
        self.register_buffer("regressor_smpl24", first.J_regressor.clone(), persistent=False)  # (24, V)

    @property
    def genders(self) -> tuple[str, ...]:
        return tuple(self.layers.keys())

    def forward(
        self,
        pose: torch.Tensor,
        betas: torch.Tensor,
        transl: torch.Tensor | None = None,
        gender: str | Sequence[str] = "neutral",
        joint_sets: Sequence[str] = ("h36m17",),
    ) -> BodyOutput:
        """Pose (B, 72) axis-angle (global orientation first), betas (B, 10), transl (B, 3) or None.

        ``gender`` is one gender for the batch or one per sample; each gender's samples go through
        its layer in one batched call.
        """
        genders = [gender] * pose.shape[0] if isinstance(gender, str) else list(gender)
        vertices = None
        for name in dict.fromkeys(genders):
            if name not in self.layers:
                raise ValueError(f"no SMPL layer for gender {name!r}; loaded: {self.genders}")
            idx = torch.as_tensor(np.flatnonzero(np.array(genders) == name), device=pose.device)
            out = self.layers[name](
                betas=betas[idx], global_orient=pose[idx, :3], body_pose=pose[idx, 3:], transl=None
            ).vertices
            if vertices is None:
                vertices = out.new_zeros(pose.shape[0], *out.shape[1:])
            vertices[idx] = out
        if transl is not None:
            vertices = vertices + transl[:, None, :]
        return BodyOutput(vertices=vertices, joints={s: self.joints(vertices, s) for s in joint_sets})

    def joints(self, vertices: torch.Tensor, joint_set: str) -> torch.Tensor:
        """(B, V, 3) -> (B, J, 3) joints of ``joint_set`` ('h36m17', 'coco17', 'coco19', 'smpl24')."""
        if joint_set == "coco19":
            return coco19_from_coco17(regress(vertices, self.regressor_coco17))
        if joint_set not in JOINT_SETS:
            raise ValueError(f"unknown joint set {joint_set!r}; known: {JOINT_SETS}")
        return regress(vertices, getattr(self, f"regressor_{joint_set}"))
