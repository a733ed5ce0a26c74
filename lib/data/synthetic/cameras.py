"""Virtual perspective cameras for the synthetic videos, and SMPL parameters in the camera frame.

Convention (OpenCV, as in 3DPW): camera x right, y down, z forward; a world point X is seen at
``R @ X + t`` and projected to ``f * (x / z, y / z) + c`` pixels. The world is y up (SMPL's rest frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from lib.data.synthetic.motion import smoothstep
from lib.keypoints import project_pinhole


@dataclass(frozen=True)
class CameraTrack:
    """One camera over T frames: fixed intrinsics, per-frame extrinsics (a static camera repeats them)."""

    focal: tuple[float, float]  # fx, fy pixels
    center: tuple[float, float]  # cx, cy pixels
    width: int
    height: int
    rotation: np.ndarray  # (T, 3, 3) world -> camera
    translation: np.ndarray  # (T, 3) metres
    moving: bool = False

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(T, P, 3) world points -> (T, P, 3) camera-frame points."""
        return np.einsum("tij,tpj->tpi", self.rotation, points) + self.translation[:, None]

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points -> (..., 2) pixels."""
        return project(points_cam, self.focal, self.center)

    def in_image(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (...) bool, inside the image."""
        x, y = pixels[..., 0], pixels[..., 1]
        return (x >= 0) & (x < self.width) & (y >= 0) & (y < self.height)


def project(points_cam: np.ndarray, focal: Sequence[float], center: Sequence[float]) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels; depths are clamped at 1 mm (a vertex behind the
    camera lands far outside the image instead of mirrored into it)."""
    return project_pinhole(points_cam, np.asarray(focal), np.asarray(center), clamp="floor", eps=1e-3)


def look_at(position: np.ndarray, target: np.ndarray, up: Sequence[float] = (0.0, 1.0, 0.0)):
    """World -> camera rotation (..., 3, 3) and translation (..., 3) of cameras at ``position`` (..., 3)
    looking at ``target`` (..., 3) with the world ``up`` direction pointing up in the image."""
    forward = target - position
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, np.broadcast_to(np.asarray(up, dtype=float), forward.shape))
    right = right / np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward], axis=-2)
    translation = -np.einsum("...ij,...j->...i", rotation, position)
    return rotation, translation


def parse_image_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"image size must look like '1920x1080' (width x height), got {text!r}") from None
    return width, height


def sample_camera(
    rng: np.random.Generator,
    root_path: np.ndarray,
    body_height: float,
    ground: float,
    image_sizes: Sequence[tuple[int, int]],
    fov_range: Sequence[float] = (40.0, 70.0),
    fill_range: Sequence[float] = (0.45, 0.9),
    moving_prob: float = 0.3,
) -> CameraTrack:
    """A camera filming a person whose root moves along ``root_path`` (T, 3) world metres.

    The person (``body_height`` metres tall, feet at world height ``ground``) fills a fraction in
    ``fill_range`` of the image height; the field of view of the longer image side is drawn from
    ``fov_range`` degrees. The camera stands 0.3-2.2 m above the ground at a random azimuth and looks at
    the middle of the path (static) or follows the person while orbiting and shaking (moving).
    """
    num_frames = len(root_path)
    width, height = image_sizes[rng.integers(len(image_sizes))]
    fov = np.deg2rad(rng.uniform(*fov_range))
    f = 0.5 * max(width, height) / np.tan(fov / 2)
    focal = (float(f), float(f * rng.uniform(0.995, 1.005)))
    center = (
        float(width / 2 + rng.normal(0, 0.01) * width),
        float(height / 2 + rng.normal(0, 0.01) * height),
    )
    fill = rng.uniform(*fill_range)
    distance = f * body_height / (fill * height)
    moving = rng.random() < moving_prob
    middle = ground + body_height * 0.5
    if moving:
        kernel = np.ones(min(15, num_frames)) / min(15, num_frames)
        smooth = np.stack([np.convolve(np.pad(c, len(kernel) // 2, mode="edge"), kernel, "valid")[:num_frames]
                           for c in root_path.T], axis=-1)  # fmt: skip
        target = smooth.copy()
    else:
        spread = np.ptp(root_path[:, [0, 2]], axis=0).max()
        distance = max(distance, f * spread / (0.8 * width))  # keep most of the path in view
        target = np.repeat(root_path.mean(axis=0, keepdims=True), num_frames, axis=0)
    target[:, 1] = middle
    cam_height = ground + rng.uniform(0.3, 2.2)
    s = smoothstep(np.linspace(0, 1, num_frames))
    azimuth = rng.uniform(-np.pi, np.pi) + (rng.uniform(-0.7, 0.7) * s if moving else 0.0)
    horizontal = np.sqrt(max(distance**2 - (cam_height - middle) ** 2, 0.25))
    offset = np.stack(
        np.broadcast_arrays(horizontal * np.sin(azimuth), cam_height - middle, horizontal * np.cos(azimuth)),
        axis=-1,
    )
    position = target + offset
    if moving:  # hand-held shake: slow sinusoids of a few centimetres
        t = np.arange(num_frames)[:, None]
        freq, phase = rng.uniform(0.01, 0.05, (1, 3)), rng.uniform(0, 2 * np.pi, (1, 3))
        position = position + 0.03 * np.sin(2 * np.pi * freq * t + phase)
    rotation, translation = look_at(position, target)
    roll = Rotation.from_rotvec(np.array([0.0, 0.0, rng.normal(0, 0.03)])).as_matrix()  # slight tilt
    rotation = roll @ rotation
    translation = translation @ roll.T
    return CameraTrack(focal, center, int(width), int(height), rotation, translation, bool(moving))


def smpl_world_to_camera(
    pose: np.ndarray, trans: np.ndarray, root: np.ndarray, rotation: np.ndarray, translation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SMPL parameters in the camera frame: ``SMPL(pose_c, trans_c) == R @ SMPL(pose, trans) + t``.

    SMPL rotates the body about its root joint ``J0`` (the rest-pose pelvis of the shaped body, which
    depends on the betas only) and then adds ``trans``: ``X = R_g (x - J0) + J0 + trans``. Hence
    ``R_g' = R R_g`` and ``trans' = R (J0 + trans) + t - J0``.

    Args:
        pose: (T, 72) axis-angle, global orientation first; trans: (T, 3); root: (3,) or (T, 3) J0;
        rotation: (T, 3, 3); translation: (T, 3).
    Returns:
        (T, 72) pose and (T, 3) translation in the camera frame.
    """
    root = np.broadcast_to(root, trans.shape)
    orient = Rotation.from_matrix(rotation) * Rotation.from_rotvec(pose[:, :3])
    pose_cam = pose.copy()
    pose_cam[:, :3] = orient.as_rotvec()
    trans_cam = np.einsum("tij,tj->ti", rotation, root + trans) + translation - root
    return pose_cam, trans_cam
