"""Generate the embedded synthetic video dataset in the 3DPW file format (``make data``).

    python scripts/make_synthetic_data.py [--cfg FILE] [--dataset NAME] [--force] [KEY VALUE ...]

Writes DATA.SYNTHETIC.DIR (default data/synthetic/pw3d_data) with the body model of BODY.* (the generated
SMPL-format body from ``make body``, or real SMPL files when present). ``--dataset synthetic_rendered``
writes its test videos rendered and detected (DATA.SYNTHETIC.RENDERED_DIR), ``--dataset real_motion``
the real-motion test split (DATA.SYNTHETIC.REAL_MOTION_DIR; needs scripts/fetch_mocap.py). Skips the
work when the folder already holds a dataset made with the same settings, noise model and body files
(manifest.json).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.body.build import build_body_model
from lib.body.files import find_smpl_file
from lib.config import get_cfg
from lib.data.noise import build_noise
from lib.data.synthetic.generate import dataset_variants, generate_dataset, is_current, settings_hash


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cfg", default=None, help="experiment YAML (defaults: lib/config.py)")
    parser.add_argument("--force", action="store_true", help="regenerate even if the dataset is current")
    parser.add_argument(
        "--dataset", default="synthetic", choices=("synthetic", "synthetic_rendered", "real_motion")
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.cfg, args.opts)
    settings, out_dir = dataset_variants(cfg)[args.dataset]
    out_dir = Path(out_dir)
    noise = build_noise(cfg)
    body_files = [str(find_smpl_file(cfg.BODY.SMPL_DIR, g)) for g in cfg.BODY.GENDERS]
    body_files += [cfg.BODY.J_REGRESSOR_H36M, cfg.BODY.J_REGRESSOR_COCO]
    config_hash = settings_hash(settings, noise, body_files)
    if not args.force and is_current(out_dir, config_hash):
        print(f"{out_dir} is up to date (settings hash {config_hash[:12]}); pass --force to regenerate")
        return 0
    start = time.perf_counter()
    body = build_body_model(cfg)
    manifest = generate_dataset(
        body, settings, noise, out_dir, config_hash=config_hash, workers=cfg.DATA.SYNTHETIC.WORKERS
    )
    print(
        f"wrote {out_dir}: {sum(s['frames'] for s in manifest['splits'].values())} frames, "
        f"{manifest['bytes'] / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
