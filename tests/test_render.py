"""The OpenCV mesh renderer: draws visible faces, nearer faces over farther ones, leaves the rest."""

from __future__ import annotations

import numpy as np

from lib.render import Camera, render_mesh


def _square(z: float, half: float) -> tuple[np.ndarray, np.ndarray]:
    """A square facing +z (towards a front camera) at depth z."""
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def test_front_faces_are_drawn_and_occlusion_is_respected():
    size = (120, 160)
    camera = Camera.looking_at(np.zeros(3), size, distance=3.0)
    far_v, far_f = _square(-0.5, 0.6)
    near_v, near_f = _square(0.0, 0.2)
    tilt = np.deg2rad(40)  # turned about y, so that it is shaded differently from the far square
    near_v = near_v @ np.array([[np.cos(tilt), 0, -np.sin(tilt)], [0, 1, 0], [np.sin(tilt), 0, np.cos(tilt)]])
    near_v[:, 2] += 0.5
    vertices = np.concatenate([near_v, far_v])  # near first: drawing order must come from depth
    faces = np.concatenate([near_f, far_f + 4])
    image = render_mesh(vertices, faces, size, camera, color=(0, 0, 255))
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    assert tuple(image[2, 2]) == (255, 255, 255)  # background untouched
    near_only = render_mesh(near_v, near_f, size, camera, color=(0, 0, 255))
    far_only = render_mesh(far_v, far_f, size, camera, color=(0, 0, 255))
    assert tuple(image[60, 80]) == tuple(near_only[60, 80]) != tuple(far_only[60, 80])
    assert tuple(image[60, 25]) == tuple(far_only[60, 25])  # the far square shows around the near one


def test_back_faces_are_culled():
    size = (60, 60)
    camera = Camera.looking_at(np.zeros(3), size, distance=3.0)
    v, f = _square(0.0, 0.5)
    image = render_mesh(v, f[:, ::-1], size, camera)  # faces pointing away from the camera
    assert (image == 255).all()
    two_sided = render_mesh(v, f[:, ::-1], size, camera, two_sided=True)
    front = render_mesh(v, f, size, camera)
    assert (two_sided[30, 30] != 255).any() and tuple(two_sided[30, 30]) == tuple(front[30, 30])
