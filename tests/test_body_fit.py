"""SMPL fit to predicted vertices: the subset skinning, rotation helpers and the batched Gauss-Newton fit."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from lib.body.fit import SubsetSkinning, fit_smpl, kabsch, select_vertices
from lib.body.rotations import matrix_to_axis_angle, rodrigues, smooth_rotations

# Upside-down and y-down camera-axes orientations, appended to the random ones.
SPECIAL_ORIENTS = ([math.pi, 0, 0], [0, 0, math.pi], [0, math.pi, 0], [math.pi / 2, 0, 0])


def random_rotations(n: int, g: torch.Generator) -> torch.Tensor:
    """(n, 3, 3) uniformly random rotations."""
    q = torch.linalg.qr(torch.randn(n, 3, 3, generator=g)).Q
    return q * torch.linalg.det(q).sign()[:, None, None]


def random_track(body, n: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices (n + 4, V, 3) of plausible random poses and one random shape, and the betas (10,)."""
    g = torch.Generator().manual_seed(seed)
    pose = 0.3 * torch.randn(n + 4, 72, generator=g)  # ~17 degrees per body-pose angle
    pose[:n, :3] = matrix_to_axis_angle(random_rotations(n, g))
    pose[n:, :3] = torch.tensor(SPECIAL_ORIENTS)
    betas = torch.randn(10, generator=g)
    transl = torch.randn(n + 4, 3, generator=g)
    with torch.no_grad():
        vertices = body.vertices(pose, betas.expand(n + 4, -1), transl, "neutral")
    return vertices, betas


# One torch thread: on a busy 2-core CPU extra OpenMP threads mostly wait (see lib.body.fit).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def blended_body(synthetic_body_model):
    """The generated body (no pose blend shapes of its own) with random ones (~1 cm) on the neutral layer."""
    body = copy.deepcopy(synthetic_body_model)
    layer = body.layers["neutral"]
    g = torch.Generator().manual_seed(7)
    layer.posedirs = 1.5e-3 * torch.randn(layer.posedirs.shape, generator=g)
    return body


def test_subset_skinning_matches_smplx(synthetic_body_model, blended_body):
    layer = blended_body.layers["neutral"]
    index = select_vertices(layer.lbs_weights, stride=8, min_per_part=20)
    assert 900 < len(index) < 1100 and len(torch.unique(layer.lbs_weights[index].argmax(1))) == 24
    skin = SubsetSkinning(layer, index)
    g = torch.Generator().manual_seed(1)
    pose, betas, transl = (
        0.5 * torch.randn(3, 72, generator=g),
        torch.randn(10, generator=g),
        torch.randn(3, 3),
    )
    with torch.no_grad():
        expected = blended_body.vertices(pose, betas.expand(3, -1), transl, "neutral")[:, index]
        plain = synthetic_body_model.vertices(pose, betas.expand(3, -1), transl, "neutral")[:, index]
        assert (expected - plain).norm(dim=-1).mean() > 3e-3  # the pose blend shapes matter
        local = rodrigues(pose.view(3, 24, 3))
        torch.testing.assert_close(skin(local, betas, transl), expected, atol=2e-6, rtol=0)
        step = torch.randn(10, generator=g)  # vertices are affine in betas: the Jacobian is exact
        moved = skin(local, betas + step, transl) - skin(local, betas, transl)
        torch.testing.assert_close(skin.shape_jacobian(skin.chain(local)) @ step, moved, atol=2e-5, rtol=0)


def test_rotation_helpers():
    g = torch.Generator().manual_seed(2)
    axes = torch.nn.functional.normalize(torch.randn(8, 3, generator=g), dim=1)
    angles = torch.tensor([0.0, 1e-7, 1e-3, 0.5, 2.0, 3.0, math.pi - 1e-4, math.pi])
    rotvec = axes * angles[:, None]
    back = matrix_to_axis_angle(rodrigues(rotvec))
    torch.testing.assert_close(rodrigues(back), rodrigues(rotvec), atol=1e-6, rtol=0)
    torch.testing.assert_close(back[:-2], rotvec[:-2], atol=1e-5, rtol=0)  # unique below pi
    rot = random_rotations(4, g)
    x = torch.randn(30, 3, generator=g)
    y = x @ rot.transpose(1, 2) + torch.randn(4, 1, 3, generator=g)
    found, t = kabsch(x, y, torch.rand(30, 2, generator=g))
    torch.testing.assert_close(found, rot[:, None].expand(-1, 2, -1, -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(x @ found[:, 0].transpose(1, 2) + t[:, :1], y, atol=1e-5, rtol=0)


@pytest.mark.parametrize("blend", [False, True], ids=["plain", "pose-blend-shapes"])
def test_fit_recovers_a_clean_track(synthetic_body_model, blended_body, blend):
    body = blended_body if blend else synthetic_body_model
    vertices, betas = random_track(body)
    fit = fit_smpl(body, vertices.numpy())  # numpy in, any global orientation
    # measured: mean 0.13 mm (plain) / 0.16 mm (blend shapes), worst frame 0.21 / 0.27 mm, betas within 0.06
    assert fit.mean_vertex_error_m < 0.5e-3 and fit.vertex_error_m.max() < 1.5e-3
    assert np.abs(fit.betas - betas.numpy()).max() < 0.3
    assert fit.pose.shape == (28, 72) and fit.betas.shape == (10,) and fit.transl.shape == (28, 3)
    assert all(a.dtype == np.float32 for a in (fit.pose, fit.betas, fit.transl, fit.vertices))
    with torch.no_grad():
        params = (torch.from_numpy(a) for a in (fit.pose, np.tile(fit.betas, (28, 1)), fit.transl))
        again = body.vertices(*params, "neutral")
    np.testing.assert_allclose(again.numpy(), fit.vertices, atol=1e-6)
    errors = np.linalg.norm(fit.vertices - vertices.numpy(), axis=-1).mean(1)
    np.testing.assert_allclose(fit.vertex_error_m, errors, rtol=1e-4, atol=1e-7)


def test_fit_of_a_noisy_track_reaches_the_noise_floor(synthetic_body_model):
    vertices, _ = random_track(synthetic_body_model, seed=3)
    sigma = 5e-3
    noisy = vertices + sigma * torch.randn(vertices.shape, generator=torch.Generator().manual_seed(4))
    fit = fit_smpl(synthetic_body_model, noisy)
    floor = sigma * math.sqrt(8 / math.pi)  # mean length of 3D Gaussian noise: 7.98 mm
    # measured: 8.03 mm to the noisy target (floor 7.98 mm), 1.14 mm to the clean one
    assert floor < fit.mean_vertex_error_m < 1.02 * floor
    assert np.linalg.norm(fit.vertices - vertices.numpy(), axis=-1).mean() < 2e-3


def test_fit_is_deterministic_and_checks_its_input(synthetic_body_model):
    vertices, _ = random_track(synthetic_body_model, n=6, seed=5)
    first, second = (fit_smpl(synthetic_body_model, vertices, iters=2) for _ in range(2))
    for a, b in zip(first.__dict__.values(), second.__dict__.values(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="gender"):
        fit_smpl(synthetic_body_model, vertices, gender="robot")
    with pytest.raises(ValueError, match="6890"):
        fit_smpl(synthetic_body_model, vertices[:, :100])
    vertices[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit_smpl(synthetic_body_model, vertices)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_fit_on_gpu_matches_cpu(synthetic_body_model):
    vertices, _ = random_track(synthetic_body_model, seed=6)
    cpu = fit_smpl(synthetic_body_model, vertices)
    gpu = fit_smpl(copy.deepcopy(synthetic_body_model).to("cuda"), vertices.cuda())
    assert gpu.mean_vertex_error_m < 0.5e-3
    np.testing.assert_allclose(gpu.vertices, cpu.vertices, atol=1e-3)


def test_smoothing_rotations_keeps_a_steady_turn_and_removes_jitter():
    g = torch.Generator().manual_seed(3)
    angles = torch.linspace(0, 1.5, 40)
    steady = rodrigues(torch.stack([torch.zeros(40), angles, torch.zeros(40)], 1))  # (40, 3, 3)
    noisy = rodrigues(matrix_to_axis_angle(steady) + 0.05 * torch.randn(40, 3, generator=g))
    smooth = smooth_rotations(noisy, sigma=2.0)
    torch.testing.assert_close(
        smooth @ smooth.transpose(1, 2), torch.eye(3).expand(40, 3, 3), atol=1e-5, rtol=0
    )
    err_noisy = (noisy - steady)[5:-5].norm(dim=(1, 2)).mean()
    err_smooth = (smooth - steady)[5:-5].norm(dim=(1, 2)).mean()
    assert err_smooth < 0.5 * err_noisy  # averaging ~7 frames cuts independent noise by more than half
    torch.testing.assert_close(smooth_rotations(steady, 2.0)[5:-5], steady[5:-5], atol=2e-3, rtol=0)
    assert smooth_rotations(noisy, 0.0) is noisy


def test_fit_videos_fits_each_video_in_frame_order_and_keeps_the_rows(synthetic_body_model):
    """EVAL.FIT_BODY: rows of two videos, interleaved and out of frame order, come back row for row as the
    fitted bodies; unfiltered (sigma 0) they equal the clean targets within a few mm, and filtering a track
    with a jump at one frame spreads it over its neighbours."""
    from lib.eval.body_fit import fit_videos

    a, _ = random_track(synthetic_body_model, n=6, seed=1)
    b, _ = random_track(synthetic_body_model, n=6, seed=2)
    meshes = torch.cat([a, b])
    videos = ["a"] * len(a) + ["b"] * len(b)
    frames = np.r_[np.arange(len(a)), np.arange(len(b))]
    order = np.random.default_rng(0).permutation(len(meshes))
    shuffled = fit_videos(
        [videos[i] for i in order], frames[order], meshes[order], synthetic_body_model, 4, 0.0
    )
    error = (shuffled - meshes[order]).norm(dim=-1).mean(dim=1)
    assert error.max() < 0.005, error  # metres
    still = a[:1].expand(9, -1, -1).clone()
    still[4] += torch.tensor([0.0, 0.1, 0.0])  # one frame 10 cm off
    smooth = fit_videos(["c"] * 9, np.arange(9), still, synthetic_body_model, 4, 1.5)
    offset = (smooth - a[:1]).mean(dim=1)[:, 1]  # (9,) mean y offset per frame
    assert 0.01 < offset[4] < 0.06 and offset[3] > 0.005 and abs(offset[0]) < 0.002, offset
