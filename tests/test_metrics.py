"""Metric primitives on hand-computed cases, the protocols' modes, and the official-fixture check."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lib import metrics
from lib.eval import protocols
from scripts import check_metrics_fixture
from tests.conftest import REFERENCE, needs_reference

FIXTURE = REFERENCE / "metrics_seed0.pt"
needs_fixture = needs_reference(FIXTURE)


def rotation_z(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


# ----------------------------------------------------------------------------------------- fixture check
@needs_fixture
def test_fixture_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_metrics_fixture.main([str(FIXTURE)]) == 0
    assert "FAIL" not in capsys.readouterr().out


@needs_fixture
def test_fixture_check_detects_a_wrong_value(tmp_path: Path) -> None:
    fixture = torch.load(FIXTURE, weights_only=True)
    fixture["pa_mpjpe"] *= 1 + 1e-5
    torch.save(fixture, tmp_path / "wrong.pt")
    assert check_metrics_fixture.main([str(tmp_path / "wrong.pt")]) == 1


@needs_fixture
def test_fixture_check_names_a_missing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = torch.load(FIXTURE, weights_only=True)
    del fixture["accel_official"]
    torch.save(fixture, tmp_path / "partial.pt")
    assert check_metrics_fixture.main([str(tmp_path / "partial.pt")]) == 2
    assert "'accel_official'" in capsys.readouterr().err


def test_fixture_check_missing_file(tmp_path: Path) -> None:
    assert check_metrics_fixture.main([str(tmp_path / "absent.pt")]) == 2


# ------------------------------------------------------------------------------------------- primitives
def test_mpjpe_known_offsets() -> None:
    gt = torch.zeros(2, 3, 3, dtype=torch.float64)
    offsets = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [1.0, 2.0, 2.0]], dtype=torch.float64)
    pred = gt + offsets  # per-joint errors 5, 1, 3 in both frames
    expected = torch.tensor([[5.0, 1.0, 3.0]] * 2, dtype=torch.float64)
    assert torch.equal(metrics.point_errors(pred, gt), expected)
    assert metrics.mpjpe(pred, gt).item() == pytest.approx(3.0)
    assert metrics.pve(pred, gt).item() == pytest.approx(3.0)


def test_pa_mpjpe_of_a_similar_copy_is_zero_and_recovers_the_transform() -> None:
    gt = torch.randn(4, 14, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rotation, scale, shift = rotation_z(0.7), 1.7, torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64)
    pred = (gt @ rotation.T) * scale + shift
    fit = metrics.similarity_procrustes(pred, gt)
    assert metrics.pa_mpjpe(pred, gt).item() < 1e-12
    torch.testing.assert_close(fit.aligned, gt)
    torch.testing.assert_close(fit.scale, torch.full((4,), 1 / scale, dtype=torch.float64))
    torch.testing.assert_close(fit.rotation, rotation.T.expand(4, 3, 3))


def test_pa_frames_with_nan_or_inf_give_nan_and_leave_the_others_exact() -> None:
    gt = torch.randn(4, 14, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    pred = (gt @ rotation_z(0.3).T) * 2.0 + 1.0
    reference = metrics.pa_point_errors(pred, gt)
    pred[1, 5, 0], pred[3, 0, 2] = math.nan, math.inf  # torch.linalg.svd would raise LinAlgError on them
    errors = metrics.pa_point_errors(pred, gt)
    assert errors[[1, 3]].isnan().all() and torch.equal(errors[[0, 2]], reference[[0, 2]])
    assert math.isnan(metrics.pa_mpjpe(pred, gt).item())


def test_pa_reflection_gives_a_proper_rotation_no_worse_than_random_rotations() -> None:
    gen = torch.Generator().manual_seed(1)
    gt = torch.randn(1, 14, 3, dtype=torch.float64, generator=gen)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    fit = metrics.similarity_procrustes(mirrored, gt)
    assert torch.linalg.det(fit.rotation).item() == pytest.approx(1.0)
    best = metrics.mpjpe(fit.aligned, gt).item()
    assert best > 0.1  # a reflection cannot be undone by a rotation
    rotations, _ = torch.linalg.qr(torch.randn(500, 3, 3, dtype=torch.float64, generator=gen))
    rotations = rotations * torch.linalg.det(rotations)[:, None, None]  # proper rotations only
    candidates = mirrored @ rotations.transpose(1, 2)  # (500, 14, 3)
    rescaled = metrics.similarity_procrustes(candidates, gt.expand(500, 14, 3))
    assert best <= metrics.point_errors(rescaled.aligned, gt).mean(dim=1).min().item() + 1e-9


def test_accel_of_constant_velocity_motion_is_zero() -> None:
    t = torch.arange(10, dtype=torch.float64)[:, None, None]  # (L, 1, 1)
    pred = torch.randn(1, 5, 3, dtype=torch.float64) + t * torch.randn(1, 5, 3, dtype=torch.float64)
    gt = torch.randn(1, 5, 3, dtype=torch.float64) + t * torch.randn(1, 5, 3, dtype=torch.float64)
    errors = metrics.accel_error(pred, gt)
    assert errors.shape == (8,)
    assert errors.abs().max().item() < 1e-12


def test_official_and_interior_accel_aggregation_by_hand() -> None:
    # One joint moving along x, gt at rest. Sequence 'a' (4 frames): x = 0, 0, 1, 0 -> second differences
    # 1, -2 -> errors 1, 2. Sequence 'b' (3 frames): x = 0, -1.5, 0 -> error 3.
    x = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, -1.5, 0.0], dtype=torch.float64)
    pred = torch.zeros(7, 1, 3, dtype=torch.float64)
    pred[:, 0, 0] = x
    per_seq = metrics.accel_per_sequence(pred, torch.zeros_like(pred), ["a"] * 4 + ["b"] * 3)
    assert [e.tolist() for e in per_seq] == [[1.0, 2.0], [3.0]]
    # official: (4 * mean(0, 1, 2, 0) + 3 * mean(0, 3, 0)) / 7 = 6 / 7; interior: mean(1, 2, 3) = 2
    assert metrics.accel_official(per_seq, 7).item() == pytest.approx(6 / 7)
    assert metrics.accel_interior_mean(per_seq).item() == pytest.approx(2.0)
    valid = torch.tensor([True, True, True, False, True, True, True])  # drops the triplet 1, 2, 3
    masked = metrics.accel_per_sequence(pred, torch.zeros_like(pred), ["a"] * 4 + ["b"] * 3, valid)
    assert [e.tolist() for e in masked] == [[1.0], [3.0]]


def test_sequence_spans_are_runs_of_equal_consecutive_ids() -> None:
    assert metrics.sequence_spans(["a", "a", "b", "a"]) == [(0, 2), (2, 3), (3, 4)]
    assert metrics.sequence_spans(torch.tensor([7, 7, 7])) == [(0, 3)]


def test_pck_and_auc_on_known_errors() -> None:
    errors = torch.tensor([[0.0, 50.0, 100.0, 149.9, 150.0, 200.0]], dtype=torch.float64)
    assert metrics.pck(errors).item() == pytest.approx(4 / 6)  # strictly below 150 mm
    # thresholds 0, 5, ..., 150 that exceed each error: 30 + 20 + 10 + 1 + 0 + 0 = 61 of 31 * 6
    assert metrics.auc(errors).item() == pytest.approx(61 / (31 * 6))
    assert len(metrics.AUC_THRESHOLDS_MM) == 31 and metrics.AUC_THRESHOLDS_MM[-1] == 150.0


def test_group_means() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 6.0])
    means = metrics.group_means(values, ["walk", "sit", "walk", "sit"])
    assert list(means) == ["walk", "sit"]
    assert [m.item() for m in means.values()] == [2.0, 4.0]


def test_metrics_keep_dtype() -> None:
    pred, gt = torch.randn(3, 14, 3, dtype=torch.float64), torch.randn(3, 14, 3, dtype=torch.float64)
    assert metrics.pa_mpjpe(pred, gt).dtype == torch.float64
    assert metrics.pa_mpjpe(pred.float(), gt.float()).dtype == torch.float32


# -------------------------------------------------------------------------------------------- protocols
def test_mpii3d_root_in_mean_lowers_mpjpe_by_16_over_17() -> None:
    gen = torch.Generator().manual_seed(2)
    pred, gt = torch.randn(6, 17, 3, generator=gen), torch.randn(6, 17, 3, generator=gen)
    seq_ids = [0] * 6
    official = protocols.evaluate_mpii3d_joints(pred.double(), gt.double(), seq_ids, mode="official")
    full = protocols.evaluate_mpii3d_joints(pred.double(), gt.double(), seq_ids, mode="full")
    assert official["MPJPE"] == pytest.approx(full["MPJPE"] * 16 / 17)


def test_mpii3d_full_mode_uses_valid_frames_only() -> None:
    gen = torch.Generator().manual_seed(3)
    pred, gt = torch.randn(6, 17, 3, generator=gen), torch.randn(6, 17, 3, generator=gen)
    valid = torch.tensor([True, True, False, True, True, True])
    masked = protocols.evaluate_mpii3d_joints(pred, gt, [0] * 6, valid=valid)
    subset = protocols.evaluate_mpii3d_joints(pred[valid], gt[valid], [0] * 5)
    for key in ("MPJPE", "PA-MPJPE", "PCK", "AUC"):
        assert masked[key] == pytest.approx(subset[key])
    ignored = protocols.evaluate_mpii3d_joints(pred, gt, [0] * 6, valid=valid, mode="official")
    assert ignored == protocols.evaluate_mpii3d_joints(pred, gt, [0] * 6, mode="official")


def test_mesh_protocol_ignores_a_global_translation() -> None:
    gen = torch.Generator().manual_seed(4)
    gt = torch.randn(5, 30, 3, dtype=torch.float64, generator=gen)
    pred = gt + torch.randn(5, 1, 3, dtype=torch.float64, generator=gen)
    smpl_regressor = torch.softmax(torch.randn(24, 30, dtype=torch.float64, generator=gen), dim=1)
    h36m_regressor = torch.softmax(torch.randn(17, 30, dtype=torch.float64, generator=gen), dim=1)
    for mode in protocols.MODES:
        results = protocols.evaluate_mesh_sequences(pred, gt, [0] * 5, smpl_regressor, h36m_regressor, mode)
        assert set(results) == {"MPJPE", "PA-MPJPE", "PVE", "ACCEL"}
        assert max(results.values()) < 1e-9


def test_h36m_reports_per_action_means_in_mm() -> None:
    gt = torch.randn(4, 17, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    pred = gt.clone()
    offsets_m = torch.tensor([0.001, 0.003, 0.002, 0.004], dtype=torch.float64)  # 1, 3, 2, 4 mm
    pred[:, 1:, 0] += offsets_m[:, None]
    actions = ["Walking", "Eating", "Walking", "Eating"]
    results = protocols.evaluate_h36m_joints(pred, gt, [0] * 4, actions)
    assert results["MPJPE"] == pytest.approx(2.5)
    assert results["MPJPE/Walking"] == pytest.approx(1.5)
    assert results["MPJPE/Eating"] == pytest.approx(3.5)
    assert results["PA-MPJPE/Walking"] == pytest.approx(0.0, abs=1e-9)  # a translation of the eval joints


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))],
)
def test_protocols_run_on_the_device_of_the_inputs(device: str) -> None:
    gen = torch.Generator().manual_seed(6)
    pred, gt = torch.randn(2, 8, 17, 3, generator=gen).to(device)
    valid = torch.ones(8, dtype=torch.bool, device=device)
    on_device = protocols.evaluate_mpii3d_joints(pred, gt, torch.zeros(8, device=device), valid=valid)
    on_cpu = protocols.evaluate_mpii3d_joints(pred.cpu(), gt.cpu(), [0] * 8, valid=valid.cpu())
    assert on_device == pytest.approx(on_cpu, rel=1e-4)
    actions = ["a", "b"] * 4
    assert protocols.evaluate_h36m_joints(pred, gt, [0] * 8, actions)["MPJPE/a"] > 0


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown evaluation mode"):
        protocols.evaluate_mpii3d_joints(torch.zeros(3, 17, 3), torch.zeros(3, 17, 3), [0] * 3, mode="vibe")
