"""Render the body model in a few poses and shapes to a PNG, to look at it.

    python scripts/show_body.py [--out output/body.png] [KEY VALUE ...]   (config overrides)

Works with the generated body (``make body``) and with real SMPL files alike.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.body.build import build_body_model
from lib.config import get_cfg
from lib.constants import SMPL24_JOINTS
from lib.io import write_atomic
from lib.render import Camera, render_mesh

TILE = (560, 340)  # (height, width) of one view


def _pose(**angles: tuple[float, float, float]) -> torch.Tensor:
    """(72,) axis-angle pose with the given joints rotated (radians)."""
    pose = torch.zeros(72)
    for name, rotation in angles.items():
        i = SMPL24_JOINTS.index(name)
        pose[3 * i : 3 * i + 3] = torch.tensor(rotation)
    return pose


SCENES = (  # (label, gender, pose, betas, yaw in degrees)
    ("rest, front", "neutral", _pose(), {}, 0),
    ("rest, side", "neutral", _pose(), {}, 90),
    ("rest, back", "neutral", _pose(), {}, 180),
    (
        "walking",
        "neutral",
        _pose(
            L_Hip=(-0.5, 0, 0),
            R_Hip=(0.35, 0, 0),
            L_Knee=(0.6, 0, 0),
            R_Knee=(0.2, 0, 0),
            L_Shoulder=(0, 0, -1.2),
            R_Shoulder=(0, 0, 1.2),
            L_Elbow=(0, -0.4, 0),
            R_Elbow=(0, 0.6, 0),
        ),
        {},
        30,
    ),
    (
        "elbows + knees bent",
        "neutral",
        _pose(
            L_Elbow=(0, -1.5, 0),
            R_Elbow=(0, 1.5, 0),
            L_Knee=(1.5, 0, 0),
            R_Hip=(-1.2, 0, 0),
            Head=(0.3, 0.4, 0),
        ),
        {},
        40,
    ),
    ("tall (b0=+2)", "neutral", _pose(), {0: 2.0}, 20),
    ("short, heavy (b0=-2, b1=+2)", "neutral", _pose(), {0: -2.0, 1: 2.0}, 20),
    ("male", "male", _pose(L_Shoulder=(0, 0, -1.2), R_Shoulder=(0, 0, 1.2)), {}, 20),
    ("female", "female", _pose(L_Shoulder=(0, 0, -1.2), R_Shoulder=(0, 0, 1.2)), {}, 20),
)


def render_scenes(model) -> np.ndarray:
    """One row of labelled views per four scenes."""
    pose = torch.stack([scene[2] for scene in SCENES])
    betas = torch.zeros(len(SCENES), 10)
    for i, scene in enumerate(SCENES):
        for index, value in scene[3].items():
            betas[i, index] = value
    genders = [scene[1] if scene[1] in model.genders else "neutral" for scene in SCENES]
    with torch.no_grad():
        vertices = model(pose, betas, gender=genders, joint_sets=()).vertices.numpy()
    faces = model.faces.numpy()
    tiles = []
    for (label, _, _, _, yaw), verts in zip(SCENES, vertices, strict=True):
        center = 0.5 * (verts.min(0) + verts.max(0))
        camera = Camera.looking_at(center, TILE, distance=4.3, yaw_deg=yaw)
        tile = render_mesh(verts, faces, TILE, camera)
        cv2.putText(tile, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (40, 40, 40), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % 3:
        tiles.append(np.full_like(tiles[0], 255))
    return np.vstack([np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="output/body.png", help="PNG to write")
    parser.add_argument("opts", nargs="*", help="config overrides, KEY VALUE pairs")
    args = parser.parse_args()
    model = build_body_model(get_cfg(opts=args.opts))
    image = render_scenes(model)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    write_atomic(args.out, lambda f: f.write(png.tobytes()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
