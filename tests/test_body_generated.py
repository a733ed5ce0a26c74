"""The generated body: SMPL's file formats, a closed human surface, plausible joints, rig and shapes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lib.body import geometry
from lib.body.files import load_downsampling, load_smpl_data
from lib.body.generated.design import SMPL_PARENTS
from lib.body.generated.rig import SHAPE_NAMES
from lib.constants import COCO17_JOINTS, H36M17_JOINTS, SMPL24_JOINTS

SMPL_SHAPES = {
    "v_template": (6890, 3),
    "f": (13776, 3),
    "J_regressor": (24, 6890),
    "weights": (6890, 24),
    "kintree_table": (2, 24),
    "shapedirs": (6890, 3, 10),
    "posedirs": (6890, 3, 207),
}


@pytest.fixture(scope="module")
def neutral(synthetic_body_dir):
    return load_smpl_data(synthetic_body_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl")


def _smpl_joints(model, pose=None, betas=None):
    pose = torch.zeros(1, 72) if pose is None else pose
    betas = torch.zeros(1, 10) if betas is None else betas
    out = model(pose, betas, joint_sets=("smpl24",))
    return out.vertices[0].numpy(), out.joints["smpl24"][0].numpy()


def test_files_have_smpl_formats(neutral, synthetic_body_dir):
    for key, shape in SMPL_SHAPES.items():
        assert tuple(neutral[key].shape) == shape, key
    assert sp.issparse(neutral["J_regressor"])
    assert neutral["f"].dtype == np.uint32
    assert list(neutral["kintree_table"][0, 1:]) == list(SMPL_PARENTS[1:])
    for gender in ("MALE", "FEMALE"):
        other = load_smpl_data(synthetic_body_dir / "body_models" / "smpl" / f"SMPL_{gender}.pkl")
        assert np.abs(other["v_template"] - neutral["v_template"]).max() > 0.01  # genders differ
    down = load_downsampling(synthetic_body_dir / "base_data" / "mesh_downsampling.npz")
    assert [m.shape for m in down["D"]] == [(1723, 6890), (431, 1723)]
    assert [m.shape for m in down["U"]] == [(6890, 1723), (1723, 431)]
    assert [m.shape for m in down["A"]] == [(6890, 6890), (1723, 1723), (431, 431)]
    for d in down["D"]:  # selection matrices, like the official file
        assert np.all(d.getnnz(axis=1) == 1) and np.all(d.data == 1.0)
    for u in down["U"]:  # barycentric rows
        np.testing.assert_allclose(np.asarray(u.sum(axis=1)).ravel(), 1.0, atol=1e-5)
        assert u.min() >= 0
    for a in down["A"]:
        assert (a != a.T).nnz == 0


def test_surface_is_closed_oriented_and_clean(synthetic_body):
    v, f = synthetic_body.vertices, synthetic_body.faces
    assert geometry.closed_surface_problems(f, len(v)) == []
    assert geometry.enclosed_volume(v, f) > 0  # faces point outwards
    assert geometry.triangle_quality(v, f).min() > 0.1  # no degenerate or sliver triangles
    assert 0.05 < geometry.enclosed_volume(v, f) < 0.09  # m^3: a 50-90 kg person


def test_height_and_proportions(synthetic_body_model):
    vertices, joints = _smpl_joints(synthetic_body_model)
    height = vertices[:, 1].max() - vertices[:, 1].min()
    assert 1.65 < height < 1.75
    span = vertices[:, 0].max() - vertices[:, 0].min()
    assert 0.9 * height < span < 1.1 * height  # T-pose arm span about equals height
    j = dict(zip(SMPL24_JOINTS, joints, strict=True))
    chain = ("Head", "Neck", "Spine3", "Spine2", "Spine1", "Pelvis", "L_Hip", "L_Knee", "L_Ankle")
    assert all(j[a][1] > j[b][1] for a, b in itertools.pairwise(chain))
    for name in SMPL24_JOINTS:
        if name.startswith("L_"):
            assert j[name][0] > 0 > j["R_" + name[2:]][0]
            np.testing.assert_allclose(j[name] * [-1, 1, 1], j["R_" + name[2:]], atol=0.01)
    assert 0.35 < np.linalg.norm(j["L_Hip"] - j["L_Knee"]) < 0.45  # thigh
    assert 0.22 < np.linalg.norm(j["L_Shoulder"] - j["L_Elbow"]) < 0.32  # upper arm


def test_joints_are_inside_the_surface(synthetic_body, synthetic_body_model):
    v, f = synthetic_body.vertices, synthetic_body.faces
    template = torch.from_numpy(v).float()[None]
    for joint_set in ("smpl24", "h36m17", "coco17"):
        joints = synthetic_body_model.joints(template, joint_set)[0].numpy()
        winding = geometry.winding_numbers(joints, v, f)
        assert np.all(winding > 0.5), (joint_set, winding.round(2))
    coco = synthetic_body_model.joints(template, "coco17")[0].numpy()
    nose = coco[COCO17_JOINTS.index("Nose")]
    assert nose[2] > coco[COCO17_JOINTS.index("L_Ear")][2] + 0.05  # the face looks forward (+z)
    h36m = synthetic_body_model.joints(template, "h36m17")[0].numpy()
    assert h36m[H36M17_JOINTS.index("Head")][1] > h36m[H36M17_JOINTS.index("Neck")][1] + 0.15


def test_lbs_at_zero_pose_reproduces_the_template(synthetic_body_model, neutral):
    vertices, _ = _smpl_joints(synthetic_body_model)
    np.testing.assert_allclose(vertices, neutral["v_template"], atol=1e-5)


def test_skinning_weights_are_smooth(synthetic_body, synthetic_body_model):
    w = synthetic_body.weights
    assert w.min() >= 0 and np.allclose(w.sum(1), 1.0)
    pose = torch.zeros(1, 72)
    for joint, axis in (("L_Elbow", 1), ("R_Elbow", 1), ("L_Knee", 0), ("R_Knee", 0)):
        pose[0, 3 * SMPL24_JOINTS.index(joint) + axis] = 1.5 if joint != "R_Elbow" else -1.5
    bent, joints = _smpl_joints(synthetic_body_model, pose)
    edges = np.concatenate([synthetic_body.faces[:, [0, 1]], synthetic_body.faces[:, [1, 2]]])
    rest_len = np.linalg.norm(np.diff(synthetic_body.vertices[edges], axis=1)[:, 0], axis=1)
    bent_len = np.linalg.norm(np.diff(bent[edges], axis=1)[:, 0], axis=1)
    ratio = bent_len / rest_len
    # Skin folds on the inner side of a bend (as with SMPL) but nothing tears or bunches up widely.
    assert ratio.max() < 2.5 and np.percentile(ratio, 1) > 0.6
    winding = geometry.winding_numbers(joints, bent, synthetic_body.faces)
    assert np.all(winding > 0.5)  # joints stay inside the bent body


def test_betas_change_the_body(synthetic_body_model):
    heights = []
    for value in (-2.0, -1.0, 0.0, 1.0, 2.0):
        betas = torch.zeros(1, 10)
        betas[0, 0] = value
        vertices, _ = _smpl_joints(synthetic_body_model, betas=betas)
        heights.append(vertices[:, 1].max() - vertices[:, 1].min())
    assert np.all(np.diff(heights) > 0.03)  # monotonic, several cm per unit

    def measure(index: int, value: float) -> dict[str, float]:
        betas = torch.zeros(1, 10)
        betas[0, index] = value
        v, j = _smpl_joints(synthetic_body_model, betas=betas)
        j = dict(zip(SMPL24_JOINTS, j, strict=True))
        return {
            "weight": np.abs(v - v.mean(0))[:, [0, 2]].sum(),
            "shoulder width": np.linalg.norm(j["L_Shoulder"] - j["R_Shoulder"]),
            "leg length": np.linalg.norm(j["L_Hip"] - j["L_Ankle"]),
            "arm length": np.linalg.norm(j["L_Shoulder"] - j["L_Wrist"]),
        }

    for name in ("weight", "shoulder width", "leg length", "arm length"):
        index = SHAPE_NAMES.index(name)
        assert measure(index, 1.0)[name] > measure(index, 0.0)[name] > measure(index, -1.0)[name], name


def test_shape_directions_are_unit_scaled(synthetic_body):
    per_unit = np.linalg.norm(synthetic_body.shapedirs, axis=1).max(axis=0)  # (10,) largest displacement
    assert np.all((per_unit > 0.01) & (per_unit < 0.1)), per_unit
