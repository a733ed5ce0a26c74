"""Ground-truth meshes of a whole dataset, computed once in batches and cached on disk.

The official code runs a CPU SMPL forward inside ``__getitem__`` for every sample of every epoch. Here
the vertices of all frames are computed once per dataset split, in batches grouped by gender, and stored
as a memory-mappable ``.npy`` of shape (N, 6890, 3) in metres (camera coordinates, not root-relative;
rows without SMPL parameters are zeros). The file name carries a hash of everything the vertices depend
on (the SMPL parameters and world -> camera transforms, the body model's identity string, the dataset
name), so changed inputs get a new file and an unchanged dataset is never recomputed. Files are written
to a temporary name and renamed, so an interrupted run leaves no partial cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from lib.constants import NUM_VERTICES
from lib.data.frames import SmplParams
from lib.io import atomic_path

CACHE_DTYPES = ("float32", "float16")


class VertexModel(Protocol):
    """What the data code needs from the body model (lib/body provides it; tests build a small one)."""

    identity: str  # names the model files / version; part of the cache key

    def vertices(self, pose: Tensor, betas: Tensor, transl: Tensor, gender: str) -> Tensor:
        """pose (B, 72) axis-angle, betas (B, 10), transl (B, 3) m -> vertices (B, 6890, 3) m."""
        ...


def mesh_cache_key(dataset: str, body_identity: str, smpl: SmplParams) -> str:
    """Hex digest of the dataset name, the body identity and every SMPL array the vertices depend on."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{dataset}\0{body_identity}\0".encode())
    arrays = [smpl.pose, smpl.betas, smpl.transl, smpl.valid, smpl.rotation, smpl.translation]
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(array, dtype=np.float64)
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    digest.update("\0".join(smpl.gender.astype(str)).encode())
    return digest.hexdigest()


def cached_meshes(
    cache_dir: str | os.PathLike,
    dataset: str,
    smpl: SmplParams,
    body_model: VertexModel,
    *,
    batch_size: int = 512,
    dtype: str = "float32",
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """(N, 6890, 3) read-only memory map of the vertices of every row, computed on the first call.

    Args:
        cache_dir: folder of the cache files (created when missing).
        dataset: name used in the file name and the key, e.g. '3dpw_train'.
        smpl: the table's SMPL parameters; rows with ``valid`` False get zero vertices.
        body_model: see :class:`VertexModel`; called under ``torch.no_grad`` on ``device``.
        dtype: 'float32' or 'float16' storage.
    """
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"dtype must be one of {CACHE_DTYPES}, got {dtype!r}")
    key = mesh_cache_key(dataset, body_model.identity, smpl)
    path = Path(cache_dir) / f"meshes_{dataset}_{key[:20]}_{dtype}.npy"
    if not path.is_file():
        fill = lambda out: _fill(out, smpl, body_model, batch_size, device)  # noqa: E731
        _write_atomically(path, fill, (len(smpl.pose), NUM_VERTICES, 3), np.dtype(dtype))
    return np.load(path, mmap_mode="r")


def _write_atomically(path: Path, fill, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Create an .npy of ``shape`` / ``dtype`` at a temporary name, let ``fill`` write it, rename."""
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        fill(out)
        out.flush()
        del out


def _fill(out: np.ndarray, smpl: SmplParams, body_model: VertexModel, batch_size: int, device) -> None:
    """Write the vertices of the valid rows into ``out`` (N, 6890, 3), batch by batch per gender."""
    out[~smpl.valid] = 0
    for gender in np.unique(smpl.gender[smpl.valid]):
        rows = np.flatnonzero(smpl.valid & (smpl.gender == gender))
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            verts = body_model.vertices(
                _tensor(smpl.pose[batch], device),
                _tensor(smpl.betas[batch], device),
                _tensor(smpl.transl[batch], device),
                str(gender),
            )  # (B, 6890, 3)
            if smpl.rotation is not None:
                rotation = _tensor(smpl.rotation[batch], device)  # (B, 3, 3)
                verts = verts @ rotation.transpose(1, 2) + _tensor(smpl.translation[batch], device)[:, None]
            out[batch] = verts.float().cpu().numpy()


def _tensor(array: np.ndarray, device) -> Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)


def regress_joints(meshes: np.ndarray, regressor: Tensor, batch_size: int = 4096) -> np.ndarray:
    """(N, J, 3) float32 joints ``regressor @ mesh`` of every row of an (N, 6890, 3) array, in batches."""
    regressor = regressor.detach().float().cpu()
    joints = np.empty((len(meshes), regressor.shape[0], 3), dtype=np.float32)
    for start in range(0, len(meshes), batch_size):
        verts = torch.from_numpy(np.array(meshes[start : start + batch_size], dtype=np.float32))
        joints[start : start + batch_size] = (regressor @ verts).numpy()
    return joints
