"""Generate the SMPL-format body and write it in SMPL's and the official base data's file formats.

Deterministic (no randomness anywhere) and a few seconds on a laptop CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from lib.body.files import (
    SMPL_FILE_NAMES,
    BodyFileError,
    load_smpl_data,
    save_downsampling,
    save_npy,
    save_pickle,
)
from lib.body.generated import design, rig
from lib.body.generated.decimate import graph_matrices
from lib.body.generated.meshing import mesh_with_vertex_count
from lib.constants import NUM_COARSE_VERTICES, NUM_VERTICES

GENERATOR_TAG = "pmce scripts/make_synthetic_body.py, procedural body v1"
GRID_STEP = 0.012  # surface-nets grid (metres): resolves the thumb and ears, ~17k vertices before decimation
NUM_MIDDLE_VERTICES = 1723  # GraphCMR's intermediate level
NUM_POSE_BASIS = 207  # 23 joints x 9 rotation-matrix entries
# Gendered templates = the neutral one moved along the shape directions (see rig.SHAPE_NAMES).
GENDER_BETAS = {
    "neutral": np.zeros(10),
    "male": np.array([0.7, 0.3, 1.0, 0.2, 0.3, 0.0, -0.7, 0.0, 0.0, 0.0]),
    "female": np.array([-0.8, -0.3, -1.0, 0.0, -0.3, 0.0, 1.0, 0.0, 0.0, 0.8]),
}
BASE_FILES = (
    "smpl_mean_vertices.npy",
    "mesh_downsampling.npz",
    "J_regressor_h36m_correct.npy",
    "J_regressor_coco.npy",
)


@dataclass(frozen=True)
class GeneratedBody:
    vertices: np.ndarray  # (V, 3) neutral template, metres
    faces: np.ndarray  # (F, 3) outward-oriented
    weights: np.ndarray  # (V, 24) skinning weights
    shapedirs: np.ndarray  # (V, 3, 10)
    smpl_regressor: np.ndarray  # (24, V)
    h36m_regressor: np.ndarray  # (17, V)
    coco_regressor: np.ndarray  # (17, V)
    downsampling: dict[str, list[sp.csr_matrix]]  # GraphCMR 'A', 'U', 'D'


def generate_body() -> GeneratedBody:
    """Mesh the designed surface to SMPL's vertex count and rig it."""
    prims = design.primitives()

    def sdf(points: np.ndarray) -> np.ndarray:
        return design.signed_distance(points, prims)

    lo = np.array([-0.95, design.FLOOR - 0.04, -0.2])
    hi = np.array([0.95, 0.58, 0.25])
    vertices, faces = mesh_with_vertex_count(sdf, lo, hi, NUM_VERTICES, GRID_STEP)
    weights = rig.skinning_weights(vertices, faces, prims)
    downsampling = graph_matrices(vertices, faces, (NUM_MIDDLE_VERTICES, NUM_COARSE_VERTICES))
    return GeneratedBody(
        vertices=vertices,
        faces=faces,
        weights=weights,
        shapedirs=rig.shape_directions(vertices, weights),
        smpl_regressor=rig.fit_regressor(vertices, design.rest_joints()),
        h36m_regressor=rig.fit_regressor(vertices, rig.h36m_targets()),
        coco_regressor=rig.fit_regressor(vertices, rig.coco_targets(vertices, faces)),
        downsampling=downsampling,
    )


def smpl_model_dict(body: GeneratedBody, gender: str) -> dict[str, Any]:
    """The content of an SMPL pickle (same keys, shapes and dtypes as SMPL ships, without chumpy)."""
    v_template = body.vertices + body.shapedirs @ GENDER_BETAS[gender]
    kintree = np.array([[4294967295, *design.SMPL_PARENTS[1:]], list(range(24))], dtype=np.int64)
    return {
        "v_template": v_template.astype(np.float64),
        "f": body.faces.astype(np.uint32),
        "J_regressor": sp.csc_matrix(body.smpl_regressor),
        "J": body.smpl_regressor @ v_template,
        "weights": body.weights.astype(np.float64),
        "kintree_table": kintree,
        "shapedirs": body.shapedirs.astype(np.float64),
        "posedirs": np.zeros((len(v_template), 3, NUM_POSE_BASIS)),
        "bs_type": "lrotmin",
        "bs_style": "lbs",
        "gender": gender,
        "generated_by": GENERATOR_TAG,
    }


def write_body(body: GeneratedBody, smpl_dir: str | os.PathLike, base_dir: str | os.PathLike) -> list[Path]:
    """Write the three SMPL pickles (SMPL_*.pkl) and the four base-data files; returns their paths."""
    smpl_dir, base_dir = Path(smpl_dir), Path(base_dir)
    written = [
        save_pickle(smpl_dir / SMPL_FILE_NAMES[gender][0], smpl_model_dict(body, gender))
        for gender in GENDER_BETAS
    ]
    written.append(save_npy(base_dir / BASE_FILES[0], body.vertices.astype(np.float32)))
    written.append(save_downsampling(base_dir / BASE_FILES[1], body.downsampling))
    written.append(save_npy(base_dir / BASE_FILES[2], body.h36m_regressor.astype(np.float32)))
    written.append(save_npy(base_dir / BASE_FILES[3], body.coco_regressor.astype(np.float32)))
    return written


def user_files_in_the_way(smpl_dir: str | os.PathLike, base_dir: str | os.PathLike) -> list[Path]:
    """Existing body files at the targets that no earlier generation wrote: the user's own files.

    A user's real SMPL pickle under either name counts (a generated SMPL_*.pkl would shadow it), and so
    do base-data files unless the SMPL folder already holds a generated body.
    """
    smpl_dir, base_dir = Path(smpl_dir), Path(base_dir)
    pickles = [smpl_dir / n for names in SMPL_FILE_NAMES.values() for n in names if (smpl_dir / n).is_file()]
    base = [base_dir / n for n in BASE_FILES if (base_dir / n).is_file()]
    generated = [p for p in pickles if _is_generated(p)]
    user_pickles = [p for p in pickles if p not in generated]
    return user_pickles + ([] if generated else base)


def _is_generated(path: Path) -> bool:
    try:
        return load_smpl_data(path).get("generated_by") == GENERATOR_TAG
    except BodyFileError:
        return False
