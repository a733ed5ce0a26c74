"""Build the networks from the config: the only place in ``lib.models`` that reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from yacs.config import CfgNode

from lib.config import target_index
from lib.constants import JOINT_SETS, NUM_VERTICES, num_joints
from lib.models.decoder import MeshDecoder
from lib.models.pmce import PMCE
from lib.models.pose_stream import PoseStream

if TYPE_CHECKING:
    from collections.abc import Sequence


class CoarseMeshLike(Protocol):
    """What the decoder needs from the body-model layer (``lib.body.coarse_mesh.CoarseMesh``)."""

    template: torch.Tensor  # (V', 3)
    vertex_joint_map: torch.Tensor  # (V',)
    upsample: Sequence[torch.Tensor]  # sparse, coarse to fine: (U1 (1723, V'), U0 (V, 1723))


def build_pose_stream(cfg: CfgNode) -> PoseStream:
    """The stage-1 network."""
    m = cfg.MODEL
    return PoseStream(
        num_joints=num_joints(m.INPUT_JOINT_SET),
        seq_len=m.SEQ_LEN,
        dim=m.POSE_STREAM.DIM,
        depth=m.POSE_STREAM.DEPTH,
        heads=m.POSE_STREAM.HEADS,
        mlp_ratio=m.POSE_STREAM.MLP_RATIO,
        drop_path=m.POSE_STREAM.DROP_PATH,
        img_feat_dim=m.IMG_FEAT_DIM,
        use_img_feat=m.POSE_STREAM.USE_IMG_FEAT,
        output_scale=m.POSE_STREAM.OUTPUT_SCALE,
        input_norm=m.POSE_STREAM.INPUT_NORM,
        pos_embed_std=m.POSE_STREAM.POS_EMBED_STD,
        root_index=JOINT_SETS[m.INPUT_JOINT_SET].index("Pelvis"),
    )


def build_decoder(cfg: CfgNode, coarse_mesh: CoarseMeshLike) -> MeshDecoder:
    m, d = cfg.MODEL, cfg.MODEL.DECODER
    needs_matrix = d.UPSAMPLE == "matrix" or d.OUTPUT_INIT == "upsampling"
    upsample_matrix = compose_upsampling(coarse_mesh.upsample) if needs_matrix else None
    return MeshDecoder(
        num_joints=num_joints(m.INPUT_JOINT_SET),
        coarse_template=coarse_mesh.template,
        vertex_joint_map=coarse_mesh.vertex_joint_map,
        num_vertices=NUM_VERTICES,
        upsample_matrix=upsample_matrix,
        target_index=target_index(cfg),
        img_feat_dim=m.IMG_FEAT_DIM,
        gru_hidden=m.IMAGE_STREAM.HIDDEN,
        gru_layers=m.IMAGE_STREAM.LAYERS,
        joint_dim=d.JOINT_DIM,
        vertex_dim=d.VERTEX_DIM,
        num_blocks=d.NUM_BLOCKS,
        joint_heads=d.JOINT_HEADS,
        vertex_heads=d.VERTEX_HEADS,
        mlp_ratio=d.MLP_RATIO,
        drop_path=d.DROP_PATH,
        norm=d.NORM,
        interaction=d.INTERACTION,
        joint_input=d.JOINT_INPUT,
        init=d.INIT,
        upsample=d.UPSAMPLE,
        output_init=d.OUTPUT_INIT,
        cond_init=d.COND_INIT,
        use_img_feat=d.USE_IMG_FEAT,
    )


def build_model(cfg: CfgNode, coarse_mesh: CoarseMeshLike | None = None) -> nn.Module:
    """The network of ``cfg.STAGE``: the pose stream ('pose') or the full PMCE ('mesh').

    Modules are built in the official order, so ``torch.manual_seed(s)`` followed by this call gives
    the official initialisation for seed ``s``.
    """
    pose_stream = build_pose_stream(cfg)
    if cfg.STAGE == "pose":
        return pose_stream
    if coarse_mesh is None:
        raise ValueError("STAGE 'mesh' needs the coarse mesh from the body-model layer")
    return PMCE(pose_stream, build_decoder(cfg, coarse_mesh))


def compose_upsampling(matrices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sparse coarse-to-fine matrices (U1 (1723, V'), U0 (V, 1723)) -> one sparse (V, V') matrix."""
    if not matrices:
        raise ValueError("MODEL.DECODER.UPSAMPLE 'matrix' needs the U matrices of mesh_downsampling.npz")
    total = matrices[0].to_dense()
    for matrix in matrices[1:]:
        total = torch.sparse.mm(matrix.coalesce(), total)  # sparse @ dense; V x V' is small enough dense
    return total.to_sparse()
