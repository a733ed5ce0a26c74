"""A dependable mesh renderer in numpy + OpenCV: depth-sorted filled triangles with flat shading.

No OpenGL: it runs on any server. Camera convention (OpenCV): x right, y down, z forward; a mesh point
X (world) is seen at R @ X + t. ``Camera.looking_at`` builds a camera for SMPL-style bodies (y up,
facing +z).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # fixed-point precision of the polygon corners handed to OpenCV


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: focal length and principal point (pixels), world-to-camera rotation, translation."""

    focal: float
    center: tuple[float, float]
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # (3, 3)
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,)

    @classmethod
    def looking_at(
        cls,
        target: np.ndarray,
        image_size: tuple[int, int],
        distance: float,
        yaw_deg: float = 0.0,
        fov_deg: float = 30.0,
    ) -> Camera:
        """A camera ``distance`` metres in front of ``target`` (+z side, y up), turned ``yaw_deg`` about y."""
        height, width = image_size
        yaw = np.deg2rad(yaw_deg)
        turn = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])
        rotation = np.diag([1.0, -1.0, -1.0]) @ turn  # y up -> image down; look at the +z (front) side
        translation = np.array([0.0, 0.0, distance]) - rotation @ np.asarray(target, dtype=np.float64)
        focal = 0.5 * height / np.tan(np.deg2rad(fov_deg) / 2)
        return cls(focal=focal, center=(width / 2, height / 2), rotation=rotation, translation=translation)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, 3) world points -> (P, 2) pixels and (P,) depths."""
        cam = points @ self.rotation.T + self.translation
        depth = cam[:, 2]
        pixels = self.focal * cam[:, :2] / np.maximum(depth, 1e-6)[:, None] + np.asarray(self.center)
        return pixels, depth


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    image_size: tuple[int, int],
    camera: Camera,
    color: tuple[int, int, int] = (150, 175, 210),
    background: np.ndarray | tuple[int, int, int] = (255, 255, 255),
    two_sided: bool = False,
) -> np.ndarray:
    """Draw a mesh: (V, 3), (F, 3) -> (H, W, 3) uint8 BGR image; ``background`` is a colour or an image.

    Faces turned away from the camera are skipped, unless ``two_sided``: then every face is drawn (depth
    order decides) and lit from whichever side faces the camera, which suits predicted meshes whose
    triangles may be folded over."""
    height, width = image_size
    if isinstance(background, np.ndarray):
        image = background.copy()
    else:
        image = np.empty((height, width, 3), np.uint8)
        image[:] = background
    pixels, depth = camera.project(np.asarray(vertices, dtype=np.float64))
    tri = np.asarray(faces)
    cam_vertices = vertices @ camera.rotation.T + camera.translation
    v0, v1, v2 = (cam_vertices[tri[:, i]] for i in range(3))
    normals = np.cross(v1 - v0, v2 - v0)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    to_camera = -(v0 + v1 + v2) / 3
    facing = (normals * to_camera).sum(1) > 0
    if two_sided:
        normals = np.where(facing[:, None], normals, -normals)
    visible = (facing | two_sided) & (depth[tri] > 1e-3).all(1)
    order = np.flatnonzero(visible)[np.argsort(-depth[tri[visible]].mean(1), kind="stable")]
    light = np.array([0.3, -0.4, -1.0]) / np.linalg.norm([0.3, -0.4, -1.0])
    shade = 0.35 + 0.65 * np.clip(normals @ light, 0, 1)
    corners = np.round(pixels[tri] * (1 << SUBPIXEL_BITS)).astype(np.int32)
    base = np.asarray(color, dtype=np.float64)
    for f in order:
        fill = tuple(int(c) for c in base * shade[f])
        cv2.fillConvexPoly(image, corners[f], fill, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return image
