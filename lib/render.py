"""A dependable mesh renderer in numpy: a vectorised z-buffer rasteriser of flat-shaded triangles.

No OpenGL: it runs on any server. Triangles are rasterised in batches by the size of their pixel box
(every candidate pixel of every triangle at once) and the nearest triangle wins each pixel centre.
Camera convention (OpenCV): x right, y down, z forward; a mesh point
X (world) is seen at R @ X + t. ``Camera.looking_at`` builds a camera for SMPL-style bodies (y up,
facing +z).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    color: tuple[int, int, int] | np.ndarray = (150, 175, 210),
    background: np.ndarray | tuple[int, int, int] = (255, 255, 255),
    two_sided: bool = False,
    light: np.ndarray | None = None,
    ambient: float = 0.35,
) -> np.ndarray:
    """Draw a mesh: (V, 3), (F, 3) -> (H, W, 3) uint8 BGR image; ``background`` is a colour or an image,
    ``color`` one BGR colour or one per face (F, 3); ``light`` the direction light travels in camera axes
    (default: from above, left and behind the camera), ``ambient`` the share of unlit brightness.

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
    light = np.array([0.3, -0.4, -1.0]) if light is None else np.asarray(light, dtype=np.float64)
    shade = ambient + (1 - ambient) * np.clip(normals @ (light / np.linalg.norm(light)), 0, 1)
    base = np.broadcast_to(np.asarray(color, dtype=np.float64), (len(tri), 3))
    colors = np.clip(base * shade[:, None], 0, 255).astype(np.uint8)
    pixel, face = rasterize(pixels[tri[visible]], depth[tri[visible]], (height, width))
    image.reshape(-1, 3)[pixel] = colors[np.flatnonzero(visible)[face]]
    return image


def rasterize(
    corners: np.ndarray, depths: np.ndarray, size_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffer of triangles: corners (F, 3, 2) pixels, depths (F, 3) -> (flat pixel indices, index of the
    nearest triangle covering each of those pixel centres). Depth is interpolated linearly in screen space
    (exact for the flat triangles of a mesh far from the camera compared with its size)."""
    height, width = size_hw
    lo = np.clip(np.floor(corners.min(axis=1) - 0.5), 0, [width, height]).astype(np.int64)  # (F, 2)
    hi = np.clip(np.ceil(corners.max(axis=1) - 0.5), -1, [width - 1, height - 1]).astype(np.int64)
    extent = (hi - lo + 1).max(axis=1)
    pixels, depths_out, faces = [], [], []
    for side in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        group = np.flatnonzero((extent > side // 2 if side > 2 else extent > 0) & (extent <= side))
        if group.size:
            pix, dep, idx = _cover(corners[group], depths[group], lo[group], side, width, height)
            pixels.append(pix), depths_out.append(dep), faces.append(group[idx])
    if not pixels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pixel, depth, face = np.concatenate(pixels), np.concatenate(depths_out), np.concatenate(faces)
    order = np.lexsort((depth, pixel))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pixel[order[1:]] != pixel[order[:-1]]
    return pixel[order[first]], face[order[first]]


def _cover(
    corners: np.ndarray, depths: np.ndarray, lo: np.ndarray, side: int, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixel centres inside each triangle of a batch whose pixel boxes fit in side x side:
    (flat pixel index, interpolated depth, index in the batch) of every covered pixel."""
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), axis=-1).reshape(-1, 2)
    rel = (corners - lo[:, None] - 0.5).astype(np.float32)  # corners relative to the box's first centre
    gx, gy = grid[:, 0].astype(np.float32), grid[:, 1].astype(np.float32)
    (ax, ay), (bx, by), (cx, cy) = ((rel[:, i, 0, None], rel[:, i, 1, None]) for i in range(3))  # (F, 1)
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    sign = np.where(area < 0, -1.0, 1.0).astype(np.float32)
    w0 = ((cx - bx) * (gy - by) - (cy - by) * (gx - bx)) * sign  # (F, S*S)
    w1 = ((ax - cx) * (gy - cy) - (ay - cy) * (gx - cx)) * sign
    w2 = ((bx - ax) * (gy - ay) - (by - ay) * (gx - ax)) * sign
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (np.abs(area) > 1e-12)
    f, k = np.nonzero(inside)
    xy = lo[f] + grid[k]
    keep = (xy[:, 0] < width) & (xy[:, 1] < height)
    f, k, xy = f[keep], k[keep], xy[keep]
    depth = (w0[f, k] * depths[f, 0] + w1[f, k] * depths[f, 1] + w2[f, k] * depths[f, 2]) / np.abs(area[f, 0])
    return xy[:, 1] * width + xy[:, 0], depth, f
