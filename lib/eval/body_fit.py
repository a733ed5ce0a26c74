"""Score what the demo shows: the SMPL body fitted to each video's predicted meshes (``EVAL.FIT_BODY``).

The demo does not draw the network's vertices but an SMPL body fitted to them per track (one shape, joint
rotations and translation filtered over time; ``lib.body.fit.fit_smpl_smoothed``). Evaluation fits each
test video the same way, so the figures of that row are the ones a demo user gets.
"""

from __future__ import annotations

import numpy as np
import torch

from lib.body.fit import fit_smpl_smoothed, one_torch_thread
from lib.body.smpl import BodyModel


def fit_videos(
    videos: list[str], frames: np.ndarray, meshes: torch.Tensor, body: BodyModel, iters: int, sigma: float
) -> torch.Tensor:
    """(N, V, 3) predicted meshes of any videos -> the fitted bodies, row for row (each video's rows
    fitted together in frame order; ``sigma`` frames of temporal filtering)."""
    videos = np.asarray(videos)
    fitted = torch.empty_like(meshes, dtype=torch.float32)
    with one_torch_thread():
        for video in dict.fromkeys(videos.tolist()):
            rows = np.flatnonzero(videos == video)
            rows = torch.as_tensor(rows[np.argsort(frames[rows], kind="stable")])
            fit = fit_smpl_smoothed(body, meshes[rows].float().numpy(), iters, sigma)
            fitted[rows] = torch.from_numpy(fit.vertices)
    return fitted
