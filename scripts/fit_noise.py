#!/usr/bin/env python
"""Fit DATA.NOISE to the detections of a render-and-detect dataset and print them as YAML.

    python scripts/fit_noise.py [--cfg FILE] [--split test] [--frames all|turned] [KEY VALUE ...]

Reads ``DATA.SYNTHETIC.DIR``'s true COCO-17 2D joints (``3DPW_<split>_gt_joint_coco_img.json``) and its
detections (``3DPW_<split>_joint_coco_img_noise.json``: BlazePose's when the dataset was made with
``DATA.SYNTHETIC.DETECTOR blazepose``) and prints the fitted DATA.NOISE block (lib/data/synthetic/
noise_fit.py), ready to paste into a config. ``--frames turned`` fits only the runs of frames where the body
is turned away from upright (DATA.TURNED_NOISE.MIN_TILT_DEG) and prints the DATA.TURNED_NOISE block.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config import get_cfg
from lib.data.synthetic.noise_fit import DetectorVideo, fit_noise, orientation_segments

SPLIT_FILES = {"test": "test", "val": "validation", "train": "train"}


def read_videos(root: Path, split: str) -> list[DetectorVideo]:
    """Every video of a split as (truth, detections) arrays."""
    s = SPLIT_FILES[split]
    truth = json.loads((root / f"3DPW_{s}_gt_joint_coco_img.json").read_text())
    dets = json.loads((root / f"3DPW_{s}_joint_coco_img_noise.json").read_text())
    videos = []
    for seq, frames in truth.items():
        order = sorted(frames, key=int)
        gt = np.array([next(iter(frames[f].values())) for f in order])[:, :17, :2]
        det = np.array([next(iter(dets[seq][f].values())) for f in order])[:, :17]
        videos.append(DetectorVideo(gt, det))
    return videos


def to_yaml(fitted: dict, block: str = "NOISE", extra: dict | None = None) -> str:
    lines = ["DATA:", f"  {block}:", *(f"    {key}: {value}" for key, value in (extra or {}).items())]
    for key, value in fitted.items():
        text = f"[{', '.join(f'{v:.4f}' for v in value)}]" if isinstance(value, list) else f"{value:.4f}"
        lines.append(f"    {key}: {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cfg", default=None, help="experiment YAML (defaults: lib/config.py)")
    parser.add_argument("--split", default="test", choices=sorted(SPLIT_FILES))
    parser.add_argument("--frames", default="all", choices=("all", "turned"),
                        help="turned: only the frames of bodies turned away from upright")  # fmt: skip
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.cfg, args.opts)
    root = Path(cfg.DATA.SYNTHETIC.DIR)
    try:
        videos = read_videos(root, args.split)
    except FileNotFoundError as err:
        print(
            f"error: {err.filename} not found: make the dataset first (scripts/make_synthetic_data.py)",
            file=sys.stderr,
        )
        return 2
    block, extra = "NOISE", None
    if args.frames == "turned":
        tilt = cfg.DATA.TURNED_NOISE.MIN_TILT_DEG
        videos = orientation_segments(videos, turned=True, min_tilt_deg=tilt)
        block, extra = "TURNED_NOISE", {"ENABLED": True, "MIN_TILT_DEG": tilt}
    if not videos:
        print(f"error: no {args.frames} frames to fit in {root} ({args.split})", file=sys.stderr)
        return 2
    frames = sum(len(v.truth) for v in videos)
    print(f"# fitted to {len(videos)} videos, {frames} frames of {root} ({args.split}, {args.frames} frames)")
    print(to_yaml(fit_noise(videos), block, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
