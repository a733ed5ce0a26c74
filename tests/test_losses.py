"""Loss terms: masking by validity, surface terms on a known mesh, stage weighting."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lib.losses import (
    LossWeights,
    edge_length_loss,
    face_edges,
    masked_l1,
    mesh_losses,
    normal_loss,
    pose_losses,
)

# A unit right tetrahedron: 4 vertices, 4 outward faces.
TETRA = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
FACES = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def normal(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return normal_loss(face_edges(pred, FACES), face_edges(target, FACES), valid)


def edge(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return edge_length_loss(face_edges(pred, FACES), face_edges(target, FACES), valid)


def test_masked_l1_averages_valid_elements_only():
    pred = torch.zeros(2, 3, 3)
    target = torch.ones(2, 3, 3)
    target[1] = 5.0
    valid = torch.tensor([[1.0, 1, 0], [0, 0, 0]])
    assert masked_l1(pred, target, valid).item() == pytest.approx(1.0)  # only sample 0's first 2 joints
    assert masked_l1(pred, target, torch.zeros(2, 3)).item() == 0.0  # nothing valid: zero, not NaN
    assert masked_l1(pred, target, torch.tensor([0.0, 1.0])).item() == pytest.approx(5.0)  # per-sample mask


def test_surface_losses_vanish_on_the_target_and_see_distortion():
    target = TETRA[None].repeat(2, 1, 1)
    valid = torch.ones(2)
    assert normal(target, target, valid).item() == pytest.approx(0.0, abs=1e-7)
    assert edge(target, target, valid).item() == 0.0
    scaled = target * 2  # same normals, every edge twice as long
    assert normal(scaled, target, valid).item() == pytest.approx(0.0, abs=1e-7)
    mean_edge = torch.stack([(TETRA[f[[1, 2, 2]]] - TETRA[f[[0, 0, 1]]]).norm(dim=-1) for f in FACES]).mean()
    assert edge(scaled, target, valid).item() == pytest.approx(mean_edge.item(), rel=1e-6)
    flattened = target.clone()
    flattened[:, 3, 2] = 0.2  # tilt three faces
    assert normal(flattened, target, valid).item() > 0.05


def test_normal_loss_is_the_cosine_of_normalised_edges():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 4, 3, generator=g), torch.randn(3, 4, 3, generator=g)
    corners_p, corners_t = pred[:, FACES], target[:, FACES]  # (B, F, 3 corners, 3)

    def edge_vectors(c):
        return torch.stack([c[:, :, 1] - c[:, :, 0], c[:, :, 2] - c[:, :, 0], c[:, :, 2] - c[:, :, 1]], dim=2)

    e_p, e_t = edge_vectors(corners_p), edge_vectors(corners_t)
    n_t = F.normalize(torch.cross(e_t[:, :, 0], e_t[:, :, 1], dim=-1), dim=-1)
    expected = (F.normalize(e_p, dim=-1) * n_t[:, :, None]).sum(-1).abs().mean()
    assert normal(pred, target, torch.ones(3)).item() == pytest.approx(expected.item(), rel=1e-6)
    expected_edge = (e_p.norm(dim=-1) - e_t.norm(dim=-1)).abs().mean()
    assert edge(pred, target, torch.ones(3)).item() == pytest.approx(expected_edge.item(), rel=1e-6)


def test_invalid_meshes_do_not_supervise_surface_terms():
    target = TETRA[None].repeat(2, 1, 1)
    pred = target.clone()
    pred[1] *= 3.0
    only_first = torch.tensor([1.0, 0.0])
    assert edge(pred, target, only_first).item() == 0.0
    noisy_second = pred + torch.randn_like(pred) * torch.tensor([0.0, 1.0])[:, None, None]
    assert normal(noisy_second, target, only_first).item() == pytest.approx(0.0, abs=1e-7)


def test_stage_losses_weighting():
    weights = LossWeights(pose=1.0, mesh=1.0, joint=1.0, normal=0.1, edge=20.0)
    batch = {
        "mesh": TETRA[None], "mesh_valid": torch.ones(1),
        "pose3d": torch.zeros(1, 2, 3), "pose3d_valid": torch.ones(1, 2),
        "pose3d_h36m": torch.zeros(1, 1, 3), "pose3d_h36m_valid": torch.ones(1, 1),
    }  # fmt: skip
    regressor = torch.full((1, 4), 0.25)
    output = SimpleNamespace(
        mesh=TETRA[None] + 0.1, joints=torch.full((1, 2, 3), 0.2), pose3d=torch.full((1, 2, 3), 0.3)
    )
    terms = mesh_losses(output, batch, FACES, regressor, "pose3d_h36m", weights, use_edge=False)
    assert terms["mesh"].item() == pytest.approx(0.1)
    assert terms["mesh_joint"].item() == pytest.approx(0.35, rel=1e-6)  # centroid (0.25,)*3 + 0.1
    assert terms["refined_joint"].item() == pytest.approx(0.2) and terms["pose"].item() == pytest.approx(0.3)
    assert "edge" not in terms
    expected = 0.1 + terms["mesh_joint"] + 0.2 + 0.3 + 0.1 * terms["normal"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    with_edge = mesh_losses(output, batch, FACES, regressor, "pose3d_h36m", weights, use_edge=True)
    assert with_edge["total"].item() == pytest.approx((expected + 20 * with_edge["edge"]).item(), rel=1e-6)
    assert pose_losses(output.pose3d, batch, weights)["total"].item() == pytest.approx(0.3)
