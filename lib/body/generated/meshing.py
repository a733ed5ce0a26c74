"""From an implicit surface to a closed triangle mesh with an exact vertex count.

Surface nets on a regular grid give a closed, outward-oriented mesh with one vertex per surface cell;
the vertices are then moved onto the surface, relaxed for even triangles, and the longest edges are
split until the mesh has exactly the requested number of vertices.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lib.body.geometry import adjacency, closed_surface_problems, vertex_normals

SignedDistance = Callable[[np.ndarray], np.ndarray]  # (P, 3) -> (P,), negative inside


def surface_nets(
    sdf: SignedDistance, lo: np.ndarray, hi: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Closed mesh (V, 3), (F, 3) of the zero level of ``sdf`` in the box [lo, hi], sampled every ``step``.

    Far from the surface only the sign of ``sdf`` matters, so it is evaluated exactly in a narrow band.
    """
    axes = [np.arange(lo[i], hi[i] + step, step) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # (nx, ny, nz, 3)
    field = _narrow_band_field(sdf, grid, step)
    inside = field < 0
    cell_shape = tuple(n - 1 for n in field.shape)
    sums = np.zeros((*cell_shape, 3))
    counts = np.zeros(cell_shape)
    quads = []
    for axis in range(3):
        crossing, points, flip = _edge_crossings(field, inside, grid, axis)
        for offset in _edge_cells(axis):
            cells = crossing - np.array(offset)
            np.add.at(sums, tuple(cells.T), points)
            np.add.at(counts, tuple(cells.T), 1)
        quads.append(_quads(crossing, flip, axis))
    active = counts > 0
    index = -np.ones(cell_shape, dtype=np.int64)
    index[active] = np.arange(active.sum())
    vertices = sums[active] / counts[active][:, None]
    quads = index[tuple(np.concatenate(quads).transpose(2, 0, 1))]  # (Q, 4) vertex ids
    return vertices, _triangulate(vertices, quads)


def _narrow_band_field(sdf: SignedDistance, grid: np.ndarray, step: float, stride: int = 4) -> np.ndarray:
    """``sdf`` on the grid: exact near the surface; far away, the value at the nearest coarse sample.

    The coarse samples are every ``stride``-th grid point; a point whose nearest coarse value is larger
    than twice the coarse spacing cannot be next to the surface, so only its sign matters.
    """
    coarse = grid[::stride, ::stride, ::stride]
    coarse_field = sdf(coarse.reshape(-1, 3)).reshape(coarse.shape[:3])
    nearest = [
        np.minimum(np.rint(np.arange(n) / stride).astype(np.int64), m - 1)
        for n, m in zip(grid.shape[:3], coarse.shape[:3], strict=True)
    ]
    field = coarse_field[np.ix_(*nearest)]
    band = np.abs(field) < 2.0 * stride * step
    field[band] = sdf(grid[band])
    return field


def _edge_cells(axis: int) -> list[tuple[int, int, int]]:
    """Offsets from an edge's start point to the four cells around an edge along ``axis``."""
    u, v = (axis + 1) % 3, (axis + 2) % 3
    offsets = []
    for du, dv in ((1, 1), (0, 1), (0, 0), (1, 0)):  # counter-clockwise about +axis in the (u, v) plane
        o = [0, 0, 0]
        o[u], o[v] = du, dv
        offsets.append(tuple(o))
    return offsets


def _edge_crossings(field, inside, grid, axis):
    """Grid edges along ``axis`` that cross the surface: start indices, crossing points, outward-is-minus."""
    n = field.shape[axis]
    a = [slice(None)] * 3
    b = [slice(None)] * 3
    a[axis], b[axis] = slice(0, n - 1), slice(1, n)
    f0, f1 = field[tuple(a)], field[tuple(b)]
    crossing = np.argwhere(inside[tuple(a)] != inside[tuple(b)])
    idx = tuple(crossing.T)
    t = (f0[idx] / (f0[idx] - f1[idx]))[:, None]
    points = grid[tuple(a)][idx] * (1 - t) + grid[tuple(b)][idx] * t
    return crossing, points, ~inside[tuple(a)][idx]


def _quads(crossing: np.ndarray, flip: np.ndarray, axis: int) -> np.ndarray:
    """(Q, 4, 3) cell indices of the quad dual to each crossing edge, outward-oriented."""
    cells = np.stack([crossing - np.array(o) for o in _edge_cells(axis)], axis=1)
    cells[flip] = cells[flip][:, ::-1]
    return cells


def _triangulate(vertices: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Split each quad along its shorter diagonal."""
    d02 = np.linalg.norm(vertices[quads[:, 0]] - vertices[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(vertices[quads[:, 1]] - vertices[quads[:, 3]], axis=1)
    short02 = (d02 <= d13)[:, None]
    tri_a = np.where(short02, quads[:, [0, 1, 2]], quads[:, [0, 1, 3]])
    tri_b = np.where(short02, quads[:, [0, 2, 3]], quads[:, [1, 2, 3]])
    return np.concatenate([tri_a, tri_b])


def project(points: np.ndarray, sdf: SignedDistance, iterations: int = 4, eps: float = 1e-4) -> np.ndarray:
    """Newton steps that move points onto the zero level of ``sdf``."""
    for _ in range(iterations):
        d = sdf(points)
        grad = np.stack(
            [(sdf(points + eps * e) - sdf(points - eps * e)) / (2 * eps) for e in np.eye(3)], axis=1
        )
        points = points - (d / np.maximum((grad**2).sum(1), 1e-12))[:, None] * grad
    return points


def relax(vertices: np.ndarray, faces: np.ndarray, sdf: SignedDistance, iterations: int) -> np.ndarray:
    """Tangential Laplacian smoothing, each step followed by a projection back onto the surface."""
    a = adjacency(faces, len(vertices))
    degree = np.asarray(a.sum(axis=1))
    for _ in range(iterations):
        normals = vertex_normals(vertices, faces)
        delta = a @ vertices / degree - vertices
        delta -= (delta * normals).sum(1, keepdims=True) * normals
        vertices = project(vertices + 0.5 * delta, sdf, iterations=2)
    return vertices


def split_to_count(
    vertices: np.ndarray, faces: np.ndarray, target: int, sdf: SignedDistance
) -> tuple[np.ndarray, np.ndarray]:
    """Split the longest edges (new vertices on the surface) until there are exactly ``target`` vertices."""
    while len(vertices) < target:
        vertices, faces = _split_round(vertices, faces, target - len(vertices), sdf)
    return vertices, faces


def _split_round(vertices, faces, budget, sdf):
    """Split up to ``budget`` long edges whose faces are all distinct (so the splits do not interact)."""
    half = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # (3F, 2)
    face_of = np.tile(np.arange(len(faces)), 3)
    corner = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]])  # vertex opposite each half-edge
    keys = half[:, 0].astype(np.int64) * len(vertices) + half[:, 1]
    order = np.argsort(keys)
    twin = order[np.searchsorted(keys[order], half[:, 1].astype(np.int64) * len(vertices) + half[:, 0])]
    lengths = np.linalg.norm(vertices[half[:, 0]] - vertices[half[:, 1]], axis=1)
    candidates = np.flatnonzero(half[:, 0] < half[:, 1])
    candidates = candidates[np.argsort(-lengths[candidates], kind="stable")]
    used = np.zeros(len(faces), dtype=bool)
    chosen = []
    for h in candidates:
        f1, f2 = face_of[h], face_of[twin[h]]
        if used[f1] or used[f2]:
            continue
        used[f1] = used[f2] = True
        chosen.append(h)
        if len(chosen) == budget:
            break
    chosen = np.array(chosen)
    a, b = half[chosen, 0], half[chosen, 1]
    c, d = corner[chosen], corner[twin[chosen]]
    mid = np.arange(len(vertices), len(vertices) + len(chosen))
    new_vertices = project(0.5 * (vertices[a] + vertices[b]), sdf)
    keep = np.ones(len(faces), dtype=bool)
    keep[face_of[chosen]] = False
    keep[face_of[twin[chosen]]] = False
    new_faces = np.concatenate(
        [np.stack(x, axis=1) for x in ((a, mid, c), (mid, b, c), (b, mid, d), (mid, a, d))]
    )
    return np.concatenate([vertices, new_vertices]), np.concatenate([faces[keep], new_faces])


def mesh_with_vertex_count(
    sdf: SignedDistance, lo: np.ndarray, hi: np.ndarray, target: int, relax_iterations: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """A closed genus-0 mesh of the zero level of ``sdf`` with exactly ``target`` vertices.

    The grid step is chosen by bisection so that surface nets give slightly fewer vertices than
    ``target`` (between 94% and 100%); edge splits make up the rest.
    """
    step_lo, step_hi = 0.005, 0.05
    for _ in range(30):
        step = 0.5 * (step_lo + step_hi)
        vertices, faces = surface_nets(sdf, lo, hi, step)
        if len(vertices) > target:
            step_lo = step
        elif len(vertices) < 0.94 * target:
            step_hi = step
        else:
            break
    problems = closed_surface_problems(faces, len(vertices))
    if problems:
        raise RuntimeError(f"surface nets gave a broken mesh at step {step:.4f}: {problems}")
    vertices = relax(project(vertices, sdf), faces, sdf, relax_iterations)
    return split_to_count(vertices, faces, target, sdf)
