"""The coarse mesh the decoder starts from: the 431-vertex template, its nearest-joint map, the U matrices.

Official semantics (PMCE decoder constructor): ``template = D1 @ (D0 @ mean_vertices)`` in float32; the
template joints are regressed from the full 6890-vertex mean mesh; each coarse vertex is mapped to the
nearest template joint (squared L2, first index on ties).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lib.body.files import BodyFileError, load_array, load_downsampling


@dataclass(frozen=True)
class CoarseMesh:
    """What the network's constructor needs from the body model."""

    template: torch.Tensor  # (V', 3) float32, metres: D1 @ D0 @ mean_vertices (V' = 431 for SMPL)
    vertex_joint_map: torch.Tensor  # (V',) int64: index of the nearest template joint per coarse vertex
    upsample: tuple[torch.Tensor, ...]  # sparse float32, coarse to fine: (U1 (1723, 431), U0 (6890, 1723))


def nearest_joint_map(coarse_vertices: torch.Tensor, template_joints: torch.Tensor) -> torch.Tensor:
    """(V', 3), (J, 3) -> (V',) int64: the nearest joint of each vertex (squared L2, first on ties)."""
    sq_dist = ((coarse_vertices[:, None, :] - template_joints[None, :, :]) ** 2).sum(-1)  # (V', J)
    return sq_dist.argmin(dim=1)


def build_coarse_mesh(
    mean_vertices: np.ndarray, downsampling: dict[str, list[Any]], joint_regressor: np.ndarray
) -> CoarseMesh:
    """Coarse template, nearest-joint map and U matrices from the mean mesh and the GraphCMR matrices.

    Args:
        mean_vertices: (V, 3) float32 mean mesh (metres).
        downsampling: lists 'D' (fine to coarse) and 'U' (coarse to fine) of scipy sparse matrices.
        joint_regressor: (J, V) regressor of the joints the coarse vertices are mapped to (H36M-17).
    """
    fine = np.asarray(mean_vertices, dtype=np.float32)
    coarse = fine
    for down in downsampling["D"]:
        coarse = down.astype(np.float32) @ coarse  # float32 like the official code
    joints = np.asarray(joint_regressor, dtype=np.float32) @ fine
    template = torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.float32))
    vertex_joint_map = nearest_joint_map(template, torch.from_numpy(joints))
    upsample = tuple(_to_torch_sparse(u) for u in reversed(downsampling["U"]))
    return CoarseMesh(template=template, vertex_joint_map=vertex_joint_map, upsample=upsample)


def load_coarse_mesh(
    mean_vertices_path: str | os.PathLike,
    downsampling_path: str | os.PathLike,
    joint_regressor_path: str | os.PathLike,
) -> CoarseMesh:
    """``build_coarse_mesh`` from the three files; ``BodyFileError`` for a missing or malformed one."""
    mean_vertices = load_array(mean_vertices_path, "smpl_mean_vertices.npy", (None, 3))
    regressor = load_array(
        joint_regressor_path, "J_regressor_h36m_correct.npy", (None, mean_vertices.shape[0])
    )
    downsampling = load_downsampling(downsampling_path)
    _check_chain(downsampling, mean_vertices.shape[0], downsampling_path)
    return build_coarse_mesh(mean_vertices, downsampling, regressor)


def _check_chain(downsampling: dict[str, list[Any]], num_vertices: int, path: str | os.PathLike) -> None:
    """D matrices must chain V -> ... -> V' and each U must be the transpose shape of its D."""
    rows = num_vertices
    for level, (down, up) in enumerate(zip(downsampling["D"], downsampling["U"], strict=True)):
        if down.shape[1] != rows or up.shape != (down.shape[1], down.shape[0]):
            raise BodyFileError(
                path,
                f"level {level}: D {down.shape} / U {up.shape} do not chain from {rows} vertices",
                "mesh_downsampling.npz",
            )
        rows = down.shape[0]


def _to_torch_sparse(matrix: Any) -> torch.Tensor:
    coo = matrix.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=True).coalesce()
