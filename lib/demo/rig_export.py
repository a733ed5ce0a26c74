"""Rigged exports of one track for animators: a skinned glTF binary (``.glb``) and a ``.bvh`` skeleton.

Both carry SMPL's 24-joint skeleton (:data:`SMPL_JOINT_NAMES`) in the y-up convention of glTF, Blender's
importers and BVH: x right, y up, z towards the viewer. The demo's SMPL fits live in camera axes (x right,
y down, z forward); :func:`rig_from_smpl` turns them 180 degrees about x (:data:`CAMERA_TO_YUP`), which
changes only the root rotation and translation: SMPL's rest body is already y-up.

* :func:`save_skinned_glb`: the person's shaped mesh in rest pose, bound to the skeleton (one node per
  joint, inverse bind matrices, JOINTS_n / WEIGHTS_n), and one animation: a rotation channel per joint
  (quaternions, xyzw) and a translation channel on the root, keyed at the frame times (LINEAR).
* :func:`save_bvh`: the same skeleton and motion; offsets and positions in centimetres, Euler angles in
  degrees, ZXY order.

The skinning is plain linear blend skinning, as glTF and BVH-driven rigs define it. SMPL's pose-corrective
blend shapes are NOT in the skinned export: they are zero for the project's generated body (the export
then reproduces SMPL's vertices to float32 precision, see the tests) and small for the real SMPL model
(typically millimetres, more at strongly bent joints).

Skinning influences: the generated body has up to 8 non-zero weights per vertex; keeping only the 4
largest (renormalised) moved vertices by up to 13-14 mm (random poses, 0.3 rad per body angle), so
:func:`save_skinned_glb` writes as many sets of 4 as the weights need: JOINTS_0/1 and WEIGHTS_0/1 for the
generated body, max error then 0.0005 mm. glTF allows several sets; Blender's importer reads them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from lib.body.smpl import BodyModel
from lib.demo.export import _ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER, _GltfBuilder
from lib.io import write_atomic, write_text_atomic

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)  # fmt: skip
NUM_JOINTS = len(SMPL_JOINT_NAMES)
# Camera axes (x right, y down, z forward) -> y-up (x right, y up, z towards the viewer): 180 deg about x.
CAMERA_TO_YUP = np.diag([1.0, -1.0, -1.0])
BVH_EULER_ORDER = "ZXY"  # scipy's intrinsic sequence = BVH channel order: R = Rz Rx Ry
BVH_UNIT = 100.0  # centimetres per metre
_WEIGHT_EPS = 1e-5  # skinning weights below this are dropped (< 0.02 mm at a 2 m lever)


@dataclass(frozen=True)
class RigAnimation:
    """What a rigged export of one track needs; y-up axes (x right, y up, z towards the viewer), metres.

    Joint k's posed transform is ``parent's transform @ [R_k | joints[k] - joints[parent]]``, the root's
    is ``[R_0 | root_translation]``; a vertex is the weighted sum of ``transform_k @ (x - joints[k])``.
    """

    vertices: np.ndarray  # (V, 3) rest pose of this person's shape (betas applied, no pose)
    faces: np.ndarray  # (F, 3) 0-based vertex indices
    joints: np.ndarray  # (24, 3) rest joint positions
    parents: np.ndarray  # (24,) parent joint index, -1 for the root; parents come before children
    weights: np.ndarray  # (V, 24) skinning weights, rows sum to 1
    rotations: np.ndarray  # (N, 24, 3) axis-angle, parent-relative; joint 0 = global orientation (y-up)
    root_translation: np.ndarray  # (N, 3) posed root joint (pelvis) position
    times: np.ndarray  # (N,) seconds, increasing
    name: str = "track"

    def __post_init__(self) -> None:
        n, v = len(self.times), len(self.vertices)
        shapes = {
            "vertices": (self.vertices.shape, (v, 3)),
            "joints": (self.joints.shape, (NUM_JOINTS, 3)),
            "parents": (self.parents.shape, (NUM_JOINTS,)),
            "weights": (self.weights.shape, (v, NUM_JOINTS)),
            "rotations": (self.rotations.shape, (n, NUM_JOINTS, 3)),
            "root_translation": (self.root_translation.shape, (n, 3)),
        }
        for key, (got, want) in shapes.items():
            if tuple(got) != want:
                raise ValueError(f"{self.name}: {key} has shape {tuple(got)}, expected {want}")
        if n == 0 or self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"{self.name}: need at least one frame and faces (F, 3)")
        if n > 1 and np.any(np.diff(self.times) <= 0):
            raise ValueError(f"{self.name}: times must increase")
        if self.parents[0] != -1 or np.any(self.parents[1:] >= np.arange(1, NUM_JOINTS)):
            raise ValueError(f"{self.name}: parents must list the root first and parents before children")

    @property
    def num_frames(self) -> int:
        return len(self.times)


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)


def rig_from_smpl(
    body: BodyModel,
    pose: np.ndarray | torch.Tensor,
    betas: np.ndarray | torch.Tensor,
    transl: np.ndarray | torch.Tensor,
    cam_t: np.ndarray | torch.Tensor,
    times: np.ndarray,
    gender: str = "neutral",
    name: str = "track",
) -> RigAnimation:
    """The rig of one track from its SMPL fit, in y-up axes.

    pose: (N, 72) axis-angle, global orientation first, mapping SMPL's body into camera axes; betas: (10,);
    transl: (N, 3) and cam_t: (N, 3) metres, the camera-frame body being
    ``body.vertices(pose, betas, transl) + cam_t``; times: (N,) seconds.
    """
    if gender not in body.layers:
        raise ValueError(f"no SMPL layer for gender {gender!r}; loaded: {body.genders}")
    layer = body.layers[gender]
    pose, transl, cam_t = _numpy(pose), _numpy(transl), _numpy(cam_t)
    n = len(pose)
    if pose.shape != (n, 72) or transl.shape != (n, 3) or cam_t.shape != (n, 3):
        raise ValueError(f"expected pose (N, 72), transl and cam_t (N, 3); got {pose.shape}, {transl.shape}")
    with torch.no_grad():
        betas_t = torch.as_tensor(_numpy(betas), dtype=layer.v_template.dtype, device=layer.v_template.device)
        shaped = layer.v_template + layer.shapedirs[..., : len(betas_t)] @ betas_t  # (V, 3)
        joints = layer.J_regressor @ shaped  # (24, 3), as smplx regresses them
    shaped, joints = _numpy(shaped), _numpy(joints)
    rotations = pose.reshape(n, NUM_JOINTS, 3).copy()
    to_yup = Rotation.from_matrix(CAMERA_TO_YUP)
    rotations[:, 0] = (to_yup * Rotation.from_rotvec(rotations[:, 0])).as_rotvec()
    # SMPL rotates the body about the rest root joint, which then sits at joints[0] + transl (+ cam_t)
    root = (joints[0] + transl + cam_t) @ CAMERA_TO_YUP.T
    return RigAnimation(
        vertices=shaped,
        faces=np.asarray(layer.faces_tensor.cpu().numpy(), dtype=np.int64),
        joints=joints,
        parents=np.asarray(layer.parents.cpu().numpy(), dtype=np.int64),
        weights=_numpy(layer.lbs_weights),
        rotations=rotations,
        root_translation=root,
        times=np.asarray(times, dtype=np.float64),
        name=name,
    )


# -------------------------------------------------------------------------------------------------- glTF


def influence_sets(weights: np.ndarray, influences: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex joint indices and weights in sets of 4 for JOINTS_n / WEIGHTS_n.

    weights: (V, J). ``influences`` (a multiple of 4) keeps that many largest weights; None keeps every
    weight above 1e-5. -> joints (S, V, 4) uint8, weights (S, V, 4) float32, renormalised to sum 1.
    """
    if influences is None:
        influences = max(1, int((weights > _WEIGHT_EPS).sum(1).max()))
        influences = -(-influences // 4) * 4
    if influences % 4 or not 4 <= influences <= weights.shape[1]:
        raise ValueError(f"influences must be a multiple of 4 in [4, {weights.shape[1]}], got {influences}")
    order = np.argsort(-weights, axis=1, kind="stable")[:, :influences]  # (V, K) largest first
    kept = np.take_along_axis(weights, order, 1)
    kept = np.where(kept > _WEIGHT_EPS, kept, 0.0)
    kept = kept / kept.sum(1, keepdims=True)
    order = np.where(kept > 0, order, 0)  # unused slots point at joint 0 with weight 0
    joint_sets = order.reshape(len(order), -1, 4).transpose(1, 0, 2).astype(np.uint8)
    weight_sets = kept.reshape(len(kept), -1, 4).transpose(1, 0, 2).astype(np.float32)
    return np.ascontiguousarray(joint_sets), np.ascontiguousarray(weight_sets)


def _continuous_quaternions(rotvecs: np.ndarray) -> np.ndarray:
    """(N, 3) axis-angle -> (N, 4) quaternions xyzw, signs chosen so consecutive keys are on the short arc."""
    quat = Rotation.from_rotvec(rotvecs).as_quat()
    flips = np.where(np.sum(quat[1:] * quat[:-1], 1) < 0, -1.0, 1.0)
    return quat * np.concatenate([[1.0], np.cumprod(flips)])[:, None]


def _add_skinned_mesh(gltf: _GltfBuilder, rig: RigAnimation, influences: int | None) -> int:
    """The rest-pose mesh with its JOINTS_n / WEIGHTS_n; returns the mesh index."""
    joint_sets, weight_sets = influence_sets(rig.weights, influences)
    attributes = {"POSITION": gltf.accessor(rig.vertices.astype(np.float32), "VEC3", _ARRAY_BUFFER)}
    for i, (js, ws) in enumerate(zip(joint_sets, weight_sets, strict=True)):
        attributes[f"JOINTS_{i}"] = gltf.accessor(js, "VEC4", _ARRAY_BUFFER)
        attributes[f"WEIGHTS_{i}"] = gltf.accessor(ws, "VEC4", _ARRAY_BUFFER, with_bounds=False)
    faces = rig.faces.astype(np.uint32).reshape(-1)
    indices = gltf.accessor(faces, "SCALAR", _ELEMENT_ARRAY_BUFFER, with_bounds=False)
    primitive = {"attributes": attributes, "indices": indices}
    gltf.json["meshes"].append({"name": rig.name, "primitives": [primitive]})
    return len(gltf.json["meshes"]) - 1


def _add_skeleton(gltf: _GltfBuilder, rig: RigAnimation) -> None:
    """Nodes 0..23 = the joints in bind pose (rest offsets, no rotation) and the skin over them."""
    for k, name in enumerate(SMPL_JOINT_NAMES):
        parent = rig.parents[k]
        offset = rig.joints[k] - (rig.joints[parent] if parent >= 0 else 0.0)
        node = {"name": name, "translation": offset.tolist()}
        children = np.flatnonzero(rig.parents == k).tolist()
        if children:
            node["children"] = children
        gltf.json["nodes"].append(node)
    # bind pose: joint k at rest_joints[k], unrotated -> inverse bind matrix = translation by -rest_joints[k]
    inverse_bind = np.tile(np.eye(4), (NUM_JOINTS, 1, 1))
    inverse_bind[:, :3, 3] = -rig.joints
    matrices = inverse_bind.transpose(0, 2, 1).astype(np.float32)  # column-major
    ibm = gltf.accessor(matrices, "MAT4", None, with_bounds=False)
    gltf.json["skins"] = [
        {"name": rig.name, "joints": list(range(NUM_JOINTS)), "inverseBindMatrices": ibm, "skeleton": 0}
    ]


def _add_animation(gltf: _GltfBuilder, rig: RigAnimation) -> None:
    """Rotation channels for every joint node and a translation channel on the root, one key per frame."""
    key_times = gltf.accessor(rig.times.astype(np.float32), "SCALAR", None)
    samplers, channels = [], []

    def add(values: np.ndarray, kind: str, node: int, path: str) -> None:
        output = gltf.accessor(values.astype(np.float32), kind, None, with_bounds=False)
        samplers.append({"input": key_times, "output": output, "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

    for k in range(NUM_JOINTS):
        add(_continuous_quaternions(rig.rotations[:, k]), "VEC4", k, "rotation")
    add(rig.root_translation, "VEC3", 0, "translation")
    gltf.json["animations"] = [{"name": rig.name, "channels": channels, "samplers": samplers}]


def save_skinned_glb(path: str | Path, rig: RigAnimation, influences: int | None = None) -> Path:
    """One ``.glb``: the rest-pose mesh skinned to the 24 joint nodes (named after SMPL's joints) and
    animated at ``rig.times`` (rotation keys per joint, translation keys on the root), y-up, metres.

    ``influences``: joints per vertex (a multiple of 4; None: as many as the weights need, see the module
    docstring). Written atomically.
    """
    gltf = _GltfBuilder(generator="pmce lib/demo/rig_export.py")
    _add_skeleton(gltf, rig)
    mesh = _add_skinned_mesh(gltf, rig, influences)
    gltf.json["nodes"].append({"name": rig.name, "mesh": mesh, "skin": 0})
    gltf.json["scenes"] = [{"nodes": [len(gltf.json["nodes"]) - 1, 0]}]
    gltf.json["scene"] = 0
    _add_animation(gltf, rig)
    return write_atomic(path, lambda f: f.write(gltf.to_glb()))


# --------------------------------------------------------------------------------------------------- BVH


def frame_rate(times: np.ndarray, fps: float | None = None) -> float:
    """``fps`` if given, else 1 / the shortest step of ``times`` (N,) seconds (30 for a single frame)."""
    if fps is None:
        fps = 1.0 / float(np.diff(times).min()) if len(times) > 1 else 30.0
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return float(fps)


def uniform_frames(rig: RigAnimation, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The motion at ``fps`` frames/s from ``rig.times[0]`` to ``rig.times[-1]`` (BVH frames have no gaps).

    Missing frames are interpolated (slerp for rotations, linear for the root).
    -> times (M,) seconds, rotations (M, 24, 3) axis-angle, root translation (M, 3).
    """
    times = rig.times
    count = round(float(times[-1] - times[0]) * fps) + 1
    out_times = times[0] + np.arange(count) / fps
    if len(times) == 1:
        return out_times, rig.rotations.copy(), rig.root_translation.copy()
    clipped = np.clip(out_times, times[0], times[-1])
    rotations = [Slerp(times, Rotation.from_rotvec(rig.rotations[:, k]))(clipped) for k in range(NUM_JOINTS)]
    root = [np.interp(clipped, times, rig.root_translation[:, a]) for a in range(3)]
    return out_times, np.stack([r.as_rotvec() for r in rotations], 1), np.stack(root, 1)


def _children(parents: np.ndarray, k: int) -> list[int]:
    return np.flatnonzero(parents == k).tolist()


def _hierarchy(rig: RigAnimation) -> tuple[list[str], list[int]]:
    """HIERARCHY lines and the joints in the order their channels appear (depth first)."""
    lines, order = ["HIERARCHY"], []

    def joint(k: int, depth: int) -> None:
        pad, parent = "  " * depth, rig.parents[k]
        offset = (rig.joints[k] - rig.joints[parent]) * BVH_UNIT if parent >= 0 else np.zeros(3)
        rot = " ".join(f"{axis}rotation" for axis in BVH_EULER_ORDER)
        channels = f"CHANNELS 6 Xposition Yposition Zposition {rot}" if parent < 0 else f"CHANNELS 3 {rot}"
        lines.extend([f"{pad}{'ROOT' if parent < 0 else 'JOINT'} {SMPL_JOINT_NAMES[k]}", f"{pad}{{"])
        lines.extend([f"{pad}  OFFSET {_fmt(offset)}", f"{pad}  {channels}"])
        order.append(k)
        children = _children(rig.parents, k)
        for child in children:
            joint(child, depth + 1)
        if not children:  # a nominal tip: the incoming bone continued by half its length
            tip = 0.5 * (rig.joints[k] - rig.joints[parent]) * BVH_UNIT
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_fmt(tip)}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(0, 0)
    return lines, order


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def _euler_degrees(rotvecs: np.ndarray) -> np.ndarray:
    """(M, 3) axis-angle -> (M, 3) BVH Euler angles in channel order, unwrapped over time (360 deg apart
    is the same rotation, so every channel may be unwrapped on its own)."""
    with warnings.catch_warnings():  # gimbal lock: scipy still returns angles that give the rotation
        warnings.simplefilter("ignore", UserWarning)
        angles = Rotation.from_rotvec(rotvecs).as_euler(BVH_EULER_ORDER, degrees=True)
    return np.unwrap(angles, period=360.0, axis=0)


def save_bvh(path: str | Path, rig: RigAnimation, fps: float | None = None) -> Path:
    """BVH of the rig's skeleton and motion, y-up; offsets and root positions in CENTIMETRES, angles in
    degrees, Euler order ZXY (channels ``Zrotation Xrotation Yrotation``: R = Rz Rx Ry).

    The root has OFFSET 0 and 6 channels (its position channels are the pelvis' world position, so
    readers that add the offset and those that replace it agree); other joints have 3 rotation
    channels, leaves an End Site. Frames are uniform at ``fps`` (None: see :func:`frame_rate`; gaps are
    interpolated, see :func:`uniform_frames`); frame 0 is ``rig.times[0]``. Written atomically.
    """
    fps = frame_rate(rig.times, fps)
    times, rotations, root = uniform_frames(rig, fps)
    lines, order = _hierarchy(rig)
    euler = np.stack([_euler_degrees(rotations[:, k]) for k in order], axis=1)  # (M, 24, 3)
    motion = np.concatenate([root * BVH_UNIT, euler.reshape(len(times), -1)], axis=1)
    lines += ["MOTION", f"Frames: {len(times)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [_fmt(row) for row in motion]
    return write_text_atomic(path, "\n".join(lines) + "\n")
