"""Test-time flip augmentation: each window's prediction averaged with the mirror image of the prediction
for the mirrored window (the video flipped left-right).

Mirroring the frame negates the normalised x coordinate of every keypoint (x / w * 2 - 1, eq. 5, and the
root-scale normalisations alike) and swaps left and right joints; the image features are mirrored by the
caller's function (silhouette features: lib/data/silhouette.py). The prediction for the mirrored window
is mirrored back (x -> -x in camera space, left and right joints and vertices swapped) and averaged with
the plain one. The two halves see the person from the two sides the training data also show (motions and
cameras are drawn mirror-symmetrically), so their errors partly cancel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lib.errors import UserError
from lib.models.pmce import PMCEOutput
from lib.models.shared_frames import SharedFrames, supports_shared_frames

# (pose2d (B, T, J, 2), img_feat (B, T, D), rows (B, T)) -> the model's output for the target frames
Runner = Callable[[Tensor, Tensor, Tensor], "Tensor | PMCEOutput"]


class MirrorError(UserError, ValueError):
    """The body template is not left-right symmetric enough to pair its vertices."""


@dataclass(frozen=True)
class Mirror:
    """The left-right mirror image of the network's inputs and outputs."""

    joints: Tensor  # (J,) int64: each input-set joint's mirror joint (lib.constants.flip_permutation)
    vertices: VertexMirror | None  # the mesh's mirror map (vertex_mirror); None: a model without mesh
    features: Callable[[Tensor], Tensor]  # (..., D) image features -> those of the mirrored frame

    def inputs(self, pose2d: Tensor, img_feat: Tensor) -> tuple[Tensor, Tensor]:
        """pose2d (B, T, J, 2), img_feat (B, T, D) -> the mirrored frames' inputs."""
        flip_x = pose2d.new_tensor([-1.0, 1.0])
        return pose2d[..., self.joints.to(pose2d.device), :] * flip_x, self.features(img_feat)

    def average(self, out: Tensor | PMCEOutput, mirrored: Tensor | PMCEOutput) -> Tensor | PMCEOutput:
        """The mean of ``out`` and the mirror image of ``mirrored`` (the output for the mirrored input)."""
        if isinstance(out, Tensor):
            return (out + mirror_points(mirrored, self.joints)) / 2
        if self.vertices is None:
            raise ValueError("a mesh output needs the vertex mirror map")
        return PMCEOutput(
            mesh=(out.mesh + self.vertices(mirrored.mesh)) / 2,
            joints=(out.joints + mirror_points(mirrored.joints, self.joints)) / 2,
            pose3d=(out.pose3d + mirror_points(mirrored.pose3d, self.joints)) / 2,
        )


def mirror_points(points: Tensor, partner: Tensor) -> Tensor:
    """(..., N, 3) camera-space points -> their mirror image: x negated, point i taken from partner[i]."""
    return points[..., partner.to(points.device), :] * points.new_tensor([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class VertexMirror:
    """Each vertex's mirror position on the template surface: a point of the triangle ``index`` (V, 3)
    int64 with barycentric ``weights`` (V, 3). A mesh's mirror image takes vertex i from that point of the
    x-negated mesh: exact for a template that is symmetric vertex by vertex, and within the surface's
    curvature for one that is symmetric in shape only (the generated body)."""

    index: Tensor
    weights: Tensor

    def __call__(self, vertices: Tensor) -> Tensor:
        """(..., V, 3) -> the mirror image (..., V, 3)."""
        flipped = vertices * vertices.new_tensor([-1.0, 1.0, 1.0])
        corners = flipped[..., self.index.to(vertices.device), :]  # (..., V, 3 corners, 3)
        return (corners * self.weights.to(vertices)[..., None]).sum(-2)


def vertex_mirror(template: Tensor, faces: Tensor, tolerance_m: float = 0.01, near: int = 8) -> VertexMirror:
    """The ``VertexMirror`` of a (V, 3) rest-pose template with (F, 3) faces, symmetric about x = 0: for
    each vertex, the closest point to its x-negated position on the triangles around its ``near``
    nearest vertices. Raises MirrorError when some vertex's mirror image is farther than ``tolerance_m``
    from the surface."""
    verts = template.double()
    target = verts * verts.new_tensor([-1.0, 1.0, 1.0])  # (V, 3)
    nearest = torch.cdist(target, verts).topk(near, largest=False).indices  # (V, near)
    candidates = _incident_faces(faces, len(verts))[nearest].flatten(1)  # (V, near * K), -1 padded
    tri = verts[faces[candidates.clamp_min(0)]]  # (V, C, 3 corners, 3)
    weights = _clamped_barycentric(target[:, None], tri)  # (V, C, 3)
    dist = ((weights[..., None] * tri).sum(-2) - target[:, None]).norm(dim=-1)
    dist = dist.masked_fill(candidates < 0, float("inf"))
    best_dist, best = dist.min(dim=1)
    worst = float(best_dist.max())
    if worst > tolerance_m:
        raise MirrorError(
            "the body template is not left-right symmetric: a vertex's mirror image is "
            f"{worst * 1000:.1f} mm from the surface (tolerance {tolerance_m * 1000:.0f} mm); "
            "set EVAL.FLIP_TEST / DEMO.FLIP_TEST False"
        )
    rows = torch.arange(len(verts))
    return VertexMirror(faces[candidates[rows, best]].long(), weights[rows, best].float())


def _incident_faces(faces: Tensor, num_vertices: int) -> Tensor:
    """(F, 3) -> (V, K) the faces around each vertex, padded with -1."""
    owner = faces.long().flatten()
    face_ids = torch.arange(len(faces)).repeat_interleave(3)
    order = torch.argsort(owner, stable=True)
    owner, face_ids = owner[order], face_ids[order]
    counts = torch.bincount(owner, minlength=num_vertices)
    slot = torch.arange(len(owner)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    table = torch.full((num_vertices, int(counts.max())), -1, dtype=torch.long)
    table[owner, slot] = face_ids
    return table


def _clamped_barycentric(point: Tensor, tri: Tensor) -> Tensor:
    """Barycentric weights (..., 3) of the projection of ``point`` (..., 3) on the triangles ``tri``
    (..., 3, 3), clamped into the triangle (negative weights cut to 0, the rest renormalised)."""
    a, b, c = tri.unbind(-2)
    e0, e1, rel = b - a, c - a, point - a
    d00, d01, d11 = (e0 * e0).sum(-1), (e0 * e1).sum(-1), (e1 * e1).sum(-1)
    d20, d21 = (rel * e0).sum(-1), (rel * e1).sum(-1)
    denom = (d00 * d11 - d01 * d01).clamp_min(1e-18)
    v = (d11 * d20 - d01 * d21) / denom
    w = (d00 * d21 - d01 * d20) / denom
    weights = torch.stack([1 - v - w, v, w], dim=-1).clamp_min(0)
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)


class FlipAveraged:
    """A Runner: ``run`` on the windows and ``mirrored_run`` on their mirror images, averaged.

    The two runners are separate objects so that each keeps its own per-frame cache
    (lib/models/shared_frames.py): the plain and the mirrored frames never share parts."""

    def __init__(self, run: Runner, mirrored_run: Runner, mirror: Mirror) -> None:
        self.run, self.mirrored_run, self.mirror = run, mirrored_run, mirror

    def __call__(self, pose2d: Tensor, img_feat: Tensor, rows: Tensor) -> Tensor | PMCEOutput:
        out = self.run(pose2d, img_feat, rows)
        mirrored = self.mirrored_run(*self.mirror.inputs(pose2d, img_feat), rows)
        return self.mirror.average(out, mirrored)


def window_runner(model: torch.nn.Module, share_frames: bool, mirror: Mirror | None = None) -> Runner:
    """The Runner of ``model``: with the per-frame parts shared (``share_frames`` and a model that supports
    it; ``rows`` then names each window slot's frame) or window by window, averaged with the mirrored
    windows' prediction when a ``mirror`` is given."""
    if mirror is not None:
        return FlipAveraged(window_runner(model, share_frames), window_runner(model, share_frames), mirror)
    if share_frames and supports_shared_frames(model):
        return SharedFrames(model)
    return lambda pose2d, img_feat, rows: model(pose2d, img_feat)
