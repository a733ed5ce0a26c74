"""From an implicit surface to a closed triangle mesh with an exact vertex count.

Surface nets on a regular grid give a closed, outward-oriented mesh with one vertex per surface cell;
the vertices are moved onto the surface, the mesh is decimated to exactly the requested number of
vertices and relaxed for even triangles.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lib.body.generated.decimate import decimate
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


def mesh_with_vertex_count(
    sdf: SignedDistance, lo: np.ndarray, hi: np.ndarray, target: int, step: float, relax_iterations: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """A closed genus-0 mesh of the zero level of ``sdf`` with exactly ``target`` vertices.

    Surface nets at ``step`` (fine enough to resolve thin parts and give more than ``target`` vertices),
    then quadric decimation to ``target`` and a relaxation for even triangles.
    """
    vertices, faces = surface_nets(sdf, lo, hi, step)
    problems = closed_surface_problems(faces, len(vertices))
    if problems or len(vertices) < target:
        raise RuntimeError(f"surface nets at step {step} gave {len(vertices)} vertices; problems: {problems}")
    vertices = project(vertices, sdf, iterations=2)
    kept, faces = decimate(vertices, faces, target)
    return relax(vertices[kept], faces, sdf, relax_iterations), faces
