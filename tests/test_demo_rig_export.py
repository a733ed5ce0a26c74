"""Rigged exports read back by independent readers: the skinned .glb (pygltflib + numpy skinning), the
.bvh (the ``bvh`` package + forward kinematics here) and, where Blender is installed, both in Blender."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from lib.demo.rig_export import (
    SMPL_JOINT_NAMES,
    RigAnimation,
    influence_sets,
    rig_from_smpl,
    save_bvh,
    save_skinned_glb,
    uniform_frames,
)

FPS = 30.0
TO_YUP = np.diag([1.0, -1.0, -1.0])  # camera (y down, z forward) -> y up, z towards the viewer
LEAVES = {"head", "left_foot", "right_foot", "left_hand", "right_hand"}
# Run by Blender's own Python: imports both files into empty scenes and reports what a user would see.
BLENDER_SCRIPT = """
import json, sys
import bpy
import numpy

# Shims for Debian's Blender 3.4 on Python 3.11 / numpy 1.24: its glTF importer uses np.bool and its BVH
# importer opens files in mode 'rU', both removed since Blender 3.4 was released.
if "bool" not in vars(numpy):
    numpy.bool = bool

glb, bvh, out, fps, glb_frame, bvh_frame = sys.argv[sys.argv.index("--") + 1 :]


def keys(obj):
    return max(len(curve.keyframe_points) for curve in obj.animation_data.action.fcurves)


def fresh_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = int(fps)
    return bpy.context.scene


scene = fresh_scene()
bpy.ops.import_scene.gltf(filepath=glb)
arm = next(o for o in scene.objects if o.type == "ARMATURE")
mesh = next(o for o in scene.objects if o.type == "MESH")
scene.frame_set(int(glb_frame))
evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
posed = evaluated.to_mesh()
vertices = [list(evaluated.matrix_world @ v.co) for v in posed.vertices]
report = {"glb": {"bones": sorted(b.name for b in arm.data.bones), "keys": keys(arm), "vertices": vertices}}

scene = fresh_scene()
from io_anim_bvh import import_bvh

import_bvh.open = lambda path, mode="r", *args, **kw: open(path, mode.replace("U", ""), *args, **kw)
bpy.ops.import_anim.bvh(filepath=bvh, global_scale=0.01, frame_start=1, rotate_mode="NATIVE")
arm = next(o for o in scene.objects if o.type == "ARMATURE")
scene.frame_set(int(bvh_frame))
evaluated = arm.evaluated_get(bpy.context.evaluated_depsgraph_get())
heads = {b.name: list(evaluated.matrix_world @ b.head) for b in evaluated.pose.bones}
report["bvh"] = {"bones": sorted(b.name for b in arm.data.bones), "keys": keys(arm), "heads": heads}
with open(out, "w") as f:
    json.dump(report, f)
"""


@dataclass(frozen=True)
class Case:
    """A random track, its rig and the SMPL result the exports must reproduce (y-up, metres)."""

    rig: RigAnimation
    vertices: np.ndarray  # (N, V, 3)
    joints: np.ndarray  # (N, 24, 3) SMPL's posed kinematic joints


# One torch thread: on a busy 2-core CPU extra OpenMP threads mostly wait (see lib.body.fit).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def case(synthetic_body_model) -> Case:
    """6 frames of plausible random poses (0.3 rad per body angle), random global orientations, random
    betas, a camera ~3 m away; frames 5..10 of a 30 fps video."""
    n, g = 6, torch.Generator().manual_seed(0)
    pose = 0.3 * torch.randn(n, 72, generator=g)
    pose[:, :3] = torch.as_tensor(Rotation.random(n, random_state=1).as_rotvec(), dtype=torch.float32)
    betas = torch.randn(10, generator=g)
    transl = 0.1 * torch.randn(n, 3, generator=g)
    cam_t = torch.tensor([0.2, 0.1, 3.0]) + 0.05 * torch.randn(n, 3, generator=g)
    layer = synthetic_body_model.layers["neutral"]
    with torch.no_grad():
        vertices = (
            synthetic_body_model.vertices(pose, betas.expand(n, -1), transl, "neutral") + cam_t[:, None]
        )
        joints = layer(betas=betas.expand(n, -1), global_orient=pose[:, :3], body_pose=pose[:, 3:]).joints
        joints = joints[:, :24] + (transl + cam_t)[:, None]
    times = (np.arange(n) + 5) / FPS
    rig = rig_from_smpl(synthetic_body_model, pose, betas, transl, cam_t, times, name="track_003")
    return Case(rig, vertices.double().numpy() @ TO_YUP.T, joints.double().numpy() @ TO_YUP.T)


# -------------------------------------------------------------------------------------------------- glTF


def read_accessor(gltf, blob: bytes, index: int) -> np.ndarray:
    """(count, width) array of a tightly packed accessor, from pygltflib's parse of the file."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    assert view.byteStride in (None, 0)
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}[acc.componentType]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    offset = (view.byteOffset or 0) + (acc.byteOffset or 0)
    return np.frombuffer(blob, dtype, acc.count * width, offset).reshape(acc.count, width)


def trs_matrix(translation, rotation, scale) -> np.ndarray:
    """4x4 from glTF TRS (rotation quaternion xyzw)."""
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat(rotation).as_matrix() * np.asarray(scale)
    m[:3, 3] = translation
    return m


def pose_from_file(gltf, blob: bytes, time: float) -> list[np.ndarray]:
    """World matrices of every node at ``time`` (a key time): node rest TRS overridden by the channels."""
    trs = [
        {
            "translation": n.translation or [0, 0, 0],
            "rotation": n.rotation or [0, 0, 0, 1],
            "scale": n.scale or [1] * 3,
        }
        for n in gltf.nodes
    ]
    for channel in gltf.animations[0].channels:
        sampler = gltf.animations[0].samplers[channel.sampler]
        key_times = read_accessor(gltf, blob, sampler.input)[:, 0]
        (key,) = np.flatnonzero(np.abs(key_times - time) < 1e-6)
        trs[channel.target.node][channel.target.path] = read_accessor(gltf, blob, sampler.output)[key]
    world: list[np.ndarray] = [np.eye(4)] * len(gltf.nodes)

    def visit(node: int, parent: np.ndarray) -> None:
        world[node] = parent @ trs_matrix(**trs[node])
        for child in gltf.nodes[node].children or []:
            visit(child, world[node])

    for root in gltf.scenes[gltf.scene].nodes:
        visit(root, np.eye(4))
    return world


def skin_from_file(path: Path) -> tuple[object, np.ndarray]:
    """(pygltflib document, (N, V, 3) vertices posed at every key time from the file's own data)."""
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    (mesh_node,) = [n for n in gltf.nodes if n.skin is not None]
    skin, attributes = gltf.skins[mesh_node.skin], gltf.meshes[mesh_node.mesh].primitives[0].attributes
    rest = read_accessor(gltf, blob, attributes.POSITION).astype(np.float64)
    rest = np.concatenate([rest, np.ones((len(rest), 1))], 1)
    inverse_bind = read_accessor(gltf, blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    sets = [
        (getattr(attributes, f"JOINTS_{i}", None), getattr(attributes, f"WEIGHTS_{i}", None))
        for i in range(2)
    ]
    sets = [(read_accessor(gltf, blob, j).astype(int), read_accessor(gltf, blob, w)) for j, w in sets if j]
    times = read_accessor(gltf, blob, gltf.animations[0].samplers[0].input)[:, 0]
    frames = []
    for t in times:
        world = pose_from_file(gltf, blob, float(t))
        joint_mats = np.stack([world[j] for j in skin.joints]) @ inverse_bind  # (24, 4, 4)
        blended = sum(np.einsum("vc,vcab->vab", w, joint_mats[j]) for j, w in sets)  # (V, 4, 4)
        frames.append(np.einsum("vab,vb->va", blended, rest)[:, :3])
    return gltf, np.stack(frames)


def test_skinned_glb_reposes_smpl_in_an_independent_reader(case, tmp_path):
    path = save_skinned_glb(tmp_path / "track_003.glb", case.rig)
    gltf, posed = skin_from_file(path)
    skin = gltf.skins[0]
    assert len(skin.joints) == 24 and [gltf.nodes[j].name for j in skin.joints] == list(SMPL_JOINT_NAMES)
    channels = gltf.animations[0].channels
    assert sorted(c.target.path for c in channels) == ["rotation"] * 24 + ["translation"]
    assert {c.target.node for c in channels if c.target.path == "rotation"} == set(skin.joints)
    for sampler in gltf.animations[0].samplers:
        assert sampler.interpolation == "LINEAR" and gltf.accessors[sampler.input].count == 6
    quat = read_accessor(gltf, gltf.binary_blob(), gltf.animations[0].samplers[3].output)
    assert quat.shape == (6, 4) and np.allclose(np.linalg.norm(quat, axis=1), 1, atol=1e-6)
    assert np.abs(quat[:, :3]).max() > 0.05  # the spine really rotates
    attributes = gltf.meshes[0].primitives[0].attributes
    assert attributes.JOINTS_1 is not None and attributes.WEIGHTS_1 is not None  # 8 influences needed
    error = np.linalg.norm(posed - case.vertices, axis=-1).max()
    print(f"glb re-pose max error: {error * 1e3:.4f} mm")
    assert error < 1e-3
    assert [p.name for p in tmp_path.iterdir()] == ["track_003.glb"]  # atomic: no temporary left


def test_four_influences_are_not_enough_for_1mm(case, tmp_path):
    joints, weights = influence_sets(case.rig.weights, 4)
    assert joints.shape == (1, len(case.rig.weights), 4) and np.allclose(weights.sum((0, 2)), 1, atol=1e-6)
    _, posed = skin_from_file(save_skinned_glb(tmp_path / "four.glb", case.rig, influences=4))
    error = np.linalg.norm(posed - case.vertices, axis=-1).max()
    print(f"glb re-pose max error with 4 influences: {error * 1e3:.2f} mm")
    assert error > 2e-3  # why the export writes a second set for the generated body


# --------------------------------------------------------------------------------------------------- BVH


def bvh_forward_kinematics(mocap) -> dict[str, np.ndarray]:
    """Joint name -> (N, 3) world positions from a parsed BVH (channels applied in their listed order)."""
    axes = {"X": [1, 0, 0], "Y": [0, 1, 0], "Z": [0, 0, 1]}
    positions, rotations = {}, {}
    for name in mocap.get_joints_names():  # depth first: parents come first
        channels = mocap.joint_channels(name)
        values = np.array(mocap.frames_joint_channels(name, channels))  # (N, C)
        offset = np.array(mocap.joint_offset(name))
        local = np.tile(np.eye(3), (len(values), 1, 1))
        translation = np.tile(offset, (len(values), 1))
        for c, channel in enumerate(channels):
            if channel.endswith("rotation"):
                rotvec = np.radians(values[:, c, None]) * np.array(axes[channel[0]], dtype=float)
                local = local @ Rotation.from_rotvec(rotvec).as_matrix()
            else:
                translation[:, "XYZ".index(channel[0])] += values[:, c]
        parent = mocap.joint_parent(name)
        if parent is None:
            positions[name], rotations[name] = translation, local
        else:
            p = parent.name
            positions[name] = positions[p] + np.einsum("nab,nb->na", rotations[p], translation)
            rotations[name] = rotations[p] @ local
    return positions


def test_bvh_forward_kinematics_reproduces_smpl_joints(case, tmp_path):
    import bvh

    path = save_bvh(tmp_path / "track_003.bvh", case.rig)
    mocap = bvh.Bvh(path.read_text())
    names = mocap.get_joints_names()
    assert len(names) == 24 and set(names) == set(SMPL_JOINT_NAMES)
    assert {n.parent.name for n in mocap.search("End", "Site")} == LEAVES
    assert (
        mocap.nframes == 6 and len(mocap.frames) == 6 and mocap.frame_time == pytest.approx(1 / FPS, abs=1e-7)
    )
    assert mocap.joint_channels("pelvis")[:3] == ["Xposition", "Yposition", "Zposition"]
    assert mocap.joint_channels("left_knee") == ["Zrotation", "Xrotation", "Yrotation"]
    positions = bvh_forward_kinematics(mocap)
    fk = np.stack([positions[name] for name in SMPL_JOINT_NAMES], 1) / 100.0  # centimetres -> metres
    error = np.linalg.norm(fk - case.joints, axis=-1).max()
    print(f"bvh forward-kinematics max joint error: {error * 1e3:.4f} mm")
    assert error < 1e-3
    assert [p.name for p in tmp_path.iterdir()] == ["track_003.bvh"]


def test_bvh_fills_gaps_at_a_constant_frame_rate(case, tmp_path):
    import bvh

    keep = [0, 1, 2, 4, 5]  # frame 3 (t = 8 / 30 s) was not tracked
    r = case.rig
    rig = RigAnimation(
        **{
            **r.__dict__,
            "rotations": r.rotations[keep],
            "root_translation": r.root_translation[keep],
            "times": r.times[keep],
        }
    )
    times, rotations, root = uniform_frames(rig, FPS)
    assert np.allclose(times, r.times)
    kept = (
        Rotation.from_rotvec(rotations[keep].reshape(-1, 3))
        * Rotation.from_rotvec(r.rotations[keep].reshape(-1, 3)).inv()
    )
    assert kept.magnitude().max() < 1e-6 and np.allclose(root[keep], r.root_translation[keep])
    before, after = (Rotation.from_rotvec(rig.rotations[i]) for i in (2, 3))
    halfway = (Rotation.from_rotvec(rotations[3]) * before.inv()).magnitude()
    assert np.allclose(halfway, (after * before.inv()).magnitude() / 2, atol=1e-6)  # slerp midpoint
    mocap = bvh.Bvh(save_bvh(tmp_path / "gap.bvh", rig).read_text())
    assert mocap.nframes == 6 and mocap.frame_time == pytest.approx(1 / FPS, abs=1e-7)


def test_rig_validation(case, synthetic_body_model):
    with pytest.raises(ValueError, match="rotations"):
        RigAnimation(**{**case.rig.__dict__, "rotations": case.rig.rotations[:, :23]})
    with pytest.raises(ValueError, match="times must increase"):
        RigAnimation(**{**case.rig.__dict__, "times": case.rig.times[::-1]})
    with pytest.raises(ValueError, match="gender"):
        rig_from_smpl(
            synthetic_body_model,
            np.zeros((1, 72)),
            np.zeros(10),
            np.zeros((1, 3)),
            np.zeros((1, 3)),
            [0.0],
            "x",
        )
    with pytest.raises(ValueError, match="influences"):
        influence_sets(case.rig.weights, 6)


# ------------------------------------------------------------------------------------------------ Blender


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("blender") is None, reason="blender not on PATH (make test-blender installs it)"
)
def test_blender_imports_both_files(case, tmp_path):
    glb = save_skinned_glb(tmp_path / "track_003.glb", case.rig)
    bvh_path = save_bvh(tmp_path / "track_003.bvh", case.rig)
    out, script = tmp_path / "blender.json", tmp_path / "import_rig.py"
    script.write_text(BLENDER_SCRIPT)
    frame = 3  # glTF keys sit at time * fps = frame + 5; the BVH importer starts at frame 1
    cmd = ["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script), "--"]
    cmd += [str(glb), str(bvh_path), str(out), str(int(FPS)), str(frame + 5), str(frame + 1)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and out.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    got = json.loads(out.read_text())
    to_blender = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=float)  # y-up -> Blender's z-up
    assert got["glb"]["bones"] == sorted(SMPL_JOINT_NAMES) and got["glb"]["keys"] == 6
    assert got["bvh"]["bones"] == sorted(SMPL_JOINT_NAMES) and got["bvh"]["keys"] == 6
    vertices = np.array(got["glb"]["vertices"])
    assert vertices.shape == case.vertices[frame].shape
    glb_error = np.linalg.norm(vertices - case.vertices[frame] @ to_blender.T, axis=-1).max()
    heads = np.array([got["bvh"]["heads"][name] for name in SMPL_JOINT_NAMES])
    bvh_error = np.linalg.norm(heads - case.joints[frame] @ to_blender.T, axis=-1).max()
    print(f"Blender: glb max vertex error {glb_error * 1e3:.3f} mm, bvh joints {bvh_error * 1e3:.3f} mm")
    assert glb_error < 3e-3 and bvh_error < 3e-3
