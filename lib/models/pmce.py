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

    def frame_parts(self, pose2d: torch.Tensor | None, img_feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """pose2d: (N, J, 2) or None (when the frames' 2D poses differ between windows), img_feat: (N, D)
        -> the network's per-frame parts (lib/models/shared_frames.py): the pose stream's (``PoseStream.
        frame_parts``) and the GRU's first-layer input projections ('gru_gates', (N, K, G))."""
        parts = self.pose_lifter.frame_parts(pose2d, img_feat)
        gates = self.pose_mesh_coevo.image_gates(img_feat)
        return parts if gates is None else {**parts, "gru_gates": gates}

    def forward_frames(self, parts: dict[str, torch.Tensor], pose2d: torch.Tensor) -> PMCEOutput:
        """``forward`` from ``frame_parts`` gathered per window ((B, T, ...) each) and the windows' 2D
        poses (B, T, J, 2)."""
        pose3d = self.pose_lifter.forward_frames(parts, pose2d)
        cond = self.pose_mesh_coevo.image_feature_from_gates(parts.get("gru_gates"))
        joints, mesh = self.pose_mesh_coevo.forward_cond(pose3d, cond)
        return PMCEOutput(mesh=mesh, joints=joints, pose3d=pose3d)
