"""Stage 1: the spatial-temporal pose stream (paper section 3.1), 2D pose sequence -> mid-frame 3D pose.

Attribute names follow the official checkpoints (``pose_*.pth.tar`` and the ``pose_lifter.`` part of
``mesh_*.pth.tar``) so that they load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from lib.models.layers import TransformerBlock, in_float32

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

    # Layers that read or write coordinates: float32 under bfloat16 inference (lib/models/precision.py).
    float32_layers = ("joint_embed", "regression", "fusion")

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

    @property
    def frame_local(self) -> bool:
        """Whether the first spatial block's output depends on its own frame alone (screen input; the
        other input normalisations use the whole window's scale or root)."""
        return self.input_norm == "screen"

    def image_tokens(self, img_feat: torch.Tensor | None) -> torch.Tensor | None:
        """img_feat: (..., D) -> each frame's image token (..., C), added to all its joint tokens; None
        without image features. Per frame: shareable across overlapping windows."""
        return None if self.imgfeat_embed is None else self.imgfeat_embed(img_feat)

    def frame_tokens(self, pose2d: torch.Tensor, img_tokens: torch.Tensor | None) -> torch.Tensor:
        """Single frames through the embedding and the first spatial block (``frame_local`` models only).

        pose2d: (N, J, 2), img_tokens: (N, C) or None -> (N, J, C).
        """
        if not self.frame_local:
            raise ValueError(f"input_norm {self.input_norm!r} needs whole windows, not single frames")
        tokens = None if img_tokens is None else img_tokens[:, None]
        return self.norm_s(self.SpatialBlocks[0](self._embed(pose2d[:, None], tokens)))

    def frame_parts(
        self, pose2d: torch.Tensor | None, img_feat: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """What single frames contribute on their own (see lib/models/shared_frames.py): the first spatial
        block's tokens ('frame_tokens', (N, J, C)) where the model is ``frame_local`` and the frames' 2D
        poses (N, J, 2) are given, else the image tokens ('img_tokens', (N, C)) if any."""
        img_tokens = self.image_tokens(img_feat)
        if pose2d is not None and self.frame_local:
            return {"frame_tokens": self.frame_tokens(pose2d, img_tokens)}
        return {} if img_tokens is None else {"img_tokens": img_tokens}

    def forward_frames(self, parts: dict[str, torch.Tensor], pose2d: torch.Tensor) -> torch.Tensor:
        """``forward`` from ``frame_parts`` gathered per window ((B, T, ...) each) and the windows' 2D
        poses (B, T, J, 2)."""
        return self.forward_parts(pose2d, parts.get("img_tokens"), parts.get("frame_tokens"))

    def forward(self, pose2d: torch.Tensor, img_feat: torch.Tensor | None = None) -> torch.Tensor:
        """pose2d: (B, T, J, 2) normalised image coordinates; img_feat: (B, T, D).

        Returns the fused 3D pose (B, J, 3) in metres, root-relative.
        """
        return self.forward_parts(pose2d, self.image_tokens(img_feat))

    def forward_parts(
        self,
        pose2d: torch.Tensor,
        img_tokens: torch.Tensor | None = None,
        frame_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``forward`` from per-frame parts computed beforehand: img_tokens (B, T, C) (``image_tokens``),
        or frame_tokens (B, T, J, C) (``frame_tokens``, then pose2d and img_tokens are not read)."""
        b, t, j, _ = pose2d.shape
        if frame_tokens is None:
            x = self.norm_s(self.SpatialBlocks[0](self._embed(pose2d, img_tokens)))
        else:
            x = frame_tokens.reshape(b * t, j, -1)
        for depth, (spatial, temporal) in enumerate(
            zip(self.SpatialBlocks, self.TemporalBlocks, strict=True)
        ):
            if depth > 0:
                x = self.norm_s(spatial(x))
            x = x.view(b, t, j, -1).transpose(1, 2).reshape(b * j, t, -1)  # (B*J, T, C)
            if depth == 0:
                x = x + self.temporal_pos_embed
            x = self.norm_t(temporal(x))
            x = x.view(b, j, t, -1).transpose(1, 2).reshape(b * t, j, -1)  # (B*T, J, C)
        per_frame = in_float32(self.regression, x.view(b, t, j, -1))  # (B, T, J, 3)
        return in_float32(self.fusion, per_frame).view(b, j, 3) * self.output_scale

    def _embed(self, pose2d: torch.Tensor, img_tokens: torch.Tensor | None) -> torch.Tensor:
        """pose2d: (B, T, J, 2), img_tokens: (B, T, C) or None -> joint tokens (B*T, J, C)."""
        b, t, j, _ = pose2d.shape
        if self.input_norm != "screen":
            anchor = t // 2 if self.input_norm == "window_root_scale" else None
            pose2d = root_scale_normalize(pose2d, self.root_index, anchor)
        x = in_float32(self.joint_embed, pose2d.reshape(b * t, j, 2))  # (B*T, J, C)
        if img_tokens is not None:
            x = x + img_tokens.reshape(b * t, 1, -1)
        return x + self.spatial_pos_embed
