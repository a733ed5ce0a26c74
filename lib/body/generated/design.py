"""The generated body's design: SMPL's 24 joints in the rest T-pose and a smooth implicit surface around them.

The surface is the smooth union of ellipsoids and round cones (tapered capsules), each owned by the SMPL
joint whose bone it fleshes out; the owner gives the part used for skinning. Coordinates follow SMPL:
metres, y up, the body faces +z, its left side is +x, feet on y = FLOOR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.constants import SMPL24_JOINTS

FLOOR = -1.18  # sole height; the top of the head is at FLOOR + 1.70
SMOOTH = 0.012  # smooth-union blend radius between body parts (metres)
TORSO_SMOOTH = 0.045  # wider blend among the torso's ellipsoids, for one smooth trunk
_TORSO = ("Pelvis", "Spine1", "Spine2", "Spine3", "L_Collar", "R_Collar")

SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# Left half and midline of the rest pose; right joints mirror the left ones (x -> -x).
_JOINTS_LEFT: dict[str, tuple[float, float, float]] = {
    "Pelvis": (0.0, -0.235, 0.015),
    "L_Hip": (0.083, -0.325, 0.01),
    "Spine1": (0.0, -0.12, 0.0),
    "L_Knee": (0.092, -0.705, 0.01),
    "Spine2": (0.0, 0.0, 0.012),
    "L_Ankle": (0.088, -1.105, -0.035),
    "Spine3": (0.0, 0.07, 0.02),
    "L_Foot": (0.108, -1.16, 0.085),
    "Neck": (0.0, 0.265, -0.01),
    "L_Collar": (0.075, 0.18, 0.0),
    "Head": (0.0, 0.345, 0.025),
    "L_Shoulder": (0.185, 0.225, -0.012),
    "L_Elbow": (0.445, 0.222, -0.025),
    "L_Wrist": (0.695, 0.222, -0.02),
    "L_Hand": (0.775, 0.215, -0.02),
}


def rest_joints() -> np.ndarray:
    """(24, 3) SMPL joints of the rest pose, in SMPL's order."""
    joints = np.zeros((24, 3))
    for i, name in enumerate(SMPL24_JOINTS):
        left = name.replace("R_", "L_")
        joints[i] = _JOINTS_LEFT[left]
        if name.startswith("R_"):
            joints[i, 0] *= -1
    return joints


@dataclass(frozen=True)
class Primitives:
    """Ellipsoids (center, radii) and round cones (a, b, ra, rb), each with the SMPL joint owning it."""

    ell_center: np.ndarray  # (E, 3)
    ell_radii: np.ndarray  # (E, 3)
    ell_part: np.ndarray  # (E,) int
    cone_a: np.ndarray  # (C, 3)
    cone_b: np.ndarray  # (C, 3)
    cone_r: np.ndarray  # (C, 2) radius at a, at b
    cone_part: np.ndarray  # (C,) int


# (owner joint, center, radii) for the midline and the left side; left ones are mirrored.
_ELLIPSOIDS = (
    ("Pelvis", (0.0, -0.25, 0.0), (0.148, 0.1, 0.095)),
    ("Pelvis", (0.065, -0.3, -0.04), (0.068, 0.08, 0.065)),  # buttock
    ("Spine1", (0.0, -0.1, 0.01), (0.12, 0.1, 0.085)),  # abdomen
    ("Spine2", (0.0, 0.01, 0.008), (0.138, 0.1, 0.098)),  # lower chest
    ("Spine3", (0.0, 0.115, 0.0), (0.158, 0.11, 0.104)),  # chest
    ("Spine3", (0.055, 0.115, 0.045), (0.065, 0.055, 0.06)),  # pectoral
    ("L_Collar", (0.1, 0.2, -0.015), (0.09, 0.045, 0.06)),  # trapezius / shoulder top
    ("L_Shoulder", (0.19, 0.215, -0.012), (0.065, 0.06, 0.058)),  # deltoid
    ("L_Elbow", (0.53, 0.222, -0.024), (0.09, 0.038, 0.04)),  # forearm muscles
    ("L_Wrist", (0.735, 0.215, -0.018), (0.05, 0.02, 0.044)),  # palm
    ("L_Hand", (0.815, 0.21, -0.02), (0.055, 0.014, 0.04)),  # fingers, mitten-like
    ("L_Hip", (0.088, -0.43, 0.012), (0.075, 0.13, 0.075)),  # upper thigh
    ("L_Knee", (0.094, -0.82, -0.03), (0.05, 0.11, 0.05)),  # calf
    ("Head", (0.0, 0.415, 0.02), (0.077, 0.105, 0.095)),  # cranium
    ("Head", (0.0, 0.355, 0.045), (0.058, 0.05, 0.068)),  # jaw
    ("Head", (0.0, 0.4, 0.113), (0.014, 0.024, 0.02)),  # nose
    ("Head", (0.075, 0.405, 0.01), (0.014, 0.028, 0.02)),  # ear
)
# (owner joint, a, b, radius at a, radius at b)
_CONES = (
    ("Neck", (0.0, 0.22, -0.012), (0.0, 0.36, 0.01), 0.056, 0.05),
    ("L_Shoulder", (0.19, 0.222, -0.012), (0.445, 0.222, -0.025), 0.05, 0.037),  # upper arm
    ("L_Elbow", (0.445, 0.222, -0.025), (0.695, 0.222, -0.02), 0.036, 0.025),  # forearm
    ("L_Wrist", (0.715, 0.21, 0.025), (0.77, 0.205, 0.062), 0.019, 0.015),  # thumb
    ("L_Hip", (0.085, -0.33, 0.01), (0.092, -0.705, 0.01), 0.08, 0.053),  # thigh
    ("L_Knee", (0.092, -0.705, 0.01), (0.088, -1.105, -0.035), 0.05, 0.034),  # shin
    ("L_Ankle", (0.088, -1.135, -0.06), (0.105, -1.145, 0.085), 0.036, 0.039),  # heel to ball
    ("L_Foot", (0.105, -1.148, 0.085), (0.112, -1.155, 0.15), 0.037, 0.026),  # toes
)


def primitives() -> Primitives:
    """The design's primitives, the left ones mirrored to the right."""
    index = {name: i for i, name in enumerate(SMPL24_JOINTS)}

    def mirrored(items):
        for owner, *geom in items:
            yield index[owner], geom, False
            if geom[0][0] > 0.0:  # off the midline
                yield index[owner.replace("L_", "R_")], geom, True

    def flip(p, mirror):
        return (-p[0], p[1], p[2]) if mirror else p

    ells = [(part, flip(c, m), r) for part, (c, r), m in mirrored(_ELLIPSOIDS)]
    cones = [(part, flip(a, m), flip(b, m), ra, rb) for part, (a, b, ra, rb), m in mirrored(_CONES)]
    return Primitives(
        ell_center=np.array([e[1] for e in ells]),
        ell_radii=np.array([e[2] for e in ells]),
        ell_part=np.array([e[0] for e in ells]),
        cone_a=np.array([c[1] for c in cones]),
        cone_b=np.array([c[2] for c in cones]),
        cone_r=np.array([(c[3], c[4]) for c in cones]),
        cone_part=np.array([c[0] for c in cones]),
    )


def primitive_distances(points: np.ndarray, prims: Primitives) -> tuple[np.ndarray, np.ndarray]:
    """(P, 3) -> approximate signed distances (P, N) to every primitive and the owner of each (N,)."""
    q = (points[:, None, :] - prims.ell_center[None]) / prims.ell_radii[None]  # (P, E, 3)
    k0 = _norm(q)
    k1 = _norm(q / prims.ell_radii[None])
    d_ell = k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)
    ab = prims.cone_b - prims.cone_a  # (C, 3)
    ap = points[:, None, :] - prims.cone_a[None]  # (P, C, 3)
    t = np.clip(np.einsum("pci,ci->pc", ap, ab) / (ab**2).sum(-1)[None], 0.0, 1.0)  # (P, C)
    radius = prims.cone_r[None, :, 0] + t * (prims.cone_r[None, :, 1] - prims.cone_r[None, :, 0])
    d_cone = _norm(ap - t[..., None] * ab[None]) - radius
    return np.concatenate([d_ell, d_cone], axis=1), np.concatenate([prims.ell_part, prims.cone_part])


def _norm(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", x, x))


def signed_distance(points: np.ndarray, prims: Primitives) -> np.ndarray:
    """(P, 3) -> (P,) smooth-union distance (negative inside), soles cut flat at FLOOR."""
    d, part = primitive_distances(points, prims)
    torso = np.isin(part, [SMPL24_JOINTS.index(name) for name in _TORSO])
    trunk = _smooth_min(d[:, torso], TORSO_SMOOTH)
    body = _smooth_min(np.concatenate([trunk[:, None], d[:, ~torso]], axis=1), SMOOTH)
    return np.maximum(body, FLOOR - points[:, 1])


def _smooth_min(d: np.ndarray, k: float) -> np.ndarray:
    """(P, N) -> (P,) log-sum-exp smooth minimum with blend radius ``k``."""
    m = d.min(axis=1)
    return m - k * np.log(np.exp(-(d - m[:, None]) / k).sum(axis=1))
