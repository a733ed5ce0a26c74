"""The one ``Dataset`` every reader feeds: windows of a frame table -> model inputs and targets.

Item contract (a dict; T frames, J input joints, D feature size, all float32 unless noted)
------------------------------------------------------------------------------------------
Inputs, one per frame of the window:

* ``pose2d`` (T, J, 2): the 2D pose in the input joint set, normalised by each frame's own full image
  as in the paper's eq. 5: ``x_n = x / w * 2 - 1``, ``y_n = y / w * 2 - h / w`` with that frame's
  (w, h). COCO-19's pelvis and neck are the means of the (noisy) hips and shoulders.
* ``pose2d_conf`` (T, J): detector score / GT visibility (1 or 0) / noise-model visibility; returned
  alongside, not fed to the model by default.
* ``img_feat`` (T, D): the frame's precomputed image feature (D = 2048).

Targets, for the window's target frame (``WindowTable.target``), in metres, camera axes, relative to
the root = the Human3.6M-17 pelvis (the official convention):

* ``mesh`` (6890, 3) and ``mesh_valid`` () 0/1.
* ``pose3d`` (J, 3) in the input joint set and ``pose3d_valid`` (J,) 0/1.
* ``pose3d_h36m`` (17, 3) Human3.6M-17 and ``pose3d_h36m_valid`` (17,) 0/1.

A target the dataset does not have is zeros with validity 0. Joints come from the dataset's 3D
annotations where it has them, else from the mesh through the joint regressors. Targets stay as
annotated on frames the dataset flags invalid: whether those count is the evaluation protocol's choice.

Metadata of the target frame: ``dataset`` (str), ``video`` (str), ``frame`` (int, frame number),
``segment`` (int, gap-free segment of the video, ``WindowTable.segment``), ``index`` (int, window),
``image_size`` (2,) (w, h), ``camera`` (4,) (fx, fy, cx, cy), NaN where unknown, ``camera_id`` (int,
the dataset's camera index, -1 where unknown) and ``frame_valid`` (bool, the dataset's valid-frame flag).

2D inputs (the detector): 'gt' (the ground-truth 2D), 'fit' (the projection of the dataset's own 2D SMPL
fit, where the table has weak-perspective fit cameras: COCO; made by lib/data/build.py), 'gt_noise' /
'fit_noise' (either plus the synthetic detection noise of lib/data/noise.py, redrawn every epoch), or a
named detection the table holds. Static datasets (COCO, MPII) are one-frame videos: their windows repeat
the image T times (pose and feature); synthetic noise is drawn over the T repeated frames like for a video.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lib.constants import NUM_VERTICES
from lib.data.frames import FrameTable, Keypoints2D
from lib.data.noise import DetectionNoise, noise_rng, person_scale
from lib.data.windows import WindowTable
from lib.errors import UserError
from lib.keypoints import add_pelvis_neck, add_pelvis_neck_scores, normalize_screen

GT_DETECTORS = ("gt", "gt_noise")
FIT_DETECTORS = ("fit", "fit_noise")
# The detectors that are a clean source plus the synthetic noise model: detector -> source
NOISE_SOURCES = {"gt_noise": "gt", "fit_noise": "fit"}
# The joint set a detector must output for each input joint set (COCO-19 adds pelvis and neck).
SOURCE_JOINT_SET = {"coco19": "coco17", "h36m17": "h36m17"}


class DetectorError(UserError, KeyError):
    """The requested 2D detector is not available for a dataset; the message lists what is."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class InputSpec:
    """How the 2D input is made: the detector, the input joint set and, for the noisy ones, the noise."""

    detector: str  # 'gt', 'gt_noise', 'fit', 'fit_noise' or a detection name present in the table
    joint_set: str = "coco19"  # 'coco19' or 'h36m17'
    noise: DetectionNoise | None = None  # required for the NOISE_SOURCES detectors
    seed: int = 0
    # Draw the noise once per video (and epoch), so that every window sees the same noisy frames, as with a
    # real detector (evaluation; training on consecutive windows); else per window and epoch (training:
    # more variety). Per-window noise at test time made consecutive outputs jitter independently: ACCEL
    # measured the noise draws, not the model.
    noise_per_video: bool = False


def add_pelvis_and_neck(xy: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 (..., 17, C) points and (..., 17) confidences -> COCO-19 (lib/keypoints.py)."""
    return add_pelvis_neck(xy), add_pelvis_neck_scores(np.broadcast_to(conf, xy.shape[:-1]))


def table_detectors(table: FrameTable) -> list[str]:
    """The 2D inputs a table offers without a detection file: the ground truth, the projected fit where
    the table has fit cameras, and the detections its reader attached."""
    fit = FIT_DETECTORS if table.weak_camera is not None else ()
    return [*GT_DETECTORS, *fit, *sorted(k for k in table.detections if k not in fit)]


def resolve_source(table: FrameTable, spec: InputSpec) -> Keypoints2D:
    """The table's 2D keypoints the input is made from; a DetectorError lists the available choices."""
    needed = SOURCE_JOINT_SET[spec.joint_set]
    if spec.detector in NOISE_SOURCES and spec.noise is None:
        raise ValueError(f"detector {spec.detector!r} needs a DetectionNoise (lib.data.noise.build_noise)")
    name = NOISE_SOURCES.get(spec.detector, spec.detector)
    if name == "gt":
        if needed not in table.gt2d:
            raise DetectorError(
                f"{table.name}: detector {spec.detector!r} needs ground-truth 2D in {needed} for input "
                f"{spec.joint_set}; the dataset has ground-truth 2D in {sorted(table.gt2d)}"
            )
        return table.gt2d[needed]
    if name not in table.detections:
        raise DetectorError(
            f"{table.name}: unknown detector {spec.detector!r}; available: {table_detectors(table)}"
        )
    source = table.detections[name]
    if source.joint_set != needed:
        raise DetectorError(
            f"{table.name}: detector {spec.detector!r} outputs {source.joint_set}, "
            f"input joint set {spec.joint_set} needs {needed}"
        )
    return source


class VideoDataset(Dataset):
    """Items of one dataset split (see the module docstring for the contract).

    Args:
        table: the frames (lib/data/frames.py).
        windows: the windows over ``table``'s rows (lib/data/windows.py).
        spec: the 2D input choice.
        meshes: (N, 6890, 3) camera-frame vertices of every row in metres (lib/data/mesh_cache.py), or
            None when the dataset has no SMPL fits (meshes are then invalid).
        mesh_valid: (N,) bool, usable meshes (SMPL present and passed the dataset's checks).
        regressors: joint regressors (J, 6890) by joint set: 'h36m17' and optionally 'coco17', used for
            targets the dataset lacks.
    """

    def __init__(
        self,
        table: FrameTable,
        windows: WindowTable,
        spec: InputSpec,
        meshes: np.ndarray | None,
        mesh_valid: np.ndarray,
        regressors: Mapping[str, Tensor],
    ) -> None:
        self.table = table
        self.windows = windows
        self.spec = spec
        self.source = resolve_source(table, spec)
        self.meshes = meshes
        self.mesh_valid = mesh_valid
        self.regressors = {k: v.detach().float().cpu() for k, v in regressors.items()}
        self.epoch = 0
        self._video_noise: dict[str, tuple[np.ndarray, ...]] = {}  # video -> its rows, noisy xy, visible

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch of the synthetic noise ('gt_noise' / 'fit_noise' redraw it every epoch)."""
        if epoch != self.epoch:
            self._video_noise.clear()
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        rows = self.windows.indices[index]  # (T,)
        row = int(self.windows.target[index])
        xy, conf = self._pose2d(index, rows)
        table = self.table
        item = {
            "pose2d": torch.from_numpy(normalize_screen(xy, table.image_size[rows]).astype(np.float32)),
            "pose2d_conf": torch.from_numpy(conf.astype(np.float32)),
            "img_feat": torch.from_numpy(np.asarray(table.features[table.feature_row[rows]], np.float32)),
            **self._targets(row),
            "dataset": table.name,
            "video": str(table.video[row]),
            "frame": int(table.frame[row]),
            "segment": int(self.windows.segment[index]),
            "index": index,
            "image_size": torch.from_numpy(table.image_size[row].astype(np.float32)),
            "camera": torch.from_numpy(table.camera[row].astype(np.float32)),
            "camera_id": int(table.camera_id[row]),
            "frame_valid": bool(table.frame_valid[row]),
        }
        return item

    def _pose2d(self, index: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, J, 2) pixels and (T, J) confidences of the window, in the input joint set."""
        xy = self.source.xy[rows].astype(np.float64)
        conf = self.source.conf[rows]
        if self.spec.detector in NOISE_SOURCES and self.spec.noise_per_video:
            xy, visible = self._noisy_video_rows(rows)
            conf = conf * visible
        elif self.spec.detector in NOISE_SOURCES:
            scale = np.maximum(person_scale(xy), 1.0)  # degenerate (one-point) poses: 1 pixel
            rng = noise_rng(self.spec.seed, self.epoch, f"{self.table.name}/{index}")
            xy, visible = self.spec.noise.apply(xy, scale, rng)
            conf = conf * visible
        if self.spec.joint_set == "coco19":
            xy, conf = add_pelvis_and_neck(xy, conf)
        return xy, conf

    def _noisy_video_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, J, 2) noisy pixels and (T, J) visibility of table ``rows`` of one video, from the noise drawn
        once over the whole video (its rows in frame order) for the current epoch; cached per video."""
        video = str(self.table.video[rows[0]])
        if video not in self._video_noise:
            video_rows = np.flatnonzero(self.table.video == video)
            video_rows = video_rows[np.argsort(self.table.frame[video_rows], kind="stable")]
            clean = self.source.xy[video_rows].astype(np.float64)
            rng = noise_rng(self.spec.seed, self.epoch, f"{self.table.name}/video/{video}")
            noisy, visible = self.spec.noise.apply(clean, np.maximum(person_scale(clean), 1.0), rng)
            self._video_noise[video] = (video_rows, noisy, visible)
        video_rows, noisy, visible = self._video_noise[video]
        order = np.argsort(video_rows)
        position = order[np.searchsorted(video_rows[order], rows)]
        return noisy[position], visible[position]

    def _targets(self, row: int) -> dict[str, Tensor]:
        mesh_ok = self.meshes is not None and bool(self.mesh_valid[row])
        mesh = (
            np.asarray(self.meshes[row], np.float32) if mesh_ok else np.zeros((NUM_VERTICES, 3), np.float32)
        )
        h36m, h36m_valid = self._joints(row, "h36m17", mesh if mesh_ok else None)
        pose3d, pose3d_valid = self._joints(row, self.spec.joint_set, mesh if mesh_ok else None)
        root = h36m[0]
        if not h36m_valid[0]:  # no root: nothing can be made root-relative
            mesh_ok = False
            h36m_valid[:] = False
            pose3d_valid[:] = False
        return {
            "mesh": torch.from_numpy(np.where(mesh_ok, mesh - root, 0).astype(np.float32)),
            "mesh_valid": torch.tensor(float(mesh_ok)),
            "pose3d": torch.from_numpy(np.where(pose3d_valid[:, None], pose3d - root, 0).astype(np.float32)),
            "pose3d_valid": torch.from_numpy(pose3d_valid.astype(np.float32)),
            "pose3d_h36m": torch.from_numpy(np.where(h36m_valid[:, None], h36m - root, 0).astype(np.float32)),
            "pose3d_h36m_valid": torch.from_numpy(h36m_valid.astype(np.float32)),
        }

    def _joints(self, row: int, joint_set: str, mesh: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Absolute (J, 3) joints of a row and (J,) validity: annotated, else regressed from the mesh."""
        table = self.table
        if joint_set in table.joints3d:
            valid = table.joints3d_valid[joint_set][row]
            return table.joints3d[joint_set][row].astype(np.float32), valid.copy()
        regressor = self.regressors.get(SOURCE_JOINT_SET.get(joint_set, joint_set))
        num = 19 if joint_set == "coco19" else 17
        if mesh is None or regressor is None:
            return np.zeros((num, 3), np.float32), np.zeros(num, dtype=bool)
        joints = (regressor @ torch.tensor(mesh)).numpy()  # (17, 3)
        if joint_set == "coco19":
            joints, _ = add_pelvis_and_neck(joints, np.ones(17))
        return joints.astype(np.float32), np.ones(num, dtype=bool)
