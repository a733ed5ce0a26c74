"""The overlay video: every person's mesh drawn on the frame with its fitted camera, one colour per track.

People are painted farthest first (by their camera-frame depth), so nearer people cover farther ones.
The optional side view shows the same meshes turned 90 degrees about the vertical axis through the
people's mean position, on a white panel next to the frame; it uses the same camera, so it needs no
extra fitting (the official side view crashes).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lib.demo.pipeline import PersonFrame
from lib.render import Camera, render_mesh

# BGR colours of tracks 0, 1, ... (cycled)
PALETTE = (
    (210, 175, 150),
    (120, 190, 240),
    (150, 220, 150),
    (200, 150, 220),
    (120, 120, 230),
    (220, 220, 120),
)
QUARTER_TURN = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # 90 degrees about y


class OverlayRenderer:
    """draw(frame_index, frame, people) -> the overlay frame, downscaled to at most ``max_side`` pixels."""

    def __init__(self, faces: np.ndarray, max_side: int = 960, side_view: bool = False) -> None:
        self.faces = np.asarray(faces)
        self.max_side = max_side
        self.side_view = side_view

    def __call__(self, frame_index: int, frame: np.ndarray, people: Sequence[PersonFrame]) -> np.ndarray:
        height, width = frame.shape[:2]
        factor = min(1.0, self.max_side / max(height, width)) if self.max_side > 0 else 1.0
        if factor < 1.0:
            size = (round(width * factor), round(height * factor))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        image = frame.copy()
        if not people:
            return np.hstack([image, np.full_like(image, 255)]) if self.side_view else image
        first = people[0]  # every person of a video shares focal length and principal point
        camera = Camera(focal=first.focal * factor, center=tuple(np.asarray(first.center) * factor))
        ordered = sorted(people, key=lambda p: -float(p.vertices[:, 2].mean()))
        for person in ordered:
            image = self._draw(image, person.vertices, person.track_id, camera)
        if not self.side_view:
            return image
        pivot = np.mean([p.vertices.mean(axis=0) for p in people], axis=0)
        side = np.full_like(image, 255)
        turned = [(p.track_id, (p.vertices - pivot) @ QUARTER_TURN.T + pivot) for p in people]
        for track_id, vertices in sorted(turned, key=lambda tv: -float(tv[1][:, 2].mean())):
            side = self._draw(side, vertices, track_id, camera)
        return np.hstack([image, side])

    def _draw(self, image: np.ndarray, vertices: np.ndarray, track_id: int, camera: Camera) -> np.ndarray:
        colour = PALETTE[track_id % len(PALETTE)]
        return render_mesh(
            vertices, self.faces, image.shape[:2], camera, color=colour, background=image, two_sided=True
        )
