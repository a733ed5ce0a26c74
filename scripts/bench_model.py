#!/usr/bin/env python
"""Throughput and peak memory of the pose stream and the full PMCE: ours (the fast path) against a baseline
measured in the same run and the official code's figures on the reference CPU.

Usage: python scripts/bench_model.py [--device cpu|cuda] [--threads 2] [--quick] [--precision auto]
                                     [--compile] [--cases mesh:forward:32,...] [--cfg FILE] [KEY VALUE ...]

Cases: forward at batch 1 and 32 (eval mode, inference mode), one training step at batch 32 (forward in
train mode + L1 loss + backward + Adam), and, for the full model, a whole video: every frame predicted from
its own window (replicate-padded at the ends, 32 windows a call), in frames/s.

* ours: the fast path. Forward and video in ``--precision`` (default 'auto': bfloat16 where the device has
  it natively, lib/models/precision.py), the video with each frame's per-frame parts computed once
  (lib/models/shared_frames.py); training under bfloat16 autocast where native (TRAIN.AMP bf16), with
  the optimiser train.py builds (lib/engine/build.py: Adam's fused kernel).
* base: the same network and weights computing the official way, float32: the decoder's attention as an
  explicit softmax (the pose stream's is fused, as timm runs it), the Conv1d upsampler call, the
  whole-sequence nn.GRU, every block's joint branch, AdaLN's std kernel, window by window, Adam per
  tensor. It tracks what the code gains on this machine whatever the machine's load.
* official: the official code measured on the reference machine kind (2-core AVX-512 CPU, 2 threads,
  ../shared/spec/environment_facts.md); the whole-video figure is its window-by-window forward at batch
  32 (one frame per window). Only comparable on that machine kind, with the machine otherwise idle:
  the load average is printed with the table.

Every case runs in a fresh process so that its peak memory (RSS on CPU, allocated memory on GPU) is its own.

``--profile`` also splits one call of ours by kind of operation (torch.profiler, self time): the matrix
products and fused attention, the other kernels, and what is left (Python, dispatch). The products alone
bound what any implementation of the network at this precision can reach on the machine: ``ceiling`` is
the samples/s if everything else took no time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config import get_cfg
from lib.constants import NUM_COARSE_VERTICES
from lib.data.windows import make_windows
from lib.engine.build import build_optimizer
from lib.models import coevo_block, decoder, layers, norms
from lib.models.build import build_model
from lib.models.precision import inference_dtype, reduced_precision
from lib.models.shared_frames import SharedFrames

CASES = (
    ("pose", "forward", 1), ("pose", "forward", 32), ("pose", "train", 32),
    ("mesh", "forward", 1), ("mesh", "forward", 32), ("mesh", "train", 32), ("mesh", "video", 32),
)  # fmt: skip
# The official code on the reference CPU (environment_facts.md), samples (video: frames) per second.
OFFICIAL_CPU = {
    ("pose", "forward", 1): 69.3, ("pose", "forward", 32): 69.8, ("pose", "train", 32): 19.6,
    ("mesh", "forward", 1): 15.1, ("mesh", "forward", 32): 32.6, ("mesh", "train", 32): 9.4,
    ("mesh", "video", 32): 32.6,
}  # fmt: skip
# Issue 16's targets: ours / official.
TARGETS = {("mesh", "forward", 32): 2.5, ("mesh", "forward", 1): 2.0, ("mesh", "train", 32): 1.5,
           ("pose", "train", 32): 1.5, ("mesh", "video", 32): 5.0}  # fmt: skip
VIDEO_FRAMES = 160  # frames of the whole-video case (5 calls of 32 windows)


def explicit_attention(q, k, v, *args, **kwargs):
    """softmax(q k^T / sqrt(d)) v written out, as the official code computes attention."""
    return ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(dim=-1) @ v


def use_official_computation() -> None:
    """Patch this process's modules to compute as the official code does (same weights, same outputs)."""
    forward_cond = decoder.MeshDecoder.forward_cond

    def explicit_attention_in_decoder(self, joints, cond):
        fused, layers.attention = layers.attention, explicit_attention
        try:
            return forward_cond(self, joints, cond)
        finally:
            layers.attention = fused

    decoder.MeshDecoder.forward_cond = explicit_attention_in_decoder
    decoder.conv1d_as_matmul = lambda x, conv: conv(x)
    decoder.MeshDecoder.image_feature = lambda self, feat: (
        None if self.gru_cur is None else self.gru_cur(feat.transpose(0, 1))[0][self.target_index]
    )
    block_forward = coevo_block.CoevoBlock.forward
    coevo_block.CoevoBlock.forward = lambda self, j, v, c, need_joints=True: block_forward(
        self, j, v, c, True
    )

    def official_adaln(self, x, cond):
        gamma, beta = self.gamma_beta(cond)
        return gamma * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + self.eps) + beta

    norms.OfficialAdaLN.forward = official_adaln


def placeholder_coarse_mesh(num_joints: int) -> SimpleNamespace:
    """Random coarse mesh: timing does not depend on the template's values."""
    g = torch.Generator().manual_seed(0)
    return SimpleNamespace(
        template=torch.rand(NUM_COARSE_VERTICES, 3, generator=g),
        vertex_joint_map=torch.randint(0, num_joints, (NUM_COARSE_VERTICES,), generator=g),
        upsample=(),
    )


def make_inputs(cfg, batch: int, device: torch.device, frames: int | None = None):
    """pose2d (B, T, J, 2) in [-1, 1] and img_feat (B, T, D) >= 0; with ``frames``: (N, J, 2), (N, D)."""
    joints = 19 if cfg.MODEL.INPUT_JOINT_SET == "coco19" else 17
    lead = (frames,) if frames is not None else (batch, cfg.MODEL.SEQ_LEN)
    pose2d = torch.rand(*lead, joints, 2, device=device) * 2 - 1
    return pose2d, torch.relu(torch.randn(*lead, cfg.MODEL.IMG_FEAT_DIM, device=device))


def step_function(model, cfg, job: dict, device: torch.device):
    """(the timed call, its sample count) for one case; ours runs in ``job['dtype']``."""
    mode, batch, fast = job["mode"], job["batch"], not job["baseline"]
    if mode == "train":
        # ours: the optimiser train.py builds (Adam's fused kernel, ~7x faster a step on CPU for the
        # official network's 103M parameters); base: the official code's per-tensor Adam
        optimizer = build_optimizer(cfg, model) if fast else torch.optim.Adam(model.parameters(), lr=5e-5)
        pose2d, feats = make_inputs(cfg, batch, device)
        amp = fast and job["dtype"] == torch.bfloat16

        def train_step() -> None:
            with torch.autocast(device.type, torch.bfloat16) if amp else nullcontext():
                out = model(pose2d, feats)
            loss = sum(o.abs().mean() for o in ([out] if isinstance(out, torch.Tensor) else out))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return train_step, batch
    if mode == "video":
        pose2d, feats = make_inputs(cfg, batch, device, frames=VIDEO_FRAMES)
        windows = torch.from_numpy(make_windows(VIDEO_FRAMES, cfg.MODEL.SEQ_LEN)[0]).to(device)

        def video() -> None:
            run = SharedFrames(model) if fast else None  # a fresh cache: every frame computed in the call
            for b in range(0, len(windows), batch):
                rows = windows[b : b + batch]
                model(pose2d[rows], feats[rows]) if run is None else run(pose2d[rows], feats[rows], rows)

        return video, VIDEO_FRAMES
    pose2d, feats = make_inputs(cfg, batch, device)
    return (lambda: model(pose2d, feats)), batch


# Operations that are matrix products (or fused attention: two of them) in torch.profiler's names.
PRODUCT_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::_scaled_dot_product")


def profile_split(step) -> dict:
    """One call of ``step`` under torch.profiler: seconds in matrix products, in other kernels, in total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        step()
        total = time.perf_counter() - start
    events = prof.key_averages()
    products = sum(e.self_cpu_time_total for e in events if e.key.startswith(PRODUCT_OPS)) / 1e6
    kernels = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::")) / 1e6
    # an op's self time is the calling thread's wall time, its intra-op threads' work included
    return {"products_s": products, "other_s": kernels - products, "total_s": total}


def time_case(step, device: torch.device, repeats: int, clock: str = "wall") -> float:
    """Median seconds per call after two warm-up calls, wall-clock or this process's CPU time."""
    now = time.perf_counter if clock == "wall" else time.process_time
    times = []
    for i in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = now()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 2:
            times.append(now() - start)
    return statistics.median(times)


def run_case(job: dict) -> dict:
    """Child-process body: build, time one case, report samples/s and peak memory in MB."""
    torch.set_num_threads(job["threads"])
    cfg = get_cfg(job["cfg_path"], job["opts"] + ["STAGE", job["stage"]])
    device = torch.device(job["device"])
    if job["baseline"]:
        use_official_computation()
    torch.manual_seed(0)
    joints = 19 if cfg.MODEL.INPUT_JOINT_SET == "coco19" else 17
    model = build_model(cfg, placeholder_coarse_mesh(joints)).to(device).train(job["mode"] == "train")
    job["dtype"] = torch.float32 if job["baseline"] else inference_dtype(job["precision"], device)
    inference = job["mode"] != "train"
    cast = reduced_precision(model, job["dtype"], restore=False) if inference else nullcontext()
    with cast, torch.inference_mode() if inference else nullcontext():
        step, samples = step_function(model, cfg, job, device)
        if job["compile"] and not job["baseline"]:
            model.forward = torch.compile(model.forward)
        seconds = time_case(step, device, job["repeats"], job["clock"])
        split = profile_split(step) if job["profile"] and device.type == "cpu" else None
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    dtype = str(job["dtype"]).removeprefix("torch.")
    result = {"per_s": samples / seconds, "peak_mb": peak_mb, "dtype": dtype}
    if split:
        result["split"] = {key: value / samples for key, value in split.items()}  # seconds per sample
    return result


def repeats_for(mode: str, batch: int, quick: bool) -> int:
    if quick:
        return 2
    return {"train": 5, "video": 3}.get(mode, 30 if batch == 1 else 7)


def parse_cases(text: str | None) -> list[tuple[str, str, int]]:
    if not text:
        return list(CASES)
    cases = []
    for item in text.split(","):
        stage, mode, batch = item.split(":")
        cases.append((stage, mode, int(batch)))
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; known: {[':'.join(map(str, c)) for c in CASES]}")
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the reference CPU has 2 cores)")
    parser.add_argument("--quick", action="store_true", help="2 timed repeats per case (smoke run)")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"),
                        help="ours: inference precision; bfloat16 also trains under autocast")  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="ours: torch.compile the forward")
    parser.add_argument("--profile", action="store_true",
                        help="CPU: split one call of ours into matrix products and the rest")  # fmt: skip
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="cpu: CPU seconds of the process instead of wall-clock ones; with --threads 1 "
                        "the figures hold up on a busy machine (not comparable with 'official')")  # fmt: skip
    parser.add_argument(
        "--cases", default=None, help="comma-separated stage:mode:batch, e.g. mesh:forward:32"
    )
    parser.add_argument("--cfg", default=None, help="config file (default: the official network)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    cases = parse_cases(args.cases)
    load_before = os.getloadavg()
    rows = []
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for stage, mode, batch in cases:
            job = dict(
                stage=stage, mode=mode, batch=batch, device=args.device, threads=args.threads,
                repeats=repeats_for(mode, batch, args.quick), cfg_path=args.cfg, opts=list(args.opts),
                precision=args.precision, compile=args.compile, clock=args.clock, profile=args.profile,
            )  # fmt: skip
            ours = pool.apply(run_case, ({**job, "baseline": False},))
            base = pool.apply(run_case, ({**job, "baseline": True},))
            rows.append(((stage, mode, batch), ours, base))
    print_table(rows, args, load_before, os.getloadavg())
    if args.profile:
        print_split(rows, official_comparable(args))
    return 0


def official_comparable(args) -> bool:
    """Whether the run measures the network the official figures were taken of, on a CPU."""
    return args.device == "cpu" and args.cfg is None and not args.opts


def case_label(key: tuple) -> str:
    """A table row's first two columns for ``(stage, mode, batch)``."""
    stage, mode, batch = key
    name = "pose stream" if stage == "pose" else "full PMCE"
    return f"{name:<12}{f'{mode} B={batch}':<16}"


def print_table(rows: list, args, load_before: tuple, load_after: tuple) -> None:
    reference = official_comparable(args) and args.clock == "wall"
    dtype = rows[0][1]["dtype"] if rows else "?"
    print(f"device {args.device}, {args.threads} CPU threads, {args.clock} clock, torch {torch.__version__}, "
          f"ours in {dtype}"
          f"{' + torch.compile' if args.compile else ''}; load average (1 min) {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after, {os.cpu_count()} CPUs")  # fmt: skip
    print("samples/s (video: frames/s); base = the official computation in this run; official = the official")
    print("code on the reference CPU (only comparable on that machine kind, idle)")
    header = f"{'model':<12}{'case':<16}{'ours':>8}{'base':>8}{'ours/base':>10}{'ours MB':>9}{'base MB':>9}"
    if reference:
        header += f"{'official':>10}{'ours/off.':>10}{'target':>8}"
    print(header)
    for key, ours, base in rows:
        line = (
            f"{case_label(key)}{ours['per_s']:>8.1f}{base['per_s']:>8.1f}"
            f"{ours['per_s'] / base['per_s']:>9.2f}x{ours['peak_mb']:>9.0f}{base['peak_mb']:>9.0f}"
        )
        if reference:
            official = OFFICIAL_CPU[key]
            ratio = ours["per_s"] / official
            target = TARGETS.get(key)
            verdict = "" if target is None else f"{target:.1f}x {'met' if ratio >= target else 'NOT met'}"
            line += f"{official:>10.1f}{ratio:>9.2f}x  {verdict}"
        print(line)


def print_split(rows: list, reference: bool) -> None:
    """Ours per sample: matrix products, other kernels, the rest; the ceiling the products allow."""
    print("\nours, one profiled call, ms per sample (video: per frame)")
    header = f"{'model':<12}{'case':<16}{'products':>9}{'other':>8}{'rest':>7}{'total':>8}{'ceiling/s':>10}"
    print(header + (f"{'ceiling/off.':>13}" if reference else ""))
    for key, ours, _ in rows:
        if "split" not in ours:
            continue
        split = ours["split"]
        rest = split["total_s"] - split["products_s"] - split["other_s"]
        ceiling = 1 / split["products_s"]
        line = (
            f"{case_label(key)}{1e3 * split['products_s']:>9.2f}"
            f"{1e3 * split['other_s']:>8.2f}{1e3 * rest:>7.2f}{1e3 * split['total_s']:>8.2f}{ceiling:>10.1f}"
        )
        print(line + (f"{ceiling / OFFICIAL_CPU[key]:>12.2f}x" if reference else ""))


if __name__ == "__main__":
    sys.exit(main())
