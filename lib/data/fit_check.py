"""The I2L-MeshNet 2D agreement check: how far apart two 2D poses of one person are, in a 64x64 box.

Officially, COCO and MPI-INF-3DHP training samples lose every target when a 2D fit disagrees with the
ground-truth keypoints by more than 3.0 (``fitting_thr``): COCO compares the SMPLify fit's projection with
the annotated keypoints, MPI-INF-3DHP its precomputed noisy 2D input with the ground-truth projection. Both
poses are mapped into a 64x64 square around the person (the tight box of ``box_points`` made square about
its centre, ``process_bbox(aspect_ratio=1)`` then ``j2d_processing(res=64)``) and the mean distance over
the labelled joints is taken, so 3.0 means 3/64 of the person's size, whatever the image resolution.
"""

from __future__ import annotations

import numpy as np

BOX_SIZE = 64.0  # side of the normalised box the error is measured in


def box_errors(
    points: np.ndarray, reference: np.ndarray, valid: np.ndarray, box_points: np.ndarray
) -> np.ndarray:
    """Mean distance of two 2D poses in units of a 64-wide square box around the person.

    Args:
        points, reference: (N, J, 2) pixels.
        valid: (N, J) bool, the joints that count (a row without any scores 0).
        box_points: (N, K, 2) pixels whose tight box sets the scale.

    Returns:
        (N,) errors; inf where the box is under a pixel wide (no scale to measure in).
    """
    extent = (box_points.max(axis=1) - box_points.min(axis=1)).max(axis=-1)  # (N,) larger box side
    side = extent - 1.0  # process_bbox's inclusive-pixel convention: a box of w pixels spans w - 1
    distance = np.linalg.norm(points - reference, axis=-1) * valid  # (N, J)
    mean = distance.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    scale = BOX_SIZE / np.where(side > 0, side, 1.0)
    return np.where(side > 0, mean * scale, np.inf)


def within(errors: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) bool: the rows that pass, ``errors <= threshold``; all of them when ``threshold <= 0`` (off)."""
    if threshold <= 0:
        return np.ones(len(errors), dtype=bool)
    return errors <= threshold
