"""Real human motion: DeepMimic's motion-capture clips retargeted to SMPL pose sequences.

The clips and the humanoid skeleton come from the pybullet wheel (zlib licence; ``scripts/fetch_mocap.py``
puts them in ``data/mocap/deepmimic/``). A clip is JSON ``{"Loop": ..., "Frames": [[44 values], ...]}``;
each frame holds, in pybullet's ``HumanoidPoseInterpolator`` order: the duration to the next frame (s),
the root position (3, metres), the root orientation and then chest, neck, right hip, right knee, right
ankle, right shoulder, right elbow, left hip, left knee, left ankle, left shoulder, left elbow, where
spherical joints are quaternions (w, x, y, z) and knees / elbows one angle (rad) about the URDF joint axis
(z). The DeepMimic frame is y up, x forward (the body's rest facing), z to the body's right; the URDF's
joint origins, times the 0.25 ``globalScaling`` the DeepMimic examples load it with, are the bone offsets.

Pipeline (:func:`real_motion_clips`): :func:`load_clip` -> :func:`resample` to 30 fps (slerp) -> a second
clip by :func:`mirror` -> :func:`retarget` to the SMPL body: per frame a 72-value SMPL pose plus a root
translation, fitted batched over all frames in torch (:func:`retarget_targets` gives the correspondences).

Shapes: N frames, J DeepMimic joints (15 URDF joints + the head end site), K targeted SMPL joints.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lib.errors import MissingFileError

if TYPE_CHECKING:  # torch is imported where the fit needs it: the clip functions run without it
    import torch

    from lib.body.smpl import BodyModel

DEEPMIMIC_SCALE = 0.25  # the globalScaling pybullet's DeepMimic examples load humanoid.urdf with
FPS = 30.0
FRAME_SIZE = 44
# Quaternion (w, x, y, z) and revolute-angle columns of a frame (HumanoidPoseInterpolator.Slerp's order).
QUAT_JOINTS = (
    "root", "chest", "neck", "right_hip", "right_ankle", "right_shoulder", "left_hip", "left_ankle",
    "left_shoulder",
)  # fmt: skip
QUAT_COLUMNS = (4, 8, 12, 16, 21, 25, 30, 35, 39)
ANGLE_JOINTS = ("right_knee", "right_elbow", "left_knee", "left_elbow")
ANGLE_COLUMNS = (20, 29, 34, 43)
HEAD_SITE = "head"  # end site at the neck link's sphere centre (the DeepMimic head)

# DeepMimic (x forward, y up, z right) -> SMPL rest frame (x left, y up, z forward); a proper rotation.
DM_TO_SMPL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


# ----------------------------------------------------------------------------------------------------
# Clips and skeleton (numpy)


@dataclass(frozen=True)
class Clip:
    """One DeepMimic motion, N frames."""

    name: str
    times: np.ndarray  # (N,) seconds from the first frame
    root_pos: np.ndarray  # (N, 3) metres, DeepMimic world (y up)
    quats: np.ndarray  # (N, 9, 4) (w, x, y, z) of QUAT_JOINTS: root orientation (world), others local
    angles: np.ndarray  # (N, 4) radians of ANGLE_JOINTS about their URDF axis
    loop: str = "none"

    @property
    def fps(self) -> float:
        return float(1.0 / np.median(np.diff(self.times)))

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0])

    @property
    def frames(self) -> np.ndarray:
        """(N, 44) the clip in the file's layout (the last frame's duration is 0, as in the files)."""
        out = np.zeros((len(self.times), FRAME_SIZE))
        out[:-1, 0] = np.diff(self.times)
        out[:, 1:4] = self.root_pos
        for k, col in enumerate(QUAT_COLUMNS):
            out[:, col : col + 4] = self.quats[:, k]
        out[:, list(ANGLE_COLUMNS)] = self.angles
        return out


@dataclass(frozen=True)
class Skeleton:
    """The DeepMimic humanoid: joints in URDF order (parents first) plus the head end site."""

    names: tuple[str, ...]
    parents: np.ndarray  # (J,) parent joint index, -1 for the root
    offsets: np.ndarray  # (J, 3) metres, joint origin in the parent joint's frame
    axes: np.ndarray  # (J, 3) revolute joint axes in the joint frame (zeros for other joints)
    foot_box: np.ndarray  # (2, 3) centre and half size (metres) of the foot box in the ankle frame

    def index(self, name: str) -> int:
        return self.names.index(name)


def _xyz(node: ET.Element | None, attr: str = "xyz") -> np.ndarray:
    return np.zeros(3) if node is None else np.array([float(v) for v in node.get(attr, "0 0 0").split()])


def load_skeleton(path: str | os.PathLike, scale: float = DEEPMIMIC_SCALE) -> Skeleton:
    """The humanoid URDF's joint tree, offsets in metres (URDF units times ``scale``)."""
    robot = ET.fromstring(Path(path).read_bytes().replace(b"\0", b""))  # the file ends in a NUL byte
    joints = robot.findall("joint")
    by_child = {j.find("child").get("link"): j.get("name") for j in joints}
    names = [j.get("name") for j in joints]
    parents = [names.index(by_child[j.find("parent").get("link")]) if j.find("parent").get("link")
               in by_child else -1 for j in joints]  # fmt: skip
    offsets = [_xyz(j.find("origin")) * scale for j in joints]
    axes = [_xyz(j.find("axis")) if j.get("type") == "revolute" else np.zeros(3) for j in joints]
    links = {link.get("name"): link for link in robot.findall("link")}
    # The head is the neck link's collision sphere; the foot box is the ankle link's collision box.
    offsets.append(_xyz(links["neck"].find("collision/origin")) * scale)
    names.append(HEAD_SITE)
    parents.append(names.index("neck"))
    axes.append(np.zeros(3))
    foot = links["right_ankle"].find("collision")
    box = [_xyz(foot.find("origin")), _xyz(foot.find("geometry/box"), "size") / 2]
    return Skeleton(
        names=tuple(names),
        parents=np.array(parents),
        offsets=np.stack(offsets),
        axes=np.stack(axes),
        foot_box=np.stack(box) * scale,
    )


def load_clip(path: str | os.PathLike) -> Clip:
    """A DeepMimic ``humanoid3d_*.txt`` clip; frame times are the running sum of the frame durations."""
    data = json.loads(Path(path).read_bytes().replace(b"\0", b""))
    frames = np.asarray(data["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != FRAME_SIZE:
        raise ValueError(f"{path}: frames have shape {frames.shape}, expected (N, {FRAME_SIZE})")
    name = Path(path).stem.removeprefix("humanoid3d_")
    return Clip(
        name=name,
        times=np.concatenate([[0.0], np.cumsum(frames[:-1, 0])]),
        root_pos=frames[:, 1:4],
        quats=np.stack([frames[:, c : c + 4] for c in QUAT_COLUMNS], axis=1),
        angles=frames[:, list(ANGLE_COLUMNS)],
        loop=str(data.get("Loop", "none")),
    )


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z), normalised here -> (..., 3, 3) rotation matrices."""
    w, x, y, z = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Unit axis (3,), angles (...) -> (..., 3, 3) rotations about the axis (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def local_rotations(clip: Clip, skeleton: Skeleton) -> np.ndarray:
    """(N, J, 3, 3) every joint's rotation in its parent's frame (the root's: in the world)."""
    out = np.broadcast_to(np.eye(3), (len(clip.times), len(skeleton.names), 3, 3)).copy()
    for k, name in enumerate(QUAT_JOINTS):
        out[:, skeleton.index(name)] = quat_to_matrix(clip.quats[:, k])
    for k, name in enumerate(ANGLE_JOINTS):
        j = skeleton.index(name)
        out[:, j] = axis_angle_matrix(skeleton.axes[j], clip.angles[:, k])
    return out


def global_frames(clip: Clip, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions (N, J, 3) metres and joint frames (N, J, 3, 3)."""
    local = local_rotations(clip, skeleton)
    rot, pos = np.empty_like(local), np.empty((*local.shape[:2], 3))
    for j, parent in enumerate(skeleton.parents):
        if parent < 0:
            rot[:, j], pos[:, j] = local[:, j], clip.root_pos
        else:
            pos[:, j] = pos[:, parent] + rot[:, parent] @ skeleton.offsets[j]
            rot[:, j] = rot[:, parent] @ local[:, j]
    return pos, rot


def forward_kinematics(clip: Clip, skeleton: Skeleton) -> np.ndarray:
    """(N, J, 3) world joint positions in metres (DeepMimic frame, y up), ``skeleton.names`` order."""
    return global_frames(clip, skeleton)[0]


def lowest_sole(clip: Clip, skeleton: Skeleton) -> np.ndarray:
    """(N,) height (metres) of the lowest corner of the two foot boxes: DeepMimic's ground contact."""
    pos, rot = global_frames(clip, skeleton)
    centre, half = skeleton.foot_box
    signs = np.stack(np.meshgrid([-1, 1], [-1, 1], [-1, 1]), -1).reshape(8, 3)
    corners = centre + signs * half  # (8, 3) in the ankle frame
    ankles = [skeleton.index("right_ankle"), skeleton.index("left_ankle")]
    heights = pos[:, ankles, 1][..., None] + np.einsum("nak,ck->nac", rot[:, ankles, 1], corners)
    return heights.min(axis=(1, 2))


# ----------------------------------------------------------------------------------------------------
# Resampling and mirroring (numpy)


def slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions, weights (...) in [0, 1] -> (..., 4), along the shorter arc."""
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[..., None] < 0, -q1, q1)  # q and -q are one rotation: take the nearer one
    theta = np.arccos(np.clip(np.abs(dot), -1.0, 1.0))[..., None]
    w = w[..., None]
    near = theta < 1e-6  # nearly equal: linear interpolation is exact enough and avoids 0 / 0
    sin = np.where(near, 1.0, np.sin(theta))
    a = np.where(near, 1 - w, np.sin((1 - w) * theta) / sin)
    b = np.where(near, w, np.sin(w * theta) / sin)
    out = a * q0 + b * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def resample(clip: Clip, fps: float = FPS) -> Clip:
    """The clip at ``fps`` over the same duration to within half a frame (the first frame kept, the last
    one held if the new grid ends past it): root positions and angles lerped, quaternions slerped."""
    times = np.arange(round(clip.duration * fps) + 1) / fps
    idx = np.clip(np.searchsorted(clip.times, times, side="right") - 1, 0, len(clip.times) - 2)
    span = clip.times[idx + 1] - clip.times[idx]
    w = np.where(span > 0, (times - clip.times[idx]) / np.where(span > 0, span, 1.0), 0.0).clip(0, 1)
    lerp = lambda a: a[idx] + w.reshape(-1, *[1] * (a.ndim - 1)) * (a[idx + 1] - a[idx])  # noqa: E731
    quats = clip.quats / np.linalg.norm(clip.quats, axis=-1, keepdims=True)
    return replace(
        clip,
        times=times,
        root_pos=lerp(clip.root_pos),
        quats=slerp(quats[idx], quats[idx + 1], w[:, None]),
        angles=lerp(clip.angles),
    )


def _swap_sides(names: Sequence[str]) -> list[int]:
    """Index permutation that swaps each right_* entry with its left_* twin."""
    swap = {"right_": "left_", "left_": "right_"}
    out = []
    for name in names:
        side = next((s for s in swap if name.startswith(s)), None)
        out.append(names.index(swap[side] + name[len(side) :]) if side else names.index(name))
    return out


def mirror(clip: Clip) -> Clip:
    """The clip reflected across the body's sagittal plane: z (DeepMimic's right; SMPL's -x) negated and
    left / right swapped. Reflecting z maps a rotation R to M R M, M = diag(1, 1, -1): quaternion
    (w, x, y, z) -> (w, -x, -y, z); knees and elbows turn about z, so their angles are unchanged.
    Mirroring twice gives the clip back."""
    sign = np.array([1.0, -1.0, -1.0, 1.0])
    name = clip.name.removesuffix("_mirror") if clip.name.endswith("_mirror") else clip.name + "_mirror"
    return replace(
        clip,
        name=name,
        root_pos=clip.root_pos * np.array([1.0, 1.0, -1.0]),
        quats=(clip.quats * sign)[:, _swap_sides(QUAT_JOINTS)],
        angles=clip.angles[:, _swap_sides(ANGLE_JOINTS)],
    )


def mirror_joint_order(skeleton: Skeleton) -> list[int]:
    """Permutation of ``skeleton.names`` that swaps left and right joints (for checking :func:`mirror`)."""
    return _swap_sides(skeleton.names)


# ----------------------------------------------------------------------------------------------------
# Retargeting to SMPL (targets and the initial pose in numpy, the fit in torch)

NUM_SMPL_JOINTS = 24
# SMPL joint indices (kinematic tree order; 22 and 23, the hands, are never named here).
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3, L_FOOT, R_FOOT = range(12)
NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = range(12, 22)
# Limb bones: (SMPL parent, SMPL child, DeepMimic parent, DeepMimic child); SMPL's L is DeepMimic's left.
LIMBS = tuple(
    (a, b, f"{side}_{da}", f"{side}_{db}")
    for side, (hip, knee, ankle, shoulder, elbow, wrist) in (
        ("left", (L_HIP, L_KNEE, L_ANKLE, L_SHOULDER, L_ELBOW, L_WRIST)),
        ("right", (R_HIP, R_KNEE, R_ANKLE, R_SHOULDER, R_ELBOW, R_WRIST)),
    )
    for a, b, da, db in (
        (hip, knee, "hip", "knee"),
        (knee, ankle, "knee", "ankle"),
        (shoulder, elbow, "shoulder", "elbow"),
        (elbow, wrist, "elbow", "wrist"),
    )
)
# SMPL joints the fit targets (the rest follow the pose prior): 18 of 24.
TARGETED = (PELVIS, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE, L_FOOT, R_FOOT, SPINE3, NECK, HEAD,
            L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST)  # fmt: skip


@dataclass(frozen=True)
class SmplMotion:
    """A clip as SMPL parameters, N frames at ``fps``, in SMPL's y-up world (feet on y = 0)."""

    name: str
    fps: float
    pose: np.ndarray  # (N, 72) axis-angle, global orientation first
    transl: np.ndarray  # (N, 3) metres
    betas: np.ndarray  # (10,) zeros: the mean body
    fit_error_mm: float  # mean distance of SMPL's regressed joints to the retargeted joints (TARGETED)


def to_smpl_frame(pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeepMimic positions (..., 3) and frames (..., 3, 3) expressed in SMPL's axes (x left, z forward)."""
    return pos @ DM_TO_SMPL.T, DM_TO_SMPL @ rot @ DM_TO_SMPL.T


def leg_scale(skeleton: Skeleton, rest: np.ndarray) -> float:
    """SMPL's leg length over DeepMimic's (thigh + shank): scales the root trajectory to SMPL's stride."""
    smpl = np.linalg.norm(rest[L_KNEE] - rest[L_HIP]) + np.linalg.norm(rest[L_ANKLE] - rest[L_KNEE])
    dm = sum(np.linalg.norm(skeleton.offsets[skeleton.index(n)]) for n in ("left_knee", "left_ankle"))
    return float(smpl / dm)


def _chest_pivot(skeleton: Skeleton, rest: np.ndarray) -> np.ndarray:
    """(3,) the point of SMPL's rest trunk where DeepMimic's chest joint sits: the same fraction of the
    pelvis -> neck distance (DeepMimic bends its trunk at one joint; SMPL over three)."""
    chest, neck = (np.linalg.norm(skeleton.offsets[skeleton.index(n)]) for n in ("chest", "neck"))
    return rest[PELVIS] + chest / (chest + neck) * (rest[NECK] - rest[PELVIS])


def retarget_targets(pos: np.ndarray, rot: np.ndarray, skeleton: Skeleton, rest: np.ndarray) -> np.ndarray:
    """Where SMPL's joints should be, pelvis-relative: (N, 24, 3) metres (rows outside TARGETED zero).

    ``pos`` (N, J, 3) and ``rot`` (N, J, 3, 3) are DeepMimic's world joints and frames in SMPL's axes;
    ``rest`` (24, 3) SMPL's rest joints. The skeletons differ in proportions and in where the hips, trunk
    and shoulders sit (SMPL's hips are 9 cm below its pelvis joint, DeepMimic's level with the root), so
    the targets keep SMPL's dimensions and take DeepMimic's *directions*:

    * limbs (hip-knee-ankle, shoulder-elbow-wrist): DeepMimic's bone direction times SMPL's bone length,
      chained from the parent's target;
    * rigid segments: SMPL's rest offsets turned by the DeepMimic segment's frame - hips by the root,
      SMPL's spine3 / neck / shoulders by the chest (about the chest pivot), head by the neck, the foot
      joint (ball of the foot) by the ankle (DeepMimic's foot box).
    """
    out = np.zeros((len(pos), NUM_SMPL_JOINTS, 3))
    frame = lambda name: rot[:, skeleton.index(name)]  # noqa: E731
    pivot = _chest_pivot(skeleton, rest)
    centre = frame("root") @ (pivot - rest[PELVIS])
    for j in (SPINE3, NECK, L_SHOULDER, R_SHOULDER):
        out[:, j] = centre + frame("chest") @ (rest[j] - pivot)
    out[:, HEAD] = out[:, NECK] + frame("neck") @ (rest[HEAD] - rest[NECK])
    for hip in (L_HIP, R_HIP):
        out[:, hip] = frame("root") @ (rest[hip] - rest[PELVIS])
    for a, b, da, db in LIMBS:  # parents come first in LIMBS
        bone = pos[:, skeleton.index(db)] - pos[:, skeleton.index(da)]
        length = np.linalg.norm(rest[b] - rest[a])
        out[:, b] = out[:, a] + length * bone / np.linalg.norm(bone, axis=-1, keepdims=True)
    for ankle, foot, side in ((L_ANKLE, L_FOOT, "left"), (R_ANKLE, R_FOOT, "right")):
        out[:, foot] = out[:, ankle] + frame(f"{side}_ankle") @ (rest[foot] - rest[ankle])
    return out


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) the smallest rotation taking direction ``a`` to direction ``b`` (not opposite)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def _fraction(rot: np.ndarray, t: float) -> np.ndarray:
    """(..., 3, 3) -> the rotation by ``t`` times the angle about the same axis."""
    from scipy.spatial.transform import Rotation

    shape = rot.shape
    vec = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_rotvec()
    return Rotation.from_rotvec(vec * t).as_matrix().reshape(shape)


def initial_rotations(
    rot: np.ndarray, skeleton: Skeleton, rest: np.ndarray, parents: Sequence[int]
) -> np.ndarray:
    """(N, 24, 3, 3) SMPL local rotations that put SMPL's segments in DeepMimic's frames: the start of
    the fit. The trunk's bend is spread evenly over spine1-3 and the neck's over neck and head; limbs turn
    their SMPL rest direction onto DeepMimic's rest direction (arms: T-pose -> hanging) and then follow
    DeepMimic's frame, so twist carries over; collars, wrists, hands and toes stay at rest."""
    frame = lambda name: rot[:, skeleton.index(name)]  # noqa: E731
    world = np.broadcast_to(np.eye(3), (len(rot), NUM_SMPL_JOINTS, 3, 3)).copy()
    world[:, PELVIS] = frame("root")
    third = _fraction(np.swapaxes(frame("root"), -1, -2) @ frame("chest"), 1 / 3)
    for j in (SPINE1, SPINE2, SPINE3):
        world[:, j] = world[:, parents[j]] @ third
    half = _fraction(np.swapaxes(frame("chest"), -1, -2) @ frame("neck"), 1 / 2)
    for j in (NECK, HEAD):
        world[:, j] = world[:, parents[j]] @ half
    for a, b, da, db in LIMBS:
        dm_rest = DM_TO_SMPL @ skeleton.offsets[skeleton.index(db)]
        world[:, a] = frame(da) @ _align(rest[b] - rest[a], dm_rest)
    for ankle, side in ((L_ANKLE, "left"), (R_ANKLE, "right")):
        world[:, ankle] = frame(f"{side}_ankle")  # both rest feet point forward, flat
    driven = {SPINE1, SPINE2, SPINE3, NECK, HEAD, L_ANKLE, R_ANKLE} | {a for a, *_ in LIMBS}
    for j in sorted(set(range(1, NUM_SMPL_JOINTS)) - driven):  # parents first: SMPL's order
        world[:, j] = world[:, parents[j]]  # at rest relative to the parent
    local = np.swapaxes(world[:, list(parents[1:])], -1, -2) @ world[:, 1:]
    return np.concatenate([world[:, :1], local], axis=1)


@dataclass(frozen=True)
class FitWeights:
    """Loss weights of the retarget fit (joint distances in metres, rotations in radians)."""

    joints: float = 1.0  # sum over TARGETED of squared distances to the targets (m^2)
    prior: float = 1e-3  # squared axis-angle away from the initial pose, per joint
    acceleration: float = 0.1  # squared joint acceleration (m per frame^2), all 24 joints
    rotation_speed: float = 1e-3  # squared change of local rotation matrices between frames


def smpl_rig(body: BodyModel, gender: str = "neutral") -> tuple[np.ndarray, list[int]]:
    """SMPL's rest joints (24, 3) metres for zero betas (the parents' frames at rest are the world's) and
    the kinematic tree's parents (24,), -1 for the pelvis."""
    layer = body.layers[gender]
    rest = (layer.J_regressor @ layer.v_template).detach().cpu().double().numpy()
    return rest, [int(p) for p in layer.parents.tolist()]


def smpl_kinematics(rot: torch.Tensor, rest: torch.Tensor, parents: Sequence[int]) -> torch.Tensor:
    """Local rotations (F, 24, 3, 3), rest joints (24, 3) -> joints (F, 24, 3), pelvis at the origin."""
    import torch

    offsets = rest - rest[torch.as_tensor([max(p, 0) for p in parents])]
    frames, joints = [rot[:, 0]], [rot.new_zeros(rot.shape[0], 3)]
    for j in range(1, len(parents)):
        p = parents[j]
        joints.append(joints[p] + frames[p] @ offsets[j])
        frames.append(frames[p] @ rot[:, j])
    return torch.stack(joints, 1)


def _clip_neighbours(lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (of all clips' frames concatenated) with a next frame, and with both neighbours,
    in the same clip: temporal terms never straddle two clips."""
    starts = np.cumsum([0, *lengths[:-1]])
    with_next = np.concatenate([s + np.arange(n - 1) for s, n in zip(starts, lengths, strict=True)])
    inner = np.concatenate([s + np.arange(1, n - 1) for s, n in zip(starts, lengths, strict=True)])
    return with_next, inner


def fit_rotations(
    init: torch.Tensor,
    targets: torch.Tensor,
    rest: torch.Tensor,
    parents: Sequence[int],
    lengths: Sequence[int],
    steps: int,
    weights: FitWeights = FitWeights(),
    lr: float = 0.02,
) -> torch.Tensor:
    """Adam on per-frame corrections ``delta`` (F, 24, 3): rotations ``init @ exp(delta)`` (F, 24, 3, 3)
    whose joints match ``targets`` (F, 24, 3) pelvis-relative; returns the rotations (no grad)."""
    import torch

    from lib.body.rotations import rodrigues

    with_next, inner = (torch.as_tensor(i) for i in _clip_neighbours(lengths))
    mask = torch.zeros(NUM_SMPL_JOINTS, 1)
    mask[list(TARGETED)] = 1.0
    delta = torch.zeros(init.shape[:-1], dtype=init.dtype, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    for _ in range(steps):
        rot = init @ rodrigues(delta)
        joints = smpl_kinematics(rot, rest, parents)
        acc = joints[inner + 1] - 2 * joints[inner] + joints[inner - 1]
        loss = (
            weights.joints * ((joints - targets) * mask).square().sum((1, 2)).mean()
            + weights.prior * delta.square().sum((1, 2)).mean()
            + weights.acceleration * acc.square().sum((1, 2)).mean()
            + weights.rotation_speed * (rot[with_next + 1] - rot[with_next]).square().sum((1, 2, 3)).mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return init @ rodrigues(delta)


def _foot_vertices(body: BodyModel, gender: str) -> torch.Tensor:
    """Indices of the vertices skinned mostly to the ankles and feet (the soles)."""
    import torch

    dominant = body.layers[gender].lbs_weights.argmax(1).cpu()
    return torch.isin(dominant, torch.tensor([L_ANKLE, R_ANKLE, L_FOOT, R_FOOT])).nonzero()[:, 0]


def _posed(
    body: BodyModel, pose: torch.Tensor, transl: torch.Tensor, gender: str, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices (F, V, 3) and regressed SMPL joints (F, 24, 3) on the CPU, posed on the body's device in
    chunks of frames to bound memory."""
    import torch

    verts, joints = [], []
    device = body.faces.device
    with torch.no_grad():
        for i in range(0, len(pose), chunk):
            p, t = pose[i : i + chunk].to(device), transl[i : i + chunk].to(device)
            v = body.vertices(p, p.new_zeros(len(p), 10), t, gender)
            verts.append(v.cpu())
            joints.append(body.joints(v, "smpl24").cpu())
    return torch.cat(verts), torch.cat(joints)


def _finish(
    clip: Clip,
    skeleton: Skeleton,
    body: BodyModel,
    pose: torch.Tensor,
    pelvis: torch.Tensor,
    targets: torch.Tensor,
    gender: str,
) -> SmplMotion:
    """SMPL parameters of one fitted clip: translation from the pelvis path (F, 3), lifted so that SMPL's
    lowest sole vertex is on average as high as DeepMimic's lowest foot-box corner (y = 0 on average in
    stance; in the air, or crawling on the knees, as high as DeepMimic's feet); the fit error (mm) of the
    regressed joints against ``targets`` (F, 24, 3) pelvis-relative."""
    import torch

    rest = torch.as_tensor(smpl_rig(body, gender)[0], dtype=pose.dtype)
    transl = pelvis - rest[PELVIS]  # SMPL turns the body about its rest pelvis joint
    verts, joints = _posed(body, pose, transl, gender)
    err = (joints[:, TARGETED] - (targets[:, TARGETED] + pelvis[:, None])).norm(dim=-1).mean()
    scale = leg_scale(skeleton, rest.double().numpy())
    feet = verts[:, _foot_vertices(body, gender), 1].amin(1).double().numpy()
    # DeepMimic's foot boxes sink a few cm into the floor in some clips (punch: all along): count as 0.
    lift = float((scale * lowest_sole(clip, skeleton).clip(0, None) - feet).mean())
    transl[:, 1] += lift
    return SmplMotion(
        name=clip.name,
        fps=round(clip.fps, 6),  # the resampling rate, without float noise from the frame times
        pose=pose.numpy().astype(np.float32),
        transl=transl.numpy().astype(np.float32),
        betas=np.zeros(10, dtype=np.float32),
        fit_error_mm=float(err) * 1000,
    )


def retarget(
    clips: Sequence[Clip], skeleton: Skeleton, body: BodyModel, steps: int = 200, gender: str = "neutral"
) -> list[SmplMotion]:
    """Fit SMPL (zero betas) to every clip, all frames in one batch; see :func:`retarget_targets` for the
    correspondences. Per frame: 72 pose values (from :func:`initial_rotations`, refined by
    :func:`fit_rotations` with a small prior and temporal smoothness) and a translation (the DeepMimic root
    path scaled by :func:`leg_scale`). Clips should share one frame rate (see :func:`resample`)."""
    import torch

    from lib.body.rotations import matrix_to_axis_angle

    rest, parents = smpl_rig(body, gender)
    scale = leg_scale(skeleton, rest)
    frames = [to_smpl_frame(*global_frames(c, skeleton)) for c in clips]
    targets = np.concatenate([retarget_targets(p, r, skeleton, rest) for p, r in frames])
    init = np.concatenate([initial_rotations(r, skeleton, rest, parents) for _, r in frames])
    as_torch = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    lengths = [len(c.times) for c in clips]
    rot = fit_rotations(as_torch(init), as_torch(targets), as_torch(rest), parents, lengths, steps)
    pose = matrix_to_axis_angle(rot).flatten(1)
    out, start = [], 0
    for clip, (pos, _), n in zip(clips, frames, lengths, strict=True):
        part = slice(start, start + n)
        pelvis = as_torch(scale * pos[:, skeleton.index("root")])
        out.append(_finish(clip, skeleton, body, pose[part], pelvis, as_torch(targets[part]), gender))
        start += n
    return out


def clip_paths(clip_dir: str | os.PathLike) -> list[Path]:
    """The ``humanoid3d_*.txt`` clips in ``clip_dir``, sorted by name."""
    return sorted(Path(clip_dir).glob("humanoid3d_*.txt"))


def real_motion_clips(
    clip_dir: str | os.PathLike, body: BodyModel, steps: int = 200, gender: str = "neutral"
) -> list[SmplMotion]:
    """Every DeepMimic clip in ``clip_dir`` (with ``humanoid.urdf``) and its mirror image, resampled to
    30 fps and retargeted to SMPL: 30 motions for the 15 pybullet clips, originals then mirrors."""
    skeleton = load_skeleton(Path(clip_dir) / "humanoid.urdf")
    clips = [resample(load_clip(p)) for p in clip_paths(clip_dir)]
    if not clips:
        raise MissingFileError(f"no humanoid3d_*.txt clips in {clip_dir} (run scripts/fetch_mocap.py)")
    return retarget([*clips, *(mirror(c) for c in clips)], skeleton, body, steps, gender)
