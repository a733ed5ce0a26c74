"""Mesh decimation by half-edge collapses, and the GraphCMR down/upsampling matrices built from it.

A half-edge collapse removes one vertex and keeps the other where it is, so a decimated mesh uses a
subset of the original vertices: its downsampling matrix D selects rows (one 1 per row), like the
official ``mesh_downsampling.npz``. Each collapse removes one vertex and two faces and keeps the surface
closed, so any vertex count can be reached exactly.
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from lib.body.geometry import adjacency, face_normals

LENGTH_WEIGHT = 0.05  # weight of the squared edge length next to the quadric error: keeps sizes even
MIN_NORMAL_COS = 0.3  # a collapse may not turn any face by more than ~73 degrees
MIN_QUALITY = 0.15  # ... nor create a sliver triangle


def decimate(vertices: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Collapse edges of a closed mesh until ``target`` vertices remain.

    Costs are re-evaluated lazily: an entry whose vertices changed since it was pushed is re-costed
    when it comes out of the heap. Returns the kept original vertex indices (K,) in increasing order and
    the faces (2K - 4, 3) in that numbering.
    """
    state = _CollapseState(vertices, faces)
    heap = _initial_entries(state, faces)
    heapq.heapify(heap)
    alive = len(vertices)
    while alive > target:
        if not heap:
            raise RuntimeError(f"decimation stopped at {alive} vertices; no valid collapse left")
        _, v, u, version_v, version_u = heapq.heappop(heap)
        if not state.vertex_faces[v] or not state.vertex_faces[u]:
            continue
        if state.version[v] != version_v or state.version[u] != version_u:
            if u in state.neighbours(v):
                heapq.heappush(heap, state.entry(v, u))
            continue
        if not state.can_collapse(v, u):
            continue
        for w in state.collapse(v, u):
            heapq.heappush(heap, state.entry(w, u))
            heapq.heappush(heap, state.entry(u, w))
        alive -= 1
    return state.result()


def _initial_entries(state: _CollapseState, faces: np.ndarray) -> list[tuple[float, int, int, int, int]]:
    """Heap entries for every directed edge, costed in one vectorised pass."""
    directed = np.unique(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=0)
    v, u = directed[:, 0], directed[:, 1]
    p = state.homogeneous[u]
    quadric = np.einsum("ni,nij,nj->n", p, state.quadrics[v] + state.quadrics[u], p)
    length2 = ((state.homogeneous[u] - state.homogeneous[v]) ** 2).sum(1)
    cost = quadric + LENGTH_WEIGHT * length2
    return list(zip(cost.tolist(), v.tolist(), u.tolist(), [0] * len(v), [0] * len(v), strict=True))


class _CollapseState:
    """Faces around each vertex, per-vertex quadrics and version stamps during decimation.

    The per-collapse work is on a handful of faces, so it is plain Python (numpy calls would cost more
    than the arithmetic).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.points = [tuple(p) for p in np.asarray(vertices, dtype=np.float64).tolist()]
        self.homogeneous = np.concatenate([vertices, np.ones((len(vertices), 1))], axis=1)
        self.faces = [list(tri) for tri in np.asarray(faces).tolist()]
        self.face_alive = [True] * len(faces)
        self.vertex_faces: list[set[int]] = [set() for _ in range(len(vertices))]
        for f, tri in enumerate(self.faces):
            for x in tri:
                self.vertex_faces[x].add(f)
        self.version = [0] * len(vertices)
        self.quadrics = _vertex_quadrics(np.asarray(vertices, dtype=np.float64), np.asarray(faces))

    def neighbours(self, v: int) -> set[int]:
        return {x for f in self.vertex_faces[v] for x in self.faces[f]} - {v}

    def entry(self, v: int, u: int) -> tuple[float, int, int, int, int]:
        """Heap entry for collapsing ``v`` into ``u``."""
        return (self.cost(v, u), v, u, self.version[v], self.version[u])

    def cost(self, v: int, u: int) -> float:
        p = self.homogeneous[u]
        length2 = sum((a - b) ** 2 for a, b in zip(self.points[u], self.points[v], strict=True))
        return float(p @ (self.quadrics[v] + self.quadrics[u]) @ p) + LENGTH_WEIGHT * length2

    def can_collapse(self, v: int, u: int) -> bool:
        shared = [f for f in self.vertex_faces[v] if u in self.faces[f]]
        if len(shared) != 2:
            return False
        opposite = {x for f in shared for x in self.faces[f]} - {u, v}
        if self.neighbours(v) & self.neighbours(u) != opposite:  # link condition: stays a manifold
            return False
        for f in self.vertex_faces[v]:
            if f in shared:
                continue
            old = [self.points[x] for x in self.faces[f]]
            new = [self.points[u] if x == v else self.points[x] for x in self.faces[f]]
            n_old, n_new = _normal(*old), _normal(*new)
            area_old, area_new = _length(n_old), _length(n_new)
            if _dot(n_old, n_new) < MIN_NORMAL_COS * area_old * area_new:
                return False
            if 2.0 * np.sqrt(3.0) * area_new < MIN_QUALITY * _sum_sq_edges(*new):
                return False
        return True

    def collapse(self, v: int, u: int) -> set[int]:
        """Remove ``v`` by moving its faces to ``u``; returns the vertices newly joined to ``u``."""
        joined = self.neighbours(v) - self.neighbours(u) - {u}
        touched = self.neighbours(v) | {u, v}
        for f in list(self.vertex_faces[v]):
            tri = self.faces[f]
            if u in tri:
                self.face_alive[f] = False
                for x in tri:
                    self.vertex_faces[x].discard(f)
            else:
                tri[tri.index(v)] = u
                self.vertex_faces[u].add(f)
        self.vertex_faces[v] = set()
        self.quadrics[u] += self.quadrics[v]
        for w in touched:
            self.version[w] += 1
        return joined

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        kept = np.flatnonzero([len(fs) > 0 for fs in self.vertex_faces])
        renumber = -np.ones(len(self.points), dtype=np.int64)
        renumber[kept] = np.arange(len(kept))
        faces = np.array([tri for tri, alive in zip(self.faces, self.face_alive, strict=True) if alive])
        return kept, renumber[faces]


def _normal(a, b, c) -> tuple[float, float, float]:
    ux, uy, uz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    vx, vy, vz = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    return (uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx)


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _length(a) -> float:
    return _dot(a, a) ** 0.5


def _sum_sq_edges(a, b, c) -> float:
    return sum((p[i] - q[i]) ** 2 for p, q in ((a, b), (b, c), (c, a)) for i in range(3))


def _vertex_quadrics(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 4, 4) sums of the area-weighted plane quadrics of the faces around each vertex."""
    n = face_normals(vertices, faces, normalize=False)
    area = np.linalg.norm(n, axis=1) / 2
    n = n / np.maximum(2 * area, 1e-18)[:, None]
    plane = np.concatenate([n, -(n * vertices[faces[:, 0]]).sum(1, keepdims=True)], axis=1)  # (F, 4)
    q = area[:, None, None] * plane[:, :, None] * plane[:, None, :]
    out = np.zeros((len(vertices), 4, 4))
    for i in range(3):
        np.add.at(out, faces[:, i], q)
    return out


def selection_matrix(kept: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """(K, V) float32 0/1 matrix with a single 1 in row r at column kept[r]."""
    rows = np.arange(len(kept))
    return sp.csr_matrix((np.ones(len(kept), np.float32), (rows, kept)), shape=(len(kept), num_vertices))


def upsampling_matrix(fine: np.ndarray, coarse: np.ndarray, coarse_faces: np.ndarray) -> sp.csr_matrix:
    """(V, K) float32: each fine vertex as barycentric weights of its closest point on the coarse mesh."""
    tree = cKDTree(coarse)
    _, near = tree.query(fine, k=min(8, len(coarse)))
    vertex_faces = [[] for _ in range(len(coarse))]
    for f, tri in enumerate(coarse_faces):
        for x in tri:
            vertex_faces[x].append(f)
    rows, cols, vals = [], [], []
    for i, p in enumerate(fine):
        candidates = np.unique(np.concatenate([vertex_faces[x] for x in near[i]]))
        tris = coarse[coarse_faces[candidates]]  # (c, 3, 3)
        bary = _closest_barycentric(p, tris)
        dist = np.linalg.norm((bary[:, :, None] * tris).sum(1) - p, axis=1)
        best = int(np.argmin(dist))
        rows += [i, i, i]
        cols += list(coarse_faces[candidates[best]])
        vals += list(bary[best])
    u = sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(len(fine), len(coarse)))
    u.eliminate_zeros()
    return u


def _closest_barycentric(p: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(3,), (c, 3, 3) -> (c, 3) barycentric coordinates of the closest point of each triangle to p."""
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    ab, ac, bc = b - a, c - a, c - b
    n = np.cross(ab, ac)
    nn = np.maximum((n * n).sum(1), 1e-30)
    # Barycentric coordinates of the projection onto each plane.
    w_c = (np.cross(ab, p - a) * n).sum(1) / nn
    w_b = (np.cross(p - a, ac) * n).sum(1) / nn
    bary = np.stack([1 - w_b - w_c, w_b, w_c], axis=1)
    inside = (bary >= 0).all(1)
    if inside.all():
        return bary
    # Outside: the closest point lies on one of the three edges.
    best = bary.copy()
    best_dist = np.full(len(tris), np.inf)
    for (i, j), start, edge in (((0, 1), a, ab), ((0, 2), a, ac), ((1, 2), b, bc)):
        t = np.clip(((p - start) * edge).sum(1) / np.maximum((edge * edge).sum(1), 1e-30), 0, 1)
        dist = np.linalg.norm(start + t[:, None] * edge - p, axis=1)
        edge_bary = np.zeros((len(tris), 3))
        edge_bary[:, i], edge_bary[:, j] = 1 - t, t
        better = ~inside & (dist < best_dist)
        best[better], best_dist[better] = edge_bary[better], dist[better]
    return best


def graph_matrices(
    vertices: np.ndarray, faces: np.ndarray, counts: tuple[int, ...]
) -> dict[str, list[sp.csr_matrix]]:
    """GraphCMR 'A' (adjacency per level), 'U' (coarse to fine), 'D' (fine to coarse) for successive
    decimations to ``counts`` vertices."""
    a_list = [adjacency(faces, len(vertices)).astype(np.float32)]
    u_list, d_list = [], []
    for count in counts:
        kept, coarse_faces = decimate(vertices, faces, count)
        coarse = vertices[kept]
        d_list.append(selection_matrix(kept, len(vertices)))
        u_list.append(upsampling_matrix(vertices, coarse, coarse_faces))
        a_list.append(adjacency(coarse_faces, count).astype(np.float32))
        vertices, faces = coarse, coarse_faces
    return {"A": a_list, "U": u_list, "D": d_list}
