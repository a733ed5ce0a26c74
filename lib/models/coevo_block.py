"""The co-evolution block (paper section 3.2, Figure 3): joints and coarse-mesh vertices exchange
information through symmetric cross-attention, then refine themselves by self-attention; every
normalisation is conditioned on the temporal image feature.

Shapes: B batch, J joints, V coarse vertices, C channels, D image-feature size.
Attribute names follow the official checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

from lib.models.layers import Attention, CrossAttention, DropPath, Mlp, in_float32

INTERACTIONS = ("both", "pose_to_mesh", "mesh_to_pose", "none")


class ConditionedBlock(nn.Module):
    """Pre-norm self-attention block whose norms are conditioned on the image feature."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float, norm: type[nn.Module],
                 cond_dim: int) -> None:  # fmt: skip
        super().__init__()
        self.norm1 = norm(dim, cond_dim)
        self.attn = Attention(dim, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm(dim, cond_dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C), cond: (B, D) -> (B, N, C)."""
        x = x + self.drop_path(self.attn(self.norm1(x, cond)))
        return x + self.drop_path(self.mlp(self.norm2(x, cond)))


class ConditionedCrossBlock(nn.Module):
    """Cross-attention block: queries attend to keys/values, each normalised with the image feature.

    The residual stream is the query input itself (including its query embedding), as in the official code.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float, norm: type[nn.Module],
                 cond_dim: int, value_dim: int) -> None:  # fmt: skip
        super().__init__()
        self.normq = norm(dim, cond_dim)
        self.normk = norm(dim, cond_dim)
        self.normv = norm(value_dim, cond_dim)
        self.attn = CrossAttention(dim, heads, key_dim=dim, value_dim=value_dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm(dim, cond_dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """q: (B, Nq, C), k: (B, Nk, C), v: (B, Nk, Cv), cond: (B, D) -> (B, Nq, C)."""
        attended = self.attn(self.normq(q, cond), self.normk(k, cond), self.normv(v, cond))
        x = q + self.drop_path(attended)
        return x + self.drop_path(self.mlp(self.norm2(x, cond)))


class CoevoBlock(nn.Module):
    """One co-evolution step: (joints (B, J, 3), vertices (B, V, 3)) -> refined joints and vertices.

    ``interaction`` selects the cross-attention branches (paper Table 5): 'mesh_to_pose' lets joints
    attend to vertices, 'pose_to_mesh' lets vertices attend to joints, 'both' is the paper's design.
    Both outputs are residual on the input coordinates.
    """

    # Layers that read or write coordinates: float32 under bfloat16 inference (lib/models/precision.py).
    float32_layers = ("joint_proj", "vertx_proj", "proj_joint_feat2coor", "proj_vertx_feat2coor")

    def __init__(
        self,
        *,
        num_joints: int,
        num_vertices: int,
        joint_dim: int = 64,
        vertex_dim: int = 64,
        joint_heads: int = 8,
        vertex_heads: int = 2,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.2,
        norm: type[nn.Module],
        cond_dim: int = 2048,
        interaction: str = "both",
    ) -> None:
        super().__init__()
        if interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {INTERACTIONS}, got {interaction!r}")
        joints_attend = interaction in ("both", "mesh_to_pose")
        vertices_attend = interaction in ("both", "pose_to_mesh")
        common = dict(mlp_ratio=mlp_ratio, drop_path=drop_path, norm=norm, cond_dim=cond_dim)
        # Construction order matches the official one, so a seeded build reproduces its initialisation.
        self.joint_proj = nn.Linear(3, joint_dim)
        self.vertx_proj = nn.Linear(3, vertex_dim)
        self.joint_pos_embed = nn.Parameter(torch.randn(1, num_joints, joint_dim))
        self.vertx_pos_embed = nn.Parameter(torch.randn(1, num_vertices, vertex_dim))
        self.j_Q_embed = nn.Parameter(torch.randn(1, num_joints, joint_dim)) if joints_attend else None
        self.v_Q_embed = nn.Parameter(torch.randn(1, num_vertices, vertex_dim)) if vertices_attend else None
        self.proj_v2j_dim = nn.Linear(vertex_dim, joint_dim) if joints_attend else None
        self.proj_j2v_dim = nn.Linear(joint_dim, vertex_dim) if vertices_attend else None
        self.v2j_K_embed = nn.Parameter(torch.randn(1, num_vertices, joint_dim)) if joints_attend else None
        self.j2v_K_embed = nn.Parameter(torch.randn(1, num_joints, vertex_dim)) if vertices_attend else None
        self.joint_SA_FFN = ConditionedBlock(joint_dim, joint_heads, **common)
        self.vertx_SA_FFN = ConditionedBlock(vertex_dim, vertex_heads, **common)
        self.joint_CA_FFN = (
            ConditionedCrossBlock(joint_dim, joint_heads, value_dim=vertex_dim, **common)
            if joints_attend
            else None
        )
        self.vertx_CA_FFN = (
            ConditionedCrossBlock(vertex_dim, vertex_heads, value_dim=joint_dim, **common)
            if vertices_attend
            else None
        )
        self.proj_joint_feat2coor = nn.Linear(joint_dim, 3)
        self.proj_vertx_feat2coor = nn.Linear(vertex_dim, 3)

    def forward(
        self, joints: torch.Tensor, vertices: torch.Tensor, cond: torch.Tensor, need_joints: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """joints: (B, J, 3), vertices: (B, V, 3) in metres, cond: (B, D) -> same shapes.

        ``need_joints`` False skips the joint branch (returns None for the joints): the vertices never
        read its output, so a caller that discards the refined joints gets the same vertices for less.
        """
        jf = in_float32(self.joint_proj, joints) + self.joint_pos_embed  # (B, J, Cj)
        vf = in_float32(self.vertx_proj, vertices) + self.vertx_pos_embed  # (B, V, Cv)
        # Both cross-attentions read the same pre-update features.
        new_jf, new_vf = jf, vf
        if self.joint_CA_FFN is not None and need_joints:
            keys = self.proj_v2j_dim(vf) + self.v2j_K_embed
            new_jf = self.joint_CA_FFN(jf + self.j_Q_embed, keys, vf, cond)
        if self.vertx_CA_FFN is not None:
            keys = self.proj_j2v_dim(jf) + self.j2v_K_embed
            new_vf = self.vertx_CA_FFN(vf + self.v_Q_embed, keys, jf, cond)
        vertices = in_float32(self.proj_vertx_feat2coor, self.vertx_SA_FFN(new_vf, cond)) + vertices
        if not need_joints:
            return None, vertices
        return in_float32(self.proj_joint_feat2coor, self.joint_SA_FFN(new_jf, cond)) + joints, vertices
