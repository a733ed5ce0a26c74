#!/usr/bin/env python
"""Throughput and peak memory of the pose stream and the full PMCE, against a baseline in the same run.

Usage: python scripts/bench_model.py [--device cpu|cuda] [--threads 2] [--quick] [--cfg FILE] [KEY VALUE ...]

Cases: forward at batch 1 and 32 (eval mode, inference mode) and one training step at batch 32
(forward in train mode + L1 loss + backward + Adam). The baseline is the same network computing
attention and the mesh upsampler the way the official code does (explicit softmax instead of the fused
kernel; the Conv1d call instead of its single-GEMM form), so the ratio shows what our implementation
gains with identical weights and outputs. Every case runs in a fresh process so that its peak memory
(RSS on CPU, allocated memory on GPU) is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config import get_cfg
from lib.constants import NUM_COARSE_VERTICES
from lib.models import decoder
from lib.models.build import build_model

CASES = (("forward", 1), ("forward", 32), ("train", 32))
# Official implementation on a 2-core CPU (../shared/spec/official_pmce_network.md section 8), samples/s.
OFFICIAL_2CORE = {
    ("pose", "forward", 1): 63.1, ("pose", "forward", 32): 67.7, ("pose", "train", 32): 19.6,
    ("mesh", "forward", 1): 11.8, ("mesh", "forward", 32): 28.1, ("mesh", "train", 32): 8.9,
}  # fmt: skip


def explicit_attention(q, k, v, *args, **kwargs):
    """softmax(q k^T / sqrt(d)) v written out, as the official code computes attention."""
    return ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(dim=-1) @ v


def official_conv1d(x: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    """The upsampler as the official code runs it: the Conv1d module itself."""
    return conv(x)


def placeholder_coarse_mesh(num_joints: int) -> SimpleNamespace:
    """Random coarse mesh: timing does not depend on the template's values."""
    g = torch.Generator().manual_seed(0)
    return SimpleNamespace(
        template=torch.rand(NUM_COARSE_VERTICES, 3, generator=g),
        vertex_joint_map=torch.randint(0, num_joints, (NUM_COARSE_VERTICES,), generator=g),
        upsample=(),
    )


def make_inputs(cfg, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    joints = 19 if cfg.MODEL.INPUT_JOINT_SET == "coco19" else 17
    t = cfg.MODEL.SEQ_LEN
    pose2d = torch.rand(batch, t, joints, 2, device=device) * 2 - 1
    return pose2d, torch.relu(torch.randn(batch, t, cfg.MODEL.IMG_FEAT_DIM, device=device))


def time_case(model, cfg, mode: str, batch: int, device: torch.device, repeats: int) -> float:
    """Median seconds per call after two warm-up calls."""
    pose2d, feats = make_inputs(cfg, batch, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-5) if mode == "train" else None

    def step() -> None:
        if optimizer is None:
            with torch.inference_mode():
                model(pose2d, feats)
            return
        out = model(pose2d, feats)
        outputs = [out] if isinstance(out, torch.Tensor) else list(out)
        loss = sum(o.abs().mean() for o in outputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train(mode == "train")
    times = []
    for i in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_case(job: dict) -> dict:
    """Child-process body: build, time one case, report samples/s and peak memory in MB."""
    torch.set_num_threads(job["threads"])
    cfg = get_cfg(job["cfg_path"], job["opts"] + ["STAGE", job["stage"]])
    device = torch.device(job["device"])
    if job["baseline"]:
        torch.nn.functional.scaled_dot_product_attention = explicit_attention
        decoder.conv1d_as_matmul = official_conv1d
    torch.manual_seed(0)
    joints = 19 if cfg.MODEL.INPUT_JOINT_SET == "coco19" else 17
    model = build_model(cfg, placeholder_coarse_mesh(joints)).to(device)
    seconds = time_case(model, cfg, job["mode"], job["batch"], device, job["repeats"])
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return {"samples_per_s": job["batch"] / seconds, "peak_mb": peak_mb}


def repeats_for(mode: str, batch: int, quick: bool) -> int:
    if quick:
        return 2
    return 5 if mode == "train" else (30 if batch == 1 else 7)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the reference CPU has 2 cores)")
    parser.add_argument("--quick", action="store_true", help="2 timed repeats per case (smoke run)")
    parser.add_argument("--cfg", default=None, help="config file (default: the official network)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    rows = []
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        for stage in ("pose", "mesh"):
            for mode, batch in CASES:
                job = dict(
                    stage=stage, mode=mode, batch=batch, device=args.device, threads=args.threads,
                    repeats=repeats_for(mode, batch, args.quick), cfg_path=args.cfg, opts=list(args.opts),
                )  # fmt: skip
                ours = pool.apply(run_case, ({**job, "baseline": False},))
                base = pool.apply(run_case, ({**job, "baseline": True},))
                rows.append((stage, mode, batch, ours, base))
    print_table(rows, args)
    return 0


def print_table(rows: list, args) -> None:
    print(f"device {args.device}, {args.threads} CPU threads, torch {torch.__version__}")
    print("baseline = the same network computing attention and the upsampler as the official code")
    header = f"{'model':<12}{'case':<14}{'ours/s':>9}{'base/s':>9}{'ratio':>7}{'ours MB':>9}{'base MB':>9}"
    print(header + (f"{'official 2-core/s':>19}" if args.device == "cpu" else ""))
    for stage, mode, batch, ours, base in rows:
        name = "pose stream" if stage == "pose" else "full PMCE"
        ratio = ours["samples_per_s"] / base["samples_per_s"]
        case = f"{mode} B={batch}"
        line = (
            f"{name:<12}{case:<14}{ours['samples_per_s']:>9.1f}{base['samples_per_s']:>9.1f}{ratio:>6.2f}x"
            f"{ours['peak_mb']:>9.0f}{base['peak_mb']:>9.0f}"
        )
        if args.device == "cpu":
            line += f"{OFFICIAL_2CORE[(stage, mode, batch)]:>19.1f}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
