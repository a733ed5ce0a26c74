"""Print the measured statistics of the configured 2D detection noise next to the config.

    python scripts/noise_stats.py [--cfg FILE] [--windows N] [--frames T] [KEY VALUE ...]

Samples many windows of a synthetic standing person (no dataset needed) and prints, per joint, the
measured vs configured std (fraction of the person size), the lag-1 autocorrelation, and the swap,
miss and outlier rates. Exits with status 1 if any measured std is more than 10 % off the config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config import get_cfg
from lib.data.noise import build_noise
from lib.data.synthetic.noise_stats import NoiseStats, measure_noise

TOLERANCE = 0.10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cfg", default=None, help="experiment YAML (defaults: lib/config.py)")
    parser.add_argument("--windows", type=int, default=2000, help="number of windows sampled")
    parser.add_argument("--frames", type=int, default=16, help="frames per window")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.cfg, args.opts)
    noise = build_noise(cfg)
    stats = measure_noise(noise, cfg.DATA.NOISE.JOINT_SET, args.windows, args.frames, seed=cfg.SEED)
    print(format_table(stats, cfg.DATA.NOISE))
    worst = np.abs(stats.std_ratio() - 1.0).max()
    ok = worst <= TOLERANCE
    print(f"\n{'OK' if ok else 'FAIL'}: largest std deviation from the config {100 * worst:.1f} %", end="")
    print(f" (tolerance {100 * TOLERANCE:.0f} %)")
    return 0 if ok else 1


def format_table(stats: NoiseStats, config) -> str:
    """The per-joint table, then the configured rates."""
    header = (
        f"{'joint':<12}{'std cfg':>9}{'std meas':>10}{'ratio':>7}{'lag1':>7}{'swap':>8}{'miss':>8}{'outl':>8}"
    )
    rows = [header, "-" * len(header)]
    for j, name in enumerate(stats.names):
        swap = "-" if np.isnan(stats.swap[j]) else f"{stats.swap[j]:.4f}"
        rows.append(
            f"{name:<12}{stats.std_config[j]:>9.4f}{stats.std[j]:>10.4f}{stats.std_ratio()[j]:>7.3f}"
            f"{stats.lag1[j]:>7.3f}{swap:>8}{stats.miss[j]:>8.4f}{stats.outlier[j]:>8.4f}"
        )
    rows.append("-" * len(header))
    rows.append(
        f"{'config':<12}{'':>9}{'':>10}{'':>7}{stats.lag1_config:>7.3f}{config.SWAP_PROB:>8.4f}"
        f"{config.MISS_PROB:>8.4f}{config.OUTLIER_PROB:>8.4f}"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
