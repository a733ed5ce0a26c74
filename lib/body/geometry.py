"""Triangle-mesh utilities in numpy: normals, areas, adjacency, closed-surface checks, winding numbers.

Shapes: V vertices, F faces, P query points.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def face_normals(vertices: np.ndarray, faces: np.ndarray, normalize: bool = True) -> np.ndarray:
    """(V, 3), (F, 3) -> (F, 3) normals (right-hand rule); unnormalised ones have length 2 * area."""
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    n = np.cross(v1 - v0, v2 - v0)
    if normalize:
        n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals."""
    n = face_normals(vertices, faces, normalize=False)
    out = np.zeros_like(vertices, dtype=np.float64)
    for i in range(3):
        np.add.at(out, faces[:, i], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def adjacency(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """(V, V) symmetric 0/1 vertex adjacency of a triangle mesh."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    a = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices))
    a.data[:] = 1.0
    return a


def closed_surface_problems(faces: np.ndarray, num_vertices: int) -> list[str]:
    """Why ``faces`` is not a closed, consistently oriented, single-piece genus-0 manifold ([] if it is)."""
    problems = []
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keys = directed[:, 0].astype(np.int64) * num_vertices + directed[:, 1]
    if len(np.unique(keys)) != len(keys):
        problems.append("a directed edge is used twice (inconsistent orientation or non-manifold edge)")
    reverse = directed[:, 1].astype(np.int64) * num_vertices + directed[:, 0]
    if not np.isin(reverse, keys).all():
        problems.append("an edge has no opposite half-edge (the surface has holes)")
    if (
        np.any(faces[:, 0] == faces[:, 1])
        or np.any(faces[:, 1] == faces[:, 2])
        or np.any(faces[:, 0] == faces[:, 2])
    ):
        problems.append("a face repeats a vertex")
    used = np.unique(faces)
    if len(used) != num_vertices:
        problems.append(f"{num_vertices - len(used)} vertices are in no face")
    euler = num_vertices - len(keys) // 2 + len(faces)
    if euler != 2:
        problems.append(f"Euler characteristic {euler} != 2 (not a single sphere-like surface)")
    n_components, _ = sp.csgraph.connected_components(adjacency(faces, num_vertices), directed=False)
    if n_components != 1:
        problems.append(f"{n_components} connected pieces")
    return problems


def winding_numbers(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P,) generalised winding numbers: about 1 inside a closed outward-oriented surface, 0 outside."""
    total = np.zeros(len(points))
    for start in range(0, len(points), 64):
        p = points[start : start + 64, None, None, :]  # (p, 1, 1, 3)
        tri = vertices[faces][None] - p  # (p, F, 3, 3)
        a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = (a * np.cross(b, c)).sum(-1)
        div = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        total[start : start + 64] = 2.0 * np.arctan2(det, div).sum(-1) / (4.0 * np.pi)
    return total


def enclosed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume of a closed mesh (positive when faces are oriented outwards)."""
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    return float((v0 * np.cross(v1, v2)).sum() / 6.0)


def triangle_quality(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) 4*sqrt(3)*area / sum of squared edge lengths: 1 for equilateral, 0 for degenerate."""
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    area2 = np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1)
    lengths = ((v1 - v0) ** 2).sum(1) + ((v2 - v1) ** 2).sum(1) + ((v0 - v2) ** 2).sum(1)
    return 2.0 * np.sqrt(3.0) * area2 / np.maximum(lengths, 1e-18)
