"""The generated body's rig: skinning weights, joint regressors and shape directions.

Shapes: V vertices, J joints, K target points.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import lsq_linear

from lib.body.generated.design import SMPL_PARENTS, Primitives, primitive_distances, rest_joints
from lib.body.geometry import adjacency, vertex_normals
from lib.constants import COCO17_JOINTS, H36M17_JOINTS, SMPL24_JOINTS

SKIN_SOFTNESS = 0.012  # metres: how far a primitive's influence reaches past its surface
SKIN_SMOOTHING = 12  # Laplacian smoothing steps of the weights over the mesh


def skinning_weights(vertices: np.ndarray, faces: np.ndarray, prims: Primitives) -> np.ndarray:
    """(V, 24) LBS weights: soft ownership by the primitives near each vertex, smoothed over the mesh."""
    d, part = primitive_distances(vertices, prims)
    soft = np.exp(-(d - d.min(axis=1, keepdims=True)) / SKIN_SOFTNESS)  # (V, N)
    weights = np.zeros((len(vertices), len(SMPL24_JOINTS)))
    np.add.at(weights.T, part, soft.T)
    a = adjacency(faces, len(vertices)) + sp.identity(len(vertices), format="csr")
    mean = sp.csr_matrix(a.multiply(1.0 / np.asarray(a.sum(axis=1))))
    weights /= weights.sum(axis=1, keepdims=True)
    for _ in range(SKIN_SMOOTHING):
        weights = mean @ weights
    weights[weights < 1e-4] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


def fit_regressor(vertices: np.ndarray, targets: np.ndarray, tolerance: float = 5e-4) -> np.ndarray:
    """(K, V) non-negative rows summing to 1 that reproduce each target from nearby vertices.

    For each target the neighbourhood grows until a convex combination of its vertices hits the target
    within ``tolerance`` metres; among those, weights close to uniform are preferred.
    """
    out = np.zeros((len(targets), len(vertices)))
    for k, target in enumerate(targets):
        dist = np.linalg.norm(vertices - target, axis=1)
        radius = 1.3 * dist.min() + 0.01
        while True:
            near = np.flatnonzero(dist < radius)
            weights = _convex_weights(vertices[near], target)
            if np.linalg.norm(weights @ vertices[near] - target) < tolerance:
                break
            radius *= 1.25
        out[k, near] = weights
    return out


def _convex_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Weights in [0, 1] that sum to 1 with points.T @ w ~ target, near-uniform (bounded least squares)."""
    n = len(points)
    exact = 100.0
    rows = np.vstack([exact * points.T, exact * np.ones((1, n)), 0.05 * np.eye(n)])
    rhs = np.concatenate([exact * target, [exact], 0.05 * np.full(n, 1.0 / n)])
    w = lsq_linear(rows, rhs, bounds=(0.0, 1.0), method="bvls").x
    return w / w.sum()


# ---------------------------------------------------------------------------------------------------
# Keypoints of the other joint sets, placed on the designed skeleton
# ---------------------------------------------------------------------------------------------------
def h36m_targets() -> np.ndarray:
    """(17, 3) Human3.6M joints of the rest body (H36M pelvis = centre of the hips, head = near the crown)."""
    j = dict(zip(SMPL24_JOINTS, rest_joints(), strict=True))
    points = {name: j[name] for name in H36M17_JOINTS if name in j}
    points["Pelvis"] = 0.5 * (j["L_Hip"] + j["R_Hip"])
    points["Torso"] = 0.5 * (points["Pelvis"] + j["Neck"])
    points["Neck"] = np.array([0.0, 0.225, 0.0])  # thorax, between the shoulders
    points["Nose"] = np.array([0.0, 0.38, 0.06])
    points["Head"] = np.array([0.0, 0.47, 0.02])
    return np.stack([points[name] for name in H36M17_JOINTS])


def coco_targets(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(17, 3) COCO keypoints: face points just under the skin, body points at the joints."""
    j = dict(zip(SMPL24_JOINTS, rest_joints(), strict=True))
    normals = vertex_normals(vertices, faces)
    face_guess = {
        "Nose": (0.0, 0.40, 0.14),
        "L_Eye": (0.032, 0.43, 0.10),
        "R_Eye": (-0.032, 0.43, 0.10),
        "L_Ear": (0.09, 0.405, 0.0),
        "R_Ear": (-0.09, 0.405, 0.0),
    }
    points = {}
    for name, guess in face_guess.items():
        nearest = int(np.argmin(np.linalg.norm(vertices - np.array(guess), axis=1)))
        points[name] = vertices[nearest] - 0.004 * normals[nearest]
    for name in COCO17_JOINTS[5:]:
        points[name] = j[name]
    for side, sign in (("L", 1.0), ("R", -1.0)):
        points[f"{side}_Hip"] = j[f"{side}_Hip"] + np.array([sign * 0.015, -0.01, 0.0])  # COCO hips sit wider
        points[f"{side}_Shoulder"] = j[f"{side}_Shoulder"] + np.array([sign * 0.01, 0.01, 0.0])
    return np.stack([points[name] for name in COCO17_JOINTS])


# ---------------------------------------------------------------------------------------------------
# Shape directions
# ---------------------------------------------------------------------------------------------------
SHAPE_NAMES = (
    "height",
    "weight",
    "shoulder width",
    "leg length",
    "arm length",
    "torso length",
    "hip width",
    "head size",
    "belly",
    "chest",
)


def shape_directions(vertices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(V, 3, 10) displacement per unit of each beta (see ``SHAPE_NAMES``), all linear in the betas.

    Each is sized like one standard deviation of SMPL's shape space (a few centimetres).
    """
    j = rest_joints()
    idx = {name: i for i, name in enumerate(SMPL24_JOINTS)}
    x, y, z = vertices.T
    side = np.sign(x)

    def part(*names: str) -> np.ndarray:
        return weights[:, [idx[n] for n in names]].sum(axis=1)

    def ramp(value: np.ndarray, start: float, end: float) -> np.ndarray:
        return np.clip((value - start) / (end - start), 0.0, 1.0)

    arms = part(*(f"{s}_{n}" for s in "LR" for n in ("Shoulder", "Elbow", "Wrist", "Hand")))
    head = part("Head")
    hip_y, ankle_y = j[idx["L_Hip"], 1], j[idx["L_Ankle"], 1]
    pelvis_y, neck_y = j[idx["Pelvis"], 1], j[idx["Neck"], 1]
    shoulder_x, wrist_x = j[idx["L_Shoulder"], 0], j[idx["L_Wrist"], 0]
    dirs = np.zeros((len(vertices), 3, 10))
    dirs[:, :, 0] = vertices * np.array([0.015, 0.04, 0.015])  # 6.8 cm taller per unit
    dirs[:, :, 1] = 0.15 * _radial(vertices, weights, j) * (1.0 - 0.7 * head - 0.5 * arms)[:, None]
    upper = ramp(y, 0.05, 0.2)
    dirs[:, 0, 2] = 0.15 * x * upper * (1.0 - arms) + 0.022 * side * arms  # 4.4 cm wider shoulders
    dirs[:, 1, 3] = -0.045 * ramp(hip_y - y, 0.0, hip_y - ankle_y)  # 4.5 cm longer legs
    dirs[:, 0, 4] = 0.035 * side * arms * ramp(np.abs(x), shoulder_x, wrist_x)  # 3.5 cm longer arms
    dirs[:, 1, 5] = 0.035 * ramp(y, pelvis_y, neck_y)  # 3.5 cm longer torso
    dirs[:, 0, 6] = 0.15 * x * np.exp(-(((y - hip_y) / 0.12) ** 2)) * (np.abs(x) < 0.25)  # hips
    head_center = np.array([0.0, 0.41, 0.02])
    dirs[:, :, 7] = 0.12 * (vertices - head_center) * head[:, None]  # 12 % larger head
    front = np.clip(z / 0.1, 0.0, 1.0)
    dirs[:, 2, 8] = 0.03 * front * np.exp(-(((y + 0.1) / 0.1) ** 2) - (x / 0.12) ** 2)  # belly
    dirs[:, 2, 9] = 0.02 * front * np.exp(-(((y - 0.11) / 0.07) ** 2) - (x / 0.15) ** 2)  # chest
    return dirs


def _radial(vertices: np.ndarray, weights: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(V, 3) offset of each vertex from its bones (weight-blended, bone = joint to its children)."""
    out = np.zeros_like(vertices)
    for k in range(len(SMPL_PARENTS)):
        a = joints[k]
        children = [c for c, p in enumerate(SMPL_PARENTS) if p == k]
        b = joints[children].mean(axis=0) if children else a
        ab = b - a
        t = np.clip((vertices - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
        out += weights[:, k : k + 1] * (vertices - (a + t[:, None] * ab))
    return out
