"""``build_dataset``: config -> reader -> frame table -> meshes -> windows -> VideoDataset.

This is the only data module that reads the config. Readers are chosen from a plain dict (no ``eval``
on config strings); each reader module provides ``read(options, split) -> FrameTable`` and
``detection_files(root, split) -> {name: DetectionFile}`` (a detection file a reader reads anyway comes
in the table's ``detections`` instead). Per-dataset settings are ``"dataset=value"`` lists
(DATA.DETECTORS, DATA.STRIDES).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from yacs.config import CfgNode

from lib.config import ConfigError
from lib.data.datasets import coco, h36m, mpi_inf_3dhp, mpii, pw3d
from lib.data.datasets.detections import DetectionFile, load_detections
from lib.data.fit_check import box_errors, within
from lib.data.frames import DataMismatchError, FrameTable, Keypoints2D, ReaderOptions, check_finite, project
from lib.data.mesh_cache import VertexModel, cached_meshes, regress_joints
from lib.data.noise import build_noise
from lib.data.video_dataset import NOISE_SOURCES, DetectorError, InputSpec, VideoDataset, table_detectors
from lib.data.windows import build_window_table

# 'synthetic' is the generated embedded-default dataset, written in the 3DPW file formats; its test videos
# rendered and detected ('synthetic_rendered') and the real-motion test split ('real_motion') too.
SYNTHETIC = "synthetic"
SYNTHETIC_TEST_SETS = {
    "synthetic_rendered": "SYNTHETIC.RENDERED_DIR",
    "real_motion": "SYNTHETIC.REAL_MOTION_DIR",
}
READERS = {
    pw3d.NAME: pw3d,
    SYNTHETIC: pw3d,
    **dict.fromkeys(SYNTHETIC_TEST_SETS, pw3d),
    h36m.NAME: h36m,
    mpi_inf_3dhp.NAME: mpi_inf_3dhp,
    coco.NAME: coco,
    mpii.NAME: mpii,
}


def training_source(name: str) -> str:
    """The dataset whose training split stands for ``name``'s: itself, or for the test-only synthetic
    splits (rendered videos, real motion) the synthetic dataset whose test videos and body they use."""
    return SYNTHETIC if name in SYNTHETIC_TEST_SETS else name


def image_features(name: str) -> str:
    """The kind of image features dataset ``name`` provides: 'silhouette' (the generated datasets,
    lib/data/silhouette.py) or 'spin' (the real datasets' SPIN ResNet-50 features)."""
    return "silhouette" if training_source(name) == SYNTHETIC else "spin"


LIST_KEYS = {"train": "DATA.TRAIN_LIST", "val": "DATA.VAL_LIST", "test": "DATA.TEST_LIST"}  # split -> key
_ROOT_KEYS = {
    pw3d.NAME: "PW3D_DIR",
    SYNTHETIC: "SYNTHETIC.DIR",
    **SYNTHETIC_TEST_SETS,
    h36m.NAME: "H36M_DIR",
    mpi_inf_3dhp.NAME: "MPII3D_DIR",
    coco.NAME: "COCO_DIR",
    mpii.NAME: "MPII_DIR",
}


def build_dataset(
    cfg: CfgNode,
    name: str,
    split: str,
    body_model: VertexModel,
    regressors: Mapping[str, Tensor],
    device: str | torch.device = "cpu",
    pad_mode: str | None = None,
) -> VideoDataset:
    """The items of dataset ``name`` ('3dpw', 'h36m', 'mpi_inf_3dhp', 'coco', 'mpii'), split
    ('train', 'val', 'test').

    Args:
        body_model: computes GT meshes once per dataset split (cached under DATA.CACHE_DIR).
        regressors: (J, 6890) joint regressors by joint set; 'h36m17' is required, 'coco17' is needed
            where a dataset lacks COCO joints (COCO, MPII).
        device: where the body model runs while filling the mesh cache.
        pad_mode: the window mode, DATA.PAD_MODE when None (eval.py passes its protocol's). 'official'
            in stage 'mesh' also drops the windows whose target has no SMPL fit, as the official code.
    """
    if name not in READERS:
        raise ConfigError(
            f"{LIST_KEYS.get(split, 'DATA')}: unknown dataset {name!r}; known: {sorted(READERS)}"
        )
    if "h36m17" not in regressors:
        raise ValueError(f"regressors need 'h36m17' (17, 6890); got {sorted(regressors)}")
    reader = READERS[name]
    options = reader_options(cfg, name)
    table = reader.read(options, split)
    if len(table) == 0:
        raise EmptySplitError(_empty_split(name, split, options.root, "no frames"))
    detector = dataset_detector(cfg, name)
    table = _with_detector(cfg, table, name, split, detector)
    check_finite(table)  # before any mesh, window or item is made of it
    _check_genders(table, name, split, body_model)
    meshes, mesh_valid = _meshes(cfg, table, f"{name}_{split}", body_model, regressors, device)
    spec = InputSpec(
        detector=detector,
        joint_set=cfg.MODEL.INPUT_JOINT_SET,
        noise=build_noise(cfg) if detector in NOISE_SOURCES else None,
        seed=cfg.SEED,
        noise_per_video=(cfg.DATA.TRAIN_NOISE if split == "train" else cfg.DATA.EVAL_NOISE) == "video",
    )
    pad_mode = "replicate" if table.static else pad_mode or cfg.DATA.PAD_MODE
    windows = build_window_table(
        table.video,
        table.frame,
        seq_len=cfg.MODEL.SEQ_LEN,
        stride=dataset_stride(cfg, name, split),
        target_index=cfg.MODEL.TARGET_INDEX,
        pad_mode=pad_mode,
        max_gap=cfg.DATA.MAX_FRAME_GAP,
        target_ok=table.smpl.valid if cfg.STAGE == "mesh" and table.smpl is not None else None,
    )
    if len(windows) == 0:
        why = f"{len(table)} frames, no window of MODEL.SEQ_LEN {cfg.MODEL.SEQ_LEN} (pad mode {pad_mode!r})"
        raise EmptySplitError(_empty_split(name, split, options.root, why))
    return VideoDataset(table, windows, spec, meshes, mesh_valid, regressors)


class EmptySplitError(DataMismatchError):
    """A dataset split named in the config yields no frames or no windows."""


def _empty_split(name: str, split: str, root: Path, why: str) -> str:
    return (
        f"{name} {split} split is empty ({why}; files in {root}): check its files (make data rebuilds the "
        f"synthetic dataset) or leave {name!r} out of {LIST_KEYS.get(split, 'the dataset lists')}"
    )


def _check_genders(table: FrameTable, name: str, split: str, body_model: VertexModel) -> None:
    """ConfigError when the ground truth has bodies of a gender whose SMPL layer BODY.GENDERS leaves out."""
    loaded = getattr(body_model, "genders", None)
    if loaded is None or table.smpl is None:
        return
    missing = sorted(set(np.unique(table.smpl.gender[table.smpl.valid]).tolist()) - set(loaded))
    if missing:
        raise ConfigError(
            f"{name} {split}: the ground truth has {missing} bodies but BODY.GENDERS loads only "
            f"{list(loaded)}; add {missing} to BODY.GENDERS (their SMPL files must be in BODY.SMPL_DIR)"
        )


def reader_options(cfg: CfgNode, name: str) -> ReaderOptions:
    """The reader settings of one dataset from the DATA section."""
    subjects = {}
    if name == h36m.NAME:
        data = cfg.DATA
        subjects = {
            "train": data.H36M_TRAIN_SUBJECTS,
            "val": data.H36M_VAL_SUBJECTS,
            "test": data.H36M_TEST_SUBJECTS,
        }
    return ReaderOptions(
        root=dataset_root(cfg, name),
        val_fraction=cfg.DATA.VAL_FRACTION,
        missing_features=cfg.DATA.MISSING_FEATURES,
        subjects=subjects,
        fit_error_max=cfg.DATA.FIT_ERROR_MAX,
        cache_dir=Path(cfg.DATA.CACHE_DIR),
    )


def dataset_root(cfg: CfgNode, name: str) -> Path:
    """The folder of dataset ``name``: its DATA key, e.g. DATA.PW3D_DIR or DATA.SYNTHETIC.DIR."""
    node = cfg.DATA
    for part in _ROOT_KEYS[name].split("."):
        node = node[part]
    return Path(node)


def dataset_detector(cfg: CfgNode, name: str) -> str:
    """DATA.DETECTOR, or the dataset's entry "name=detector" in DATA.DETECTORS."""
    return _dataset_entry(cfg.DATA.DETECTORS, "DATA.DETECTORS", name) or cfg.DATA.DETECTOR


def dataset_stride(cfg: CfgNode, name: str, split: str) -> int:
    """The window stride: for the 'train' split the dataset's entry "name=stride" in DATA.STRIDES, else
    DATA.STRIDE (validation and test windows keep DATA.STRIDE, every frame by default)."""
    value = _dataset_entry(cfg.DATA.STRIDES, "DATA.STRIDES", name)
    if value is not None and not (value.isdigit() and int(value) > 0):
        raise ConfigError(f"DATA.STRIDES: the stride of {name!r} must be a positive integer, got {value!r}")
    return int(value) if value is not None and split == "train" else cfg.DATA.STRIDE


def _dataset_entry(entries: list[str], key: str, name: str) -> str | None:
    """Dataset ``name``'s value in a ``["dataset=value", ...]`` list, or None; every entry is checked."""
    found = None
    for entry in entries:
        dataset, sep, value = entry.partition("=")
        if not sep or not value:
            raise ConfigError(f"{key} entries must be 'dataset=value', got {entry!r}")
        if dataset not in READERS:
            raise ConfigError(f"{key} entry {entry!r}: unknown dataset {dataset!r}; known: {sorted(READERS)}")
        if dataset == name:
            if found is not None:
                raise ConfigError(f"{key} names {name!r} twice: {list(entries)}")
            found = value
    return found


def available_detections(cfg: CfgNode, name: str, split: str) -> dict[str, DetectionFile]:
    """The dataset's named detection files for a split plus the user's DATA.DETECTION_FILES entries."""
    files = dict(READERS[name].detection_files(dataset_root(cfg, name), split))
    for entry in cfg.DATA.DETECTION_FILES:
        parts = entry.split(":", 3)
        if len(parts) != 4:
            raise ConfigError(f"DATA.DETECTION_FILES entries are 'dataset:split:name:path', got {entry!r}")
        dataset, file_split, detector, path = parts
        if dataset == name and file_split == split:
            files[detector] = DetectionFile(Path(path), f"{name} {split} '{detector}' detections")
    return files


def _with_detector(cfg: CfgNode, table: FrameTable, name: str, split: str, detector: str) -> FrameTable:
    """``table`` with the detection file of ``detector`` loaded, unless the table makes that input itself."""
    own = table_detectors(table)
    if detector in own:
        return table
    files = available_detections(cfg, name, split)
    if detector not in files:
        raise DetectorError(f"{name} {split}: unknown detector {detector!r}; available: {[*own, *files]}")
    return load_detections(table, detector, files[detector])


def _meshes(
    cfg: CfgNode,
    table: FrameTable,
    cache_name: str,
    body_model: VertexModel,
    regressors: Mapping[str, Tensor],
    device,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Cached (N, 6890, 3) meshes and (N,) validity; fills projected GT 2D where the table lacks it and the
    'fit' input where it has weak-perspective fit cameras (COCO), whose check also sets the validity."""
    if table.smpl is None or not table.smpl.valid.any():
        return None, np.zeros(len(table), dtype=bool)
    meshes = cached_meshes(
        cfg.DATA.CACHE_DIR,
        cache_name,
        table.smpl,
        body_model,
        dtype=cfg.DATA.MESH_CACHE_DTYPE,
        device=device,
    )
    valid = table.smpl.valid.copy()
    if table.mesh_fit_max_error is not None and "h36m17" in table.joints3d:
        valid &= (
            _fit_errors(meshes, regressors["h36m17"], table.joints3d["h36m17"]) <= table.mesh_fit_max_error
        )
    if "coco17" not in table.gt2d and "coco17" in regressors:
        table.gt2d["coco17"] = _projected_coco(meshes, regressors["coco17"], table.camera, valid)
    if table.weak_camera is not None:
        valid &= _add_fit_input(table, meshes, regressors, cfg.DATA.FIT_ERROR_MAX)
    return meshes, valid


def _fit_errors(meshes: np.ndarray, regressor: Tensor, joints: np.ndarray) -> np.ndarray:
    """(N,) mean distance in metres between mesh-regressed and annotated (N, 17, 3) joints, each set
    centred on its mean (translation-aligned)."""
    regressed = regress_joints(meshes, regressor)
    regressed -= regressed.mean(axis=1, keepdims=True)
    joints = joints - joints.mean(axis=1, keepdims=True)
    return np.linalg.norm(regressed - joints, axis=-1).mean(axis=-1)


def _projected_coco(
    meshes: np.ndarray, regressor: Tensor, camera: np.ndarray, valid: np.ndarray
) -> Keypoints2D:
    """GT COCO-17 2D from the fitted mesh projected with the known intrinsics (MPII, H36M)."""
    known = valid & np.isfinite(camera).all(axis=1)
    joints = regress_joints(meshes, regressor)  # (N, 17, 3)
    xy = np.where(known[:, None, None], project(joints, np.nan_to_num(camera, nan=1.0)), 0).astype(np.float32)
    return Keypoints2D("coco17", xy, np.repeat(known[:, None], 17, axis=1).astype(np.float32))


def _add_fit_input(
    table: FrameTable, meshes: np.ndarray, regressors: Mapping[str, Tensor], max_error: float
) -> np.ndarray:
    """Store the fit's weak-perspective COCO-17 projection as ``detections['fit']`` and return (N,) bool,
    the rows whose fit agrees with the ground-truth keypoints (lib/data/fit_check.py)."""
    if "coco17" not in regressors:
        raise ValueError(
            f"{table.name}: projecting the 2D fits needs the 'coco17' regressor (BODY.J_REGRESSOR_COCO)"
        )
    joints = regress_joints(meshes, regressors["coco17"])  # (N, 17, 3) metres, untranslated body
    scale, shift = table.weak_camera[:, None, :1], table.weak_camera[:, None, 1:]
    fit = (joints[..., :2] * scale + shift).astype(np.float32)  # (N, 17, 2) pixels
    table.detections["fit"] = Keypoints2D("coco17", fit, np.ones(fit.shape[:2], np.float32))
    gt = table.gt2d["coco17"]
    # The official box is the tight box of the clean fit projection; only labelled keypoints count.
    return within(box_errors(fit, gt.xy, gt.conf > 0, fit), max_error)
