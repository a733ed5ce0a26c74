"""Compare our metrics with the official PMCE ones stored in a fixture (format of metrics_seed0.pt).

Usage: python scripts/check_metrics_fixture.py FIXTURE

Recomputes every primitive-level value (float64, inputs in mm as the official Tester feeds them) and the
pipeline-level 3DPW evaluation (official mode, in float32 as the official run and in float64) and prints
one row per value. The relative difference is normwise in the max norm: max|ours - official| /
max(max|official|, 1e-12), so exact zeros do not blow it up.
Exit status: 0 all within tolerance, 1 some value differs by more than 1e-6 relative (or a printed
2-decimal value by more than 0.005), 2 missing or malformed fixture.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lib import metrics  # noqa: E402
from lib.constants import H36M_EVAL_JOINTS  # noqa: E402
from lib.eval.protocols import MM_PER_M, evaluate_mesh_sequences  # noqa: E402

REL_TOL = 1e-6
PRINTED_ABS_TOL = 0.005 + 1e-9  # values printed with 2 decimals
PIPELINE_KEYS = {"MPJPE": "H36M MPJPE", "PA-MPJPE": "H36M PA-MPJPE", "PVE": "MPVPE", "ACCEL": "H36M ACCEL"}
REQUIRED_KEYS = (
    "pred_joints_m", "gt_joints_m", "pred_verts_m", "gt_verts_m", "mpjpe_per_joint", "mpjpe",
    "pa_aligned_pred_mm", "pa_mpjpe_per_joint", "pa_mpjpe", "pa_scale", "pa_R", "pa_t", "pve_per_vertex",
    "pve", "seq_lengths", "accel_official", "accel_interior_mean", "standin_J_regressor_smpl",
    "J_regressor_h36m", "h36m_eval_joints", "pipeline_full_precision", "pipeline_printed",
)  # fmt: skip


class Row(NamedTuple):
    """One compared value."""

    name: str
    ours: str
    official: str
    abs_diff: float
    rel_diff: float
    ok: bool


class FixtureError(Exception):
    """The fixture file is missing or does not have the expected content."""


def load_fixture(path: Path) -> dict[str, Any]:
    """Load the fixture and check that every key the comparison needs is present."""
    if not path.is_file():
        raise FixtureError(f"fixture file not found: {path}")
    try:
        fixture = torch.load(path, weights_only=True)
    except Exception as err:
        raise FixtureError(f"cannot read fixture {path}: {err}") from err
    if not isinstance(fixture, dict):
        raise FixtureError(f"fixture {path} holds a {type(fixture).__name__}, expected a dict")
    accel_keys = [f"accel_per_frame_seq{i}" for i in range(len(fixture.get("seq_lengths", [])))]
    for key in (*REQUIRED_KEYS, *accel_keys):
        if key not in fixture:
            raise FixtureError(f"fixture {path} lacks the key {key!r}")
    for group in ("pipeline_full_precision", "pipeline_printed"):
        for key in PIPELINE_KEYS.values():
            if key not in fixture[group]:
                raise FixtureError(f"fixture {path} lacks the key {group}[{key!r}]")
    return fixture


def sequence_ids(seq_lengths: Sequence[int]) -> list[int]:
    """Sequence index of every frame, e.g. [2, 1] -> [0, 0, 1]."""
    return [i for i, length in enumerate(seq_lengths) for _ in range(length)]


def primitive_values(fx: dict[str, Any]) -> dict[str, Tensor]:
    """Every primitive-level value of the fixture, recomputed with lib.metrics in float64 mm."""
    pred, gt = fx["pred_joints_m"].double() * MM_PER_M, fx["gt_joints_m"].double() * MM_PER_M
    pred_verts, gt_verts = fx["pred_verts_m"].double() * MM_PER_M, fx["gt_verts_m"].double() * MM_PER_M
    aligned = metrics.similarity_procrustes(pred, gt)
    accel = metrics.accel_per_sequence(pred, gt, sequence_ids(fx["seq_lengths"]))
    values = {
        "mpjpe_per_joint": metrics.point_errors(pred, gt),
        "mpjpe": metrics.mpjpe(pred, gt),
        "pa_aligned_pred_mm": aligned.aligned,
        "pa_scale": aligned.scale,
        "pa_R": aligned.rotation,
        "pa_t": aligned.translation,
        "pa_mpjpe_per_joint": metrics.pa_point_errors(pred, gt),
        "pa_mpjpe": metrics.pa_mpjpe(pred, gt),
        "pve_per_vertex": metrics.point_errors(pred_verts, gt_verts),
        "pve": metrics.pve(pred_verts, gt_verts),
        "accel_official": metrics.accel_official(accel, pred.shape[0]),
        "accel_interior_mean": metrics.accel_interior_mean(accel),
    }
    values.update({f"accel_per_frame_seq{i}": err for i, err in enumerate(accel)})
    return values


def pipeline_values(fx: dict[str, Any], dtype: torch.dtype, mode: str = "official") -> dict[str, float]:
    """The 3DPW evaluation on the fixture meshes, in the given dtype and mode."""
    return evaluate_mesh_sequences(
        fx["pred_verts_m"].to(dtype),
        fx["gt_verts_m"].to(dtype),
        sequence_ids(fx["seq_lengths"]),
        fx["standin_J_regressor_smpl"],
        fx["J_regressor_h36m"],
        mode=mode,
    )


def differences(ours: Tensor | float, official: Tensor | float) -> tuple[float, float]:
    """(max abs difference, normwise relative difference). Raises FixtureError on a shape mismatch."""
    a = torch.as_tensor(ours, dtype=torch.float64)
    b = torch.as_tensor(official, dtype=torch.float64)
    if a.shape != b.shape:
        raise FixtureError(f"shape mismatch: ours {tuple(a.shape)}, fixture {tuple(b.shape)}")
    abs_diff = (a - b).abs().max().item() if b.numel() else 0.0
    scale = max(b.abs().max().item() if b.numel() else 0.0, 1e-12)
    return abs_diff, abs_diff / scale


def describe(value: Tensor | float) -> str:
    """A scalar as a number, a tensor as its shape."""
    value = torch.as_tensor(value, dtype=torch.float64)
    return f"{value.item():.10g}" if value.numel() == 1 else f"tensor{tuple(value.shape)}"


def compare(fx: dict[str, Any]) -> list[Row]:
    """One row per checked value."""
    rows = []

    def add(name: str, ours: Tensor | float, official: Tensor | float, ok_abs: float | None = None) -> None:
        abs_diff, rel_diff = differences(ours, official)
        ok = abs_diff <= ok_abs if ok_abs is not None else rel_diff <= REL_TOL
        rows.append(Row(name, describe(ours), describe(official), abs_diff, rel_diff, ok))

    add("h36m_eval_joints", torch.tensor(H36M_EVAL_JOINTS), torch.tensor(fx["h36m_eval_joints"]))
    for name, ours in primitive_values(fx).items():
        add(name, ours, fx[name])
    for dtype in (torch.float32, torch.float64):
        for ours_key, value in pipeline_values(fx, dtype).items():
            official = fx["pipeline_full_precision"][PIPELINE_KEYS[ours_key]]
            add(f"pipeline[{str(dtype)[6:]}] {ours_key}", value, official)
    for ours_key, value in pipeline_values(fx, torch.float32).items():
        official = fx["pipeline_printed"][PIPELINE_KEYS[ours_key]]
        add(f"printed(2dp) {ours_key}", value, official, ok_abs=PRINTED_ABS_TOL)
    return rows


def format_table(rows: list[Row]) -> str:
    lines = [f"{'name':<26} {'ours':>17} {'official':>17} {'max abs diff':>13} {'max rel diff':>13}  ok"]
    for r in rows:
        flag = "ok" if r.ok else "FAIL"
        lines.append(
            f"{r.name:<26} {r.ours:>17} {r.official:>17} {r.abs_diff:>13.3e} {r.rel_diff:>13.3e}  {flag}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixture", type=Path, help="e.g. ../shared/reference/metrics_seed0.pt")
    args = parser.parse_args(argv)
    try:
        fixture = load_fixture(args.fixture)
        rows = compare(fixture)
    except FixtureError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(rows))
    print(
        f"relative difference = max|ours - official| / max(max|official|, 1e-12) per value; tolerance "
        f"{REL_TOL:g} (printed 2-decimal values: absolute {PRINTED_ABS_TOL:.3g})"
    )
    corrected = {k: round(v, 4) for k, v in pipeline_values(fixture, torch.float64, mode="full").items()}
    print(f"full-mode (corrected) 3DPW values, for information: {corrected}")
    failures = [row.name for row in rows if not row.ok]
    summary = f"{len(rows) - len(failures)}/{len(rows)} values agree"
    print(summary + (f"; FAILED: {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
