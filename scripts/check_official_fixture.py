#!/usr/bin/env python
"""Check our PMCE network against a forward fixture produced by the official implementation.

Usage: python scripts/check_official_fixture.py FIXTURE [--tol 1e-5]

The fixture (format of ``shared/reference/pmce_forward_seed0.pt``, see its ``about`` entry) holds the
small weights exactly, a splitmix64 recipe for the large ones, stand-ins for the licensed mesh files,
inputs and the official outputs / intermediates. We rebuild the weights, run our model in eval mode on
CPU in float32 and print the max absolute difference of every tensor. Exit code 0 when all are within
the tolerance, 1 when one is not, 2 when the fixture cannot be used.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config import get_cfg
from lib.models.build import build_model
from lib.models.pmce import PMCE

REQUIRED_KEYS = ("fixture_seed", "state_dict_small", "recipe", "standins", "inputs", "outputs",
                 "intermediates", "decoder_only", "config")  # fmt: skip
MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class FixtureError(RuntimeError):
    """The fixture file is missing or lacks an entry we need."""


def splitmix64_values(key: str, shape: tuple[int, ...], bound: float, seed: int) -> torch.Tensor:
    """The fixture's library-independent weights for ``key``, vectorised over the whole tensor."""
    n = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    state = np.uint64((zlib.crc32(key.encode("utf-8")) + (seed << 32)) & int(MASK64))
    with np.errstate(over="ignore"):
        z = state + n * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    k = (z >> np.uint64(40)).astype(np.float64)
    values = ((k - 2.0**23) / 2.0**23 * float(bound)).astype(np.float32)
    return torch.from_numpy(values.reshape(shape))


def regenerate_state_dict(fixture: dict) -> dict[str, torch.Tensor]:
    """Small entries as stored plus the recipe-generated large ones; recipe checksums are verified."""
    state = dict(fixture["state_dict_small"])
    for key, spec in fixture["recipe"].items():
        tensor = splitmix64_values(key, tuple(spec["shape"]), spec["bound"], int(fixture["fixture_seed"]))
        checksum = tensor.double().sum().item()
        if not np.isclose(checksum, float(spec["check_sum"]), rtol=1e-9, atol=1e-6):
            raise FixtureError(
                f"recipe for {key} regenerates checksum {checksum}, fixture says {spec['check_sum']}"
            )
        state[key] = tensor
    return state


def load_fixture(path: Path) -> dict:
    if not path.is_file():
        raise FixtureError(f"fixture file not found: {path}")
    fixture = torch.load(path, map_location="cpu", weights_only=True)
    missing = [key for key in REQUIRED_KEYS if key not in fixture]
    if missing:
        raise FixtureError(f"{path} lacks the entries {missing}; is it a PMCE forward fixture?")
    return fixture


def build_from_fixture(fixture: dict) -> PMCE:
    """Our model with the fixture's configuration, stand-in coarse mesh and weights, in eval mode."""
    fc = fixture["config"]
    joint_set = "coco19" if fc["num_joint"] == 19 else "h36m17"
    cfg = get_cfg(opts=[
        "MODEL.SEQ_LEN", fc["seqlen"], "MODEL.INPUT_JOINT_SET", joint_set,
        "MODEL.POSE_STREAM.DIM", fc["hpe_dim"], "MODEL.POSE_STREAM.DEPTH", fc["hpe_dep"],
        "MODEL.DECODER.JOINT_DIM", fc["joint_dim"], "MODEL.DECODER.VERTEX_DIM", fc["vertx_dim"],
        "MODEL.DECODER.NUM_BLOCKS", fc["num_coevo_blocks"], "MODEL.IMAGE_STREAM.HIDDEN", fc["gru_hidden"],
    ])  # fmt: skip
    standins = fixture["standins"]
    coarse = SimpleNamespace(template=standins["init_vertices_431"], vertex_joint_map=standins["vj_relation"],
                             upsample=())  # fmt: skip
    model = build_model(cfg, coarse)
    model.load_state_dict(regenerate_state_dict(fixture), strict=True)
    return model.eval()


def run_with_intermediates(
    model: PMCE, pose2d: torch.Tensor, img_feat: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Forward pass that also records the tensors the fixture stores as ``intermediates``."""
    decoder = model.pose_mesh_coevo
    seen: dict[str, torch.Tensor] = {}
    block_args: dict[int, tuple] = {}
    hooks = [
        decoder.blocks[0].register_forward_pre_hook(lambda m, args: seen.__setitem__("vertx_init", args[1]))
    ]
    for i, block in enumerate(decoder.blocks, start=1):
        hooks.append(block.register_forward_pre_hook(lambda m, args, i=i: block_args.__setitem__(i, args)))
        hooks.append(block.register_forward_hook(_store_block_output(seen, i)))
    try:
        with torch.inference_mode():
            out = model(pose2d, img_feat)
            seen["gru_out"] = decoder.gru_cur(img_feat.transpose(0, 1))[0]  # the whole sequence, as nn.GRU
            seen["img_feat_mid"] = decoder.image_feature(img_feat)  # what the decoder uses (target frame)
            seen["vertex_residual"] = decoder.vertex_residual(seen["img_feat_mid"])
            seen["upsample_conv_out"] = decoder.upsample(seen[f"coevo{decoder.num_blocks}_vertx"])
            for i, args in block_args.items():  # joint branches the forward skips (their output is unused)
                if seen[f"coevo{i}_joints"] is None:
                    seen[f"coevo{i}_joints"] = decoder.blocks[i - 1](*args[:3], need_joints=True)[0]
    finally:
        for hook in hooks:
            hook.remove()
    seen.update(cam_mesh=out.mesh, cam_pose=out.joints, pose3d_mm=out.pose3d * 1000.0)
    return seen


def _store_block_output(seen: dict, index: int):
    def hook(module, args, output):
        seen[f"coevo{index}_joints"], seen[f"coevo{index}_vertx"] = output

    return hook


def compare(fixture: dict, model: PMCE) -> list[tuple[str, float]]:
    """(name, max abs diff) for every output, intermediate and decoder-only tensor of the fixture."""
    ours = run_with_intermediates(model, fixture["inputs"]["pose2d"], fixture["inputs"]["img_feature"])
    reference = dict(fixture["intermediates"])
    reference.update(cam_mesh=fixture["outputs"]["cam_mesh"], cam_pose=fixture["outputs"]["cam_pose"],
                     pose3d_mm=fixture["outputs"]["pose3d"])  # fmt: skip
    rows = [(name, (ours[name] - ref).abs().max().item()) for name, ref in reference.items()]
    dec = fixture["decoder_only"]
    with torch.inference_mode():
        joints, mesh = model.pose_mesh_coevo(dec["joints_m"], dec["img_feature"])
    rows.append(("decoder_only.cam_pose", (joints - dec["out_cam_pose"]).abs().max().item()))
    rows.append(("decoder_only.cam_mesh", (mesh - dec["out_cam_mesh"]).abs().max().item()))
    return rows


def to_device(fixture: dict, device: torch.device) -> dict:
    """The fixture with its inputs and reference tensors on ``device`` (the weights load on the CPU)."""
    moved = {}
    for key, value in fixture.items():
        if key in ("inputs", "outputs", "intermediates", "decoder_only"):
            value = {k: v.to(device) if torch.is_tensor(v) else v for k, v in value.items()}
        moved[key] = value
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixture", type=Path)
    parser.add_argument("--tol", type=float, default=1e-5, help="max allowed absolute difference")
    parser.add_argument("--device", default="cpu", help="run our model on this device (float32, no TF32)")
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # true float32 on GPUs
    try:
        fixture = load_fixture(args.fixture)
        with torch.no_grad():
            rows = compare(
                to_device(fixture, torch.device(args.device)), build_from_fixture(fixture).to(args.device)
            )
    except FixtureError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    width = max(len(name) for name, _ in rows)
    print(f"{'tensor':<{width}}  max |ours - official|")
    for name, diff in rows:
        print(f"{name:<{width}}  {diff:.3e}{'' if diff <= args.tol else '  FAIL'}")
    failed = [name for name, diff in rows if not diff <= args.tol]
    print(
        f"{len(rows) - len(failed)}/{len(rows)} within {args.tol:g}"
        + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
