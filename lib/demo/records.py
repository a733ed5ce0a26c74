"""What the demo knows about one person: the track, the network's prediction, the camera and the body fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.demo.camera import CameraFit
from lib.demo.inference import TrackPrediction
from lib.people.types import Track


@dataclass(frozen=True)
class BodyFit:
    """Body-model parameters of one track (N frames) and the body they give, as the demo shows it."""

    pose: np.ndarray  # (N, 72) axis-angle, global orientation in camera axes; filtered over time
    betas: np.ndarray  # (10,) one shape for the whole track
    transl: np.ndarray  # (N, 3) metres, relative to the root; add cam_t for the camera frame
    vertices: np.ndarray  # (N, V, 3) the body of these parameters (root-relative, like the prediction)
    joints: np.ndarray  # (N, J, 3) its joints, in the prediction's joint set
    vertex_error_m: np.ndarray  # (N,) mean distance of ``vertices`` to the network's vertices


@dataclass
class TrackResult:
    """Everything the demo found for one person."""

    track: Track
    prediction: TrackPrediction
    camera: CameraFit
    fit: BodyFit | None = None

    def shown(self, show: str) -> tuple[np.ndarray, np.ndarray]:
        """(N, V, 3) vertices and (N, J, 3) joints that are shown: the fitted body or the raw network
        output (root-relative; add ``camera.translation``)."""
        if show == "fitted" and self.fit is not None:
            return self.fit.vertices, self.fit.joints
        return self.prediction.vertices, self.prediction.joints
