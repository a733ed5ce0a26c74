"""Stage 1: the spatial-temporal pose stream (paper section 3.1), 2D pose sequence -> mid-frame 3D pose.

Attribute names follow the official checkpoints (``pose_*.pth.tar`` and the ``pose_lifter.`` part of
``mesh_*.pth.tar``) so that they load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from lib.models.layers import TransformerBlock

# The official regression head is trained in millimetres; scaling its output keeps official
# checkpoints usable while everything downstream works in metres.
OFFICIAL_OUTPUT_SCALE_M = 1e-3
INPUT_NORMS = ("screen", "root_scale", "window_root_scale")


def root_scale_normalize(
    pose2d: torch.Tensor, root_index: int, anchor_frame: int | None = None
) -> torch.Tensor:
    """(B, T, J, 2) -> poses minus a root position, divided by the window's mean joint-to-root distance
    (one scale per window keeps the motion's size changes within the window).

    The root position is each frame's own root joint (``anchor_frame`` None), or the root joint of frame
    ``anchor_frame`` for every frame, which keeps the root's track within the window visible.
    """
    own_root = pose2d[:, :, root_index : root_index + 1]  # (B, T, 1, 2)
    scale = (pose2d - own_root).norm(dim=-1).mean(dim=(1, 2), keepdim=True).clamp_min(1e-4)  # (B, 1, 1)
    root = own_root if anchor_frame is None else own_root[:, anchor_frame : anchor_frame + 1]
    return (pose2d - root) / scale[..., None]


class PoseStream(nn.Module):
    """Interleaved spatial (over joints) and temporal (over frames) transformer blocks.

    Each frame's image feature is projected and added to all its joint tokens (``use_img_feat``); the
    per-frame 3D poses are fused over the window by a learned 1x1 convolution with frames as channels.
    """

    def __init__(
        self,
        *,
        num_joints: int,
        seq_len: int,
        dim: int = 256,
        depth: int = 3,
        heads: int = 8,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.2,
        img_feat_dim: int = 2048,
        use_img_feat: bool = True,
        output_scale: float = OFFICIAL_OUTPUT_SCALE_M,
        input_norm: str = "screen",
        root_index: int = 0,
        pos_embed_std: float = 0.0,
    ) -> None:
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        self.output_scale = output_scale  # metres per unit of the regression output
        self.input_norm = input_norm
        self.root_index = root_index
        self.spatial_pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim))
        self.temporal_pos_embed = nn.Parameter(torch.zeros(1, seq_len, dim))
        self.joint_embed = nn.Linear(2, dim)
        self.imgfeat_embed = nn.Linear(img_feat_dim, dim) if use_img_feat else None
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.SpatialBlocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio, r) for r in rates)
        self.TemporalBlocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio, r) for r in rates)
        # One LayerNorm after every spatial and one after every temporal block, shared across depth.
        self.norm_s = nn.LayerNorm(dim, eps=1e-6)
        self.norm_t = nn.LayerNorm(dim, eps=1e-6)
        self.regression = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 3))
        self.fusion = nn.Conv2d(seq_len, 1, kernel_size=1)
        if pos_embed_std > 0:  # official: zeros (drawn last so the other layers keep the official init)
            for embed in (self.spatial_pos_embed, self.temporal_pos_embed):
                nn.init.trunc_normal_(embed, std=pos_embed_std, a=-2 * pos_embed_std, b=2 * pos_embed_std)

    def forward(self, pose2d: torch.Tensor, img_feat: torch.Tensor | None = None) -> torch.Tensor:
        """pose2d: (B, T, J, 2) normalised image coordinates; img_feat: (B, T, D).

        Returns the fused 3D pose (B, J, 3) in metres, root-relative.
        """
        b, t, j, _ = pose2d.shape
        if self.input_norm != "screen":
            anchor = t // 2 if self.input_norm == "window_root_scale" else None
            pose2d = root_scale_normalize(pose2d, self.root_index, anchor)
        x = self.joint_embed(pose2d.reshape(b * t, j, 2))  # (B*T, J, C)
        if self.imgfeat_embed is not None:
            x = x + self.imgfeat_embed(img_feat.reshape(b * t, 1, -1))
        x = x + self.spatial_pos_embed
        for depth, (spatial, temporal) in enumerate(
            zip(self.SpatialBlocks, self.TemporalBlocks, strict=True)
        ):
            x = self.norm_s(spatial(x))
            x = x.view(b, t, j, -1).transpose(1, 2).reshape(b * j, t, -1)  # (B*J, T, C)
            if depth == 0:
                x = x + self.temporal_pos_embed
            x = self.norm_t(temporal(x))
            x = x.view(b, j, t, -1).transpose(1, 2).reshape(b * t, j, -1)  # (B*T, J, C)
        per_frame = self.regression(x.view(b, t, j, -1))  # (B, T, J, 3)
        return self.fusion(per_frame).view(b, j, 3) * self.output_scale
