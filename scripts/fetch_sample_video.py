#!/usr/bin/env python
"""Fetch the demo's sample video: ``Sports2D/Demo/demo.mp4`` from the BSD-3-licensed ``sports2d`` wheel.

    python scripts/fetch_sample_video.py [--out data/demo/sports2d_demo.mp4]

1768x994, 30 fps, 230 frames, two people outdoors. Downloads the wheel (about 9 MB) from the package
index pip is configured with and extracts that one file; skipped when the video is already there.
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

PACKAGE = "sports2d==0.8.34"
MEMBER = "Sports2D/Demo/demo.mp4"
LICENSE_NOTE = "sample video: Sports2D/Demo/demo.mp4 from the sports2d 0.8.34 wheel (BSD-3-Clause)\n"


def fetch(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", PACKAGE, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"error: pip could not download {PACKAGE}:\n{done.stderr.strip()}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    write_atomic(out, lambda f: f.write(data))
    write_text_atomic(out.with_suffix(".txt"), LICENSE_NOTE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/demo/sports2d_demo.mp4"))
    args = parser.parse_args()
    if args.out.is_file() and args.out.stat().st_size > 0:
        print(f"{args.out} is present")
        return 0
    fetch(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
