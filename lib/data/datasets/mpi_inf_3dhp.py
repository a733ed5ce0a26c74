"""MPI-INF-3DHP in the preprocessed PMCE layout (``DATA.MPII3D_DIR``, data/MPII3D/mpii3d_data).

Training split (our 'train' / 'val' are a deterministic per-video holdout of it, ``DATA.VAL_FRACTION``):

* ``MPI-INF-3DHP.json``: COCO-format; ``images[]`` (``id``, ``file_name``, ``width``, ``height``,
  ``subject_idx``, ``seq_idx``, ``cam_idx``, ``frame_idx``), ``annotations[]`` (``id``, ``image_id``).
* ``MPI-INF-3DHP_SMPL_NeuralAnnot.json``: ``{pose, shape, trans}`` per ``[subject][seq][frame]`` in world
  coordinates (metres); missing or NaN parameters leave the frame without a mesh; shapes with any
  |beta| > 3 become the mean shape, as officially.
* ``MPI-INF-3DHP_camera.json``: ``{focal, princpt, R, t (mm)}`` per ``[subject][seq][cam]``.
* ``MPII3D_train_joint_coco_cam.json`` (COCO-19 3D, mm), ``MPII3D_train_gt_joint_coco_img.json``
  (COCO-19 2D), ``MPII3D_train_joint_h36m_cam.json`` (H36M-17 3D, mm) and
  ``MPII3D_train_joint_coco_img_noise.json`` (the official precomputed noisy COCO-19 2D input, pixels;
  'official_noise'), each keyed ``[subject][seq][cam][frame]``.
* ``mpii3d_train_scale12_db.pt`` (joblib: ``features``, ``img_name`` as
  ``.../S{s}/Seq{q}/video_{c}/{frame:06d}.jpg``), joined on (subject, seq, cam, frame).

As officially, a training frame whose noisy 2D is further than ``DATA.FIT_ERROR_MAX`` from its ground-truth
2D (lib/data/fit_check.py, in a 64x64 box around the noisy pose) has no targets: its joints are marked
invalid, which leaves its mesh without a root and so invalid too. Its windows stay, as officially.

Test split (the official 'val' DB; our 'test'): ``mpii3d_val_scale12_db.pt`` (TCMR DB: ``vid_name``
'subj<k>_seg<i>', ``frame_id`` 'img_000001', ``img_name`` '.../mpi_inf_3dhp_test_set/TS<k>/imageSequence/
img_000001.jpg', ``joints2D`` (N, 49, 3) pixels, ``joints3D`` (N, 49, 3) metres, pelvis-relative,
``features``, ``valid_i`` (N, 1)) and ``vitpose_mpii3d_val_output.json`` ('vitpose', COCO keypoint results
by ``image_name``). A video is one test sequence TS1-TS6 (the official grouping, image path minus its file
name) and a frame its image number - 1; TCMR's segments ('_seg<i>': frames removed because joints left
the image) are the gaps in those numbers, where the padded window modes split the video. Fixes over the
official reader: each test sequence's real image size (TS1-TS4 are 2048x2048, TS5/TS6 1920x1080) instead
of 2048x2048 everywhere; ``valid_i`` becomes ``frame_valid``, which the corrected protocol respects and
the official one ignores (targets stay as annotated). Meshes are not available for the test set.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lib.data.datasets.common import image_index, mean_shape_if_extreme, nested
from lib.data.datasets.detections import DetectionFile
from lib.data.fit_check import box_errors, within
from lib.data.frames import (
    DataMismatchError,
    FrameTable,
    Keypoints2D,
    ReaderOptions,
    SmplParams,
    check_split,
    frame_number,
    join_rows,
    keypoints_from_array,
    load_joblib,
    load_json,
    split_holdout,
)

NAME = "mpi_inf_3dhp"
SPLITS = ("train", "val", "test")
TEST_IMAGE_SIZE = {
    "TS1": (2048, 2048),
    "TS2": (2048, 2048),
    "TS3": (2048, 2048),
    "TS4": (2048, 2048),
    "TS5": (1920, 1080),
    "TS6": (1920, 1080),
}
# Rows of the 49-joint SPIN array (25 OpenPose + 24 ground-truth joints) for each joint of our sets.
SPIN49_TO_H36M17 = (39, 27, 26, 25, 28, 29, 30, 41, 37, 43, 38, 34, 35, 36, 33, 32, 31)
SPIN49_TO_COCO17 = (44, 45, 46, 47, 48, 34, 33, 35, 32, 36, 31, 28, 27, 29, 26, 30, 25)
_TEST_DB_KEYS = ("img_name", "joints2D", "joints3D", "features", "valid_i")
_FEATURE_NAME = re.compile(r"S(\d+)/Seq(\d+)/video_(\d+)/(\d+)\.jpg$")
_TEST_SEQUENCE = re.compile(r"(?:^|/)(TS\d)/")


def detection_files(root: Path, split: str) -> dict[str, DetectionFile]:
    """Named detection files of a split (the training split's 'official_noise' comes with the table)."""
    if split == "test":
        return {
            "vitpose": DetectionFile(
                root / "vitpose_mpii3d_val_output.json", "MPI-INF-3DHP test ViTPose detections"
            )
        }
    return {}


def read(options: ReaderOptions, split: str) -> FrameTable:
    """The frame table of a split ('train', 'val' = held-out training videos, or 'test')."""
    check_split(NAME, split, SPLITS)
    if split == "test":
        return _read_test(options.root)
    return split_holdout(_read_train(options), split, options.val_fraction)


def ts_sequence(image_name: str) -> str:
    """The test sequence 'TS1'..'TS6' of an image path '.../TS<k>/imageSequence/img_000001.jpg'."""
    match = _TEST_SEQUENCE.search(str(image_name))
    if match is None or match.group(1) not in TEST_IMAGE_SIZE:
        raise DataMismatchError(f"MPI-INF-3DHP test: cannot tell the sequence (TS1..TS6) of {image_name!r}")
    return match.group(1)


def _read_test(root: Path) -> FrameTable:
    db = load_joblib(root / "mpii3d_val_scale12_db.pt", "MPI-INF-3DHP test database", _TEST_DB_KEYS)
    names = np.asarray(db["img_name"]).astype(str)
    video = np.array([ts_sequence(name) for name in names])
    joints2d = np.asarray(db["joints2D"], dtype=np.float32)  # (N, 49, 3)
    joints3d = np.asarray(db["joints3D"], dtype=np.float32)[:, SPIN49_TO_H36M17]  # (N, 17, 3) m
    n = len(video)
    return FrameTable(
        name=NAME,
        video=video,
        frame=np.array([frame_number(name) - 1 for name in names], dtype=np.int64),  # img_000001: frame 0
        image_size=np.array([TEST_IMAGE_SIZE[v] for v in video], dtype=np.float32),
        image_name=names,
        features=np.asarray(db["features"], dtype=np.float32),
        feature_row=np.arange(n),
        gt2d={
            "h36m17": keypoints_from_array("h36m17", joints2d[:, SPIN49_TO_H36M17]),
            "coco17": keypoints_from_array("coco17", joints2d[:, SPIN49_TO_COCO17]),
        },
        joints3d={"h36m17": joints3d},
        joints3d_valid={"h36m17": np.ones((n, 17), dtype=bool)},
        frame_valid=np.asarray(db["valid_i"]).reshape(n).astype(bool),
        sources=dict.fromkeys(("features", "gt2d", "joints3d"), str(root / "mpii3d_val_scale12_db.pt")),
    )


def _read_train(options: ReaderOptions) -> FrameTable:
    root = options.root
    coco = load_json(root / "MPI-INF-3DHP.json", "MPI-INF-3DHP train annotations")
    images = image_index(coco, "MPI-INF-3DHP train annotations")
    anns = coco["annotations"]
    imgs = [images[int(a["image_id"])] for a in anns]
    keys = [(img["subject_idx"], img["seq_idx"], img["cam_idx"], img["frame_idx"]) for img in imgs]
    db = load_joblib(
        root / "mpii3d_train_scale12_db.pt", "MPI-INF-3DHP train features", ("features", "img_name")
    )
    rows, found = join_rows(
        keys,
        [_feature_key(n) for n in db["img_name"]],
        "MPI-INF-3DHP train features vs annotations",
        options.missing_features,
    )
    keep = np.flatnonzero(found)
    anns, imgs, keys = [anns[i] for i in keep], [imgs[i] for i in keep], [keys[i] for i in keep]
    cams = load_json(root / "MPI-INF-3DHP_camera.json", "MPI-INF-3DHP train cameras")
    cam = [nested(cams, (s, q, c), "MPI-INF-3DHP train cameras") for s, q, c, _ in keys]
    joints = _train_joints(root, keys)
    gt2d, noisy = joints.pop("gt2d"), joints.pop("noise2d")
    ones = np.ones((len(anns), 17), np.float32)
    # The official check measures the noisy input against the truth in the box of the noisy pose.
    errors = box_errors(noisy[:, :17], gt2d[:, :17], ones.astype(bool), noisy)
    usable = within(errors, options.fit_error_max)
    return FrameTable(
        name=NAME,
        video=np.array([f"S{s}_Seq{q}_cam{c}" for s, q, c, _ in keys]),
        frame=np.array([f for *_, f in keys], dtype=np.int64),
        image_size=np.array([[img["width"], img["height"]] for img in imgs], dtype=np.float32),
        image_name=np.array([img["file_name"] for img in imgs]),
        features=np.asarray(db["features"], dtype=np.float32),
        feature_row=rows[keep],
        gt2d={"coco17": Keypoints2D("coco17", gt2d[:, :17].copy(), ones)},
        detections={"official_noise": Keypoints2D("coco17", noisy[:, :17].copy(), ones.copy())},
        joints3d=joints,
        joints3d_valid={k: np.repeat(usable[:, None], v.shape[1], axis=1) for k, v in joints.items()},
        smpl=_train_smpl(root, keys, cam),
        camera=np.array(
            [[*np.ravel(c["focal"])[:2], *np.ravel(c["princpt"])[:2]] for c in cam], dtype=np.float32
        ),
        camera_id=np.array([c for _, _, c, _ in keys], dtype=np.int64),
        ann_id=np.array([int(a["id"]) for a in anns], dtype=np.int64),
        image_id=np.array([int(img["id"]) for img in imgs], dtype=np.int64),
        sources={
            "features": str(root / "mpii3d_train_scale12_db.pt"),
            "gt2d": str(root / "MPII3D_train_gt_joint_coco_img.json"),
            "detections:official_noise": str(root / "MPII3D_train_joint_coco_img_noise.json"),
            "joints3d:coco19": str(root / "MPII3D_train_joint_coco_cam.json"),
            "joints3d:h36m17": str(root / "MPII3D_train_joint_h36m_cam.json"),
            "smpl": str(root / "MPI-INF-3DHP_SMPL_NeuralAnnot.json"),
            "smpl_camera": str(root / "MPI-INF-3DHP_camera.json"),
        },
    )


def _feature_key(name: str) -> tuple[int, int, int, int]:
    match = _FEATURE_NAME.search(str(name))
    if match is None:
        raise DataMismatchError(f"MPI-INF-3DHP train features: unexpected img_name {name!r}")
    return tuple(int(g) for g in match.groups())


def _train_joints(root: Path, keys: list[tuple]) -> dict[str, np.ndarray]:
    """COCO-19 / H36M-17 camera joints (m) and, under 'gt2d' / 'noise2d', the ground-truth / noisy COCO-19
    2D (pixels) of each (subject, seq, cam, frame) key."""
    files = {
        "coco19": ("MPII3D_train_joint_coco_cam.json", "COCO-19 camera joints", (19, 3), 1000.0),
        "h36m17": ("MPII3D_train_joint_h36m_cam.json", "H36M-17 camera joints", (17, 3), 1000.0),
        "gt2d": ("MPII3D_train_gt_joint_coco_img.json", "ground-truth 2D joints", (19, 2), 1.0),
        "noise2d": ("MPII3D_train_joint_coco_img_noise.json", "precomputed noisy 2D joints", (19, 2), 1.0),
    }
    out = {}
    for key, (file, what, shape, scale) in files.items():
        data = load_json(root / file, f"MPI-INF-3DHP train {what}")
        values = [np.asarray(nested(data, k, f"MPI-INF-3DHP train {what}"), np.float32) for k in keys]
        out[key] = np.stack([v[: shape[0], : shape[1]] for v in values]) / scale
    return out


def _train_smpl(root: Path, keys: list[tuple], cam: list[dict]) -> SmplParams:
    fits = load_json(root / "MPI-INF-3DHP_SMPL_NeuralAnnot.json", "MPI-INF-3DHP train SMPL fits")
    n = len(keys)
    pose, betas, transl = (
        np.zeros((n, 72), np.float32),
        np.zeros((n, 10), np.float32),
        np.zeros((n, 3), np.float32),
    )
    valid = np.zeros(n, dtype=bool)
    for i, (s, q, _, f) in enumerate(keys):
        try:
            fit = nested(fits, (s, q, f), "fit")
        except DataMismatchError:
            continue
        values = [np.asarray(fit[k], np.float32).reshape(-1) for k in ("pose", "shape", "trans")]
        if all(np.isfinite(v).all() for v in values):
            pose[i], betas[i], transl[i] = values[0][:72], values[1][:10], values[2][:3]
            valid[i] = True
    return SmplParams(
        pose=pose,
        betas=mean_shape_if_extreme(betas),
        transl=transl,
        gender=np.full(n, "neutral"),
        valid=valid,
        rotation=np.array([c["R"] for c in cam], dtype=np.float32).reshape(n, 3, 3),
        translation=np.array([c["t"] for c in cam], dtype=np.float32).reshape(n, 3) / 1000.0,
    )
