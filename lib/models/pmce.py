"""The full PMCE network: pose stream + image stream + co-evolution decoder (paper Figure 2)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from lib.models.decoder import MeshDecoder
from lib.models.pose_stream import PoseStream


class PMCEOutput(NamedTuple):
    """All in metres, root-relative, for the target frame of each window."""

    mesh: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, J, 3) refined by the last co-evolution block
    pose3d: torch.Tensor  # (B, J, 3) from the pose stream


class PMCE(nn.Module):
    """(2D pose sequence, image-feature sequence) -> mesh, refined joints and pose-stream joints.

    ``pose_lifter`` and ``pose_mesh_coevo`` are the official checkpoint prefixes.
    """

    def __init__(self, pose_lifter: PoseStream, pose_mesh_coevo: MeshDecoder) -> None:
        super().__init__()
        self.pose_lifter = pose_lifter
        self.pose_mesh_coevo = pose_mesh_coevo

    def forward(self, pose2d: torch.Tensor, img_feat: torch.Tensor) -> PMCEOutput:
        """pose2d: (B, T, J, 2) normalised image coordinates; img_feat: (B, T, D)."""
        pose3d = self.pose_lifter(pose2d, img_feat)
        joints, mesh = self.pose_mesh_coevo(pose3d, img_feat)
        return PMCEOutput(mesh=mesh, joints=joints, pose3d=pose3d)
