"""Write the generated SMPL-format body to the default body-model paths (``make body``).

    python scripts/make_synthetic_body.py [--smpl-dir DIR] [--base-dir DIR] [--force]

Refuses to overwrite body files it did not write itself (your real SMPL files) unless --force is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.body.generated.make import generate_body, user_files_in_the_way, write_body
from lib.config import get_cfg_defaults


def main() -> int:
    defaults = get_cfg_defaults().BODY
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smpl-dir", default=defaults.SMPL_DIR, help="where SMPL_{NEUTRAL,MALE,FEMALE}.pkl go"
    )
    parser.add_argument(
        "--base-dir",
        default=str(Path(defaults.MEAN_VERTICES).parent),
        help="where smpl_mean_vertices.npy, mesh_downsampling.npz and the regressors go",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing body files")
    args = parser.parse_args()
    in_the_way = user_files_in_the_way(args.smpl_dir, args.base_dir)
    if in_the_way and not args.force:
        listing = "\n  ".join(str(p) for p in in_the_way)
        print(
            f"not writing the generated body: these body files exist and were not generated:\n  {listing}\n"
            "Keep them (the project uses them), or move them away / pass --force to replace them."
        )
        return 1
    start = time.perf_counter()
    body = generate_body()
    for path in write_body(body, args.smpl_dir, args.base_dir):
        print(f"wrote {path}")
    print(f"generated body in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
