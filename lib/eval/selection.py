"""Which frames each evaluation protocol scores: the frame side of ``lib/eval/protocols.py``.

* ``official`` (the official ``evaluate()``): the official window set, so the first ``T // 2`` and the
  last frames of every video are never predicted (``lib/data/windows.py``); Human3.6M camera 4 only;
  MPI-INF-3DHP's valid-frame flags ignored.
* ``full`` (corrected): every frame of every test video (padded windows); Human3.6M all four cameras,
  with the camera-4 figure reported alongside; MPI-INF-3DHP valid frames only.

Windows and cameras are chosen before prediction (``lib.engine.build.build_test_loader``), so a
predictions file holds exactly the protocol's frames; ground-truth availability and valid flags are
applied when scoring (``scored_frames``). Shapes: N frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.data.datasets import h36m, mpi_inf_3dhp

# The official Human3.6M evaluate() skips every window whose target has cam_idx != 4; cam_idx is numbered
# 1-4 in the annotation files (the '_ca_04_' of the image names), as our camera_id.
OFFICIAL_H36M_CAMERA = 4


def protocol_cameras(dataset: str, protocol: str, camera_id: np.ndarray) -> np.ndarray:
    """(N,) bool: the frames whose camera the protocol evaluates. camera_id: (N,) int."""
    if dataset == h36m.NAME and protocol == "official":
        return np.asarray(camera_id) == OFFICIAL_H36M_CAMERA
    return np.ones(len(camera_id), dtype=bool)


def camera_figures(dataset: str, protocol: str) -> dict[str, int]:
    """Single-camera figures reported next to the protocol's own: {metrics.json key: camera_id}."""
    if dataset == h36m.NAME and protocol == "full":
        return {f"camera_{OFFICIAL_H36M_CAMERA}": OFFICIAL_H36M_CAMERA}
    return {}


def scored_frames(dataset: str, protocol: str, has_gt: np.ndarray, frame_valid: np.ndarray) -> np.ndarray:
    """(N,) bool: the predicted frames the joint metrics average over.

    has_gt: (N,) bool, the frame has the protocol's ground truth; frame_valid: (N,) bool, the dataset's
    valid-frame flag, which only MPI-INF-3DHP has and only ``full`` respects.
    """
    keep = np.asarray(has_gt, dtype=bool)
    if dataset == mpi_inf_3dhp.NAME and protocol == "full":
        keep = keep & np.asarray(frame_valid, dtype=bool)
    return keep


def sequence_ids(videos: Sequence[str], segments: Sequence[int]) -> np.ndarray:
    """(N,) str: the ACCEL sequence of each frame, its video or, from a frame gap on, '<video>:<segment>'.

    Official windows never split a video (segment 0), so official sequences are whole videos.
    """
    return np.array([v if int(s) == 0 else f"{v}:{int(s)}" for v, s in zip(videos, segments, strict=True)])


def selection_note(dataset: str, protocol: str) -> str:
    """One line naming the frames a protocol scores on ``dataset``, for metrics.json and report.md."""
    if protocol == "official":
        note = "official windows (the first and last frames of each video are not predicted)"
        extra = {h36m.NAME: "camera 4 only", mpi_inf_3dhp.NAME: "valid flags ignored"}
    else:
        note = "every frame of every video (padded windows)"
        extra = {h36m.NAME: "all cameras (camera 4 also reported)", mpi_inf_3dhp.NAME: "valid frames only"}
    return f"{note}, {extra[dataset]}" if dataset in extra else note
