"""BodyModel: batched SMPL forward, joint sets, genders; the coarse mesh from the generated files."""

from __future__ import annotations

import torch

from lib.body.build import build_coarse_mesh_from_cfg
from lib.constants import COCO19_JOINTS, flip_pairs, flip_permutation, joint_mapping, num_joints


def _inputs(batch: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (
        0.3 * torch.randn(batch, 72, generator=g),
        torch.randn(batch, 10, generator=g),
        torch.randn(batch, 3, generator=g),
    )


def test_forward_shapes_and_joint_sets(synthetic_body_model):
    pose, betas, transl = _inputs()
    out = synthetic_body_model(pose, betas, transl, joint_sets=("h36m17", "coco17", "coco19", "smpl24"))
    assert out.vertices.shape == (3, 6890, 3)
    for joint_set, joints in out.joints.items():
        assert joints.shape == (3, num_joints(joint_set), 3)
    coco19 = out.joints["coco19"]
    torch.testing.assert_close(coco19[:, COCO19_JOINTS.index("Pelvis")], coco19[:, [11, 12]].mean(1))
    torch.testing.assert_close(coco19[:, COCO19_JOINTS.index("Neck")], coco19[:, [5, 6]].mean(1))
    assert list(synthetic_body_model.parameters()) == []  # nothing trainable hides in the body model


def test_translation_and_mixed_genders(synthetic_body_model):
    pose, betas, transl = _inputs(4)
    moved = synthetic_body_model(pose, betas, transl).vertices
    torch.testing.assert_close(moved, synthetic_body_model(pose, betas).vertices + transl[:, None])
    genders = ["female", "neutral", "male", "female"]
    mixed = synthetic_body_model(pose, betas, gender=genders).vertices
    for i, gender in enumerate(genders):
        alone = synthetic_body_model(pose[i : i + 1], betas[i : i + 1], gender=gender).vertices
        torch.testing.assert_close(mixed[i : i + 1], alone)


def test_gradients_flow_to_pose_and_shape(synthetic_body_model):
    pose, betas, _ = _inputs(2)
    pose.requires_grad_(True)
    betas.requires_grad_(True)
    synthetic_body_model(pose, betas).joints["h36m17"].sum().backward()
    assert pose.grad.abs().sum() > 0 and betas.grad.abs().sum() > 0


def test_coarse_mesh_from_generated_files(synthetic_body_cfg):
    mesh = build_coarse_mesh_from_cfg(synthetic_body_cfg)
    assert mesh.template.shape == (431, 3) and mesh.template.dtype == torch.float32
    assert mesh.vertex_joint_map.shape == (431,) and int(mesh.vertex_joint_map.max()) < 17
    assert len(torch.unique(mesh.vertex_joint_map)) == 17  # every joint initialises some vertices
    u1, u0 = mesh.upsample
    assert u1.shape == (1723, 431) and u0.shape == (6890, 1723)
    fine = torch.sparse.mm(u0, torch.sparse.mm(u1, mesh.template))  # upsampled template ~ the template
    assert fine.shape == (6890, 3)


def test_joint_set_helpers():
    assert flip_pairs("h36m17") == ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16))
    for joint_set in ("coco17", "coco19", "h36m17", "smpl24"):
        perm = flip_permutation(joint_set)
        assert [perm[i] for i in perm] == list(range(num_joints(joint_set)))  # an involution
    assert joint_mapping("coco19", "h36m17")[0] == COCO19_JOINTS.index("Pelvis")
    assert joint_mapping("coco19", "h36m17")[7] == -1  # COCO has no torso joint
