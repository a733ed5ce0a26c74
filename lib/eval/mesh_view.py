"""A predicted mesh next to its ground truth, seen from the video camera and from the side.

Used by the evaluation report (worst frames) and by training (one validation sample in TensorBoard).
Meshes are root-relative in camera axes (x right, y down, z forward), metres; both panels of a view use
the same camera, so position and size differences show.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lib.eval.plots import put_text
from lib.render import Camera, render_mesh

PRED_COLOR = (215, 160, 100)  # BGR, blue
GT_COLOR = (140, 190, 140)  # BGR, green
FOV_DEG = 30.0
PANEL_ASPECT = 0.75  # width / height of one panel
LABEL_ROWS = 22  # pixels above the panels for their names


def view_camera(center: np.ndarray, radius: float, image_size: tuple[int, int], yaw_deg: float) -> Camera:
    """A camera that sees a sphere (``center`` (3,), ``radius`` metres) whole, from the video camera's
    side turned ``yaw_deg`` about the vertical (camera y) axis."""
    height, width = image_size
    half_fov = math.radians(FOV_DEG) / 2
    yaw = math.radians(yaw_deg)
    rotation = np.array([[math.cos(yaw), 0, -math.sin(yaw)], [0, 1, 0], [math.sin(yaw), 0, math.cos(yaw)]])
    distance = 1.15 * radius / math.sin(half_fov)  # 15% margin around the sphere's silhouette
    translation = np.array([0.0, 0.0, distance]) - rotation @ center
    focal = 0.5 * min(height, width) / math.tan(half_fov)
    return Camera(focal=focal, center=(width / 2, height / 2), rotation=rotation, translation=translation)


def compare_meshes(
    pred_vertices: np.ndarray,
    gt_vertices: np.ndarray,
    faces: np.ndarray,
    height: int = 256,
    side_view: bool = True,
    caption: str = "",
) -> np.ndarray:
    """Panels 'prediction', 'ground truth' (camera view), then the same from the side when ``side_view``.

    pred_vertices, gt_vertices: (V, 3) metres; faces: (F, 3). Returns (height, W, 3) uint8 BGR with a
    row of panel names on top, and above it a ``caption`` row when given.
    """
    pred = np.asarray(pred_vertices, np.float64)
    gt = np.asarray(gt_vertices, np.float64)
    both = np.concatenate([pred, gt])
    center = (both.min(0) + both.max(0)) / 2
    radius = max(float(np.linalg.norm(both - center, axis=1).max()), 1e-3)
    header = LABEL_ROWS * (2 if caption else 1)
    size = (height - header, round(height * PANEL_ASPECT))
    views = [(0.0, "")] + ([(90.0, " (side)")] if side_view else [])
    panels, labels = [], []
    for yaw, suffix in views:
        camera = view_camera(center, radius, size, yaw)
        for vertices, color, name in ((pred, PRED_COLOR, "prediction"), (gt, GT_COLOR, "ground truth")):
            panels.append(render_mesh(vertices, faces, size, camera, color=color))
            labels.append(name + suffix)
    image = np.full((height, size[1] * len(panels), 3), 255, np.uint8)
    image[header:] = np.concatenate(panels, axis=1)
    for i, label in enumerate(labels):
        put_text(image, label, (i + 0.5) * size[1], header - LABEL_ROWS / 2, scale=0.4, align="center")
        cv2.line(image, (i * size[1], header - LABEL_ROWS), (i * size[1], height), (200, 200, 200), 1)
    if caption:
        put_text(image, caption, 6, LABEL_ROWS / 2, scale=0.4)
    return image
