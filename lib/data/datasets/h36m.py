"""Human3.6M in the preprocessed PMCE / Pose2Mesh layout (``DATA.H36M_DIR``, data/Human36M/h36m_data).

Per subject ``S`` in ``annotations/``:

* ``Human36M_subjectS_data.json``: COCO-format; ``images[]`` (``id``, ``file_name``, ``width``, ``height``,
  ``subject``, ``action_idx``, ``subaction_idx``, ``frame_idx``, ``cam_idx``), ``annotations[]`` (``id``,
  ``image_id``, ``bbox``).
* ``Human36M_subjectS_camera.json``: ``{cam: {R (3x3), t (3, mm), f (2), c (2)}}``, world -> camera.
* ``Human36M_subjectS_joint_3d.json``: world H36M-17 joints in mm, ``[action][subaction][frame]``.
* ``Human36M_subjectS_SMPL_NeuralAnnot.json``: ``{pose, shape, trans}`` per ``[action][subaction][frame]``
  in world coordinates (metres); a missing entry leaves the frame without a mesh.
* optional ``Human36M_subjectS_joint_coco_cam_3d_neuralannot.json``: COCO-19 camera joints (mm),
  ``[action][subaction][cam][frame]``; without it COCO-19 targets are regressed from the mesh.
* ``Human36M_subjectS_joint_coco_img_noise_neuralannot.json`` (read for the 'official_noise' input): the
  official precomputed noisy COCO-19 2D of the 3DPW (COCO) setting, pixels, keyed like the file above.

Features: ``h36m_{train,test}_imgfeat_db_concat.pt`` (joblib: ``features`` (M, 2048), ``img_name``),
joined on the image path (no start-index file, no running counter). Detections: ``cpn`` =
``Human36M_{train,test}_cpn_joint_2d.json`` (image path -> H36M-17 x, y[, score]) and ``official_noise``.

Protocol 2 as in the official code: every 2nd frame (25 fps; frame numbers are ``frame_idx // 2``), and
``s_11_act_02_subact_02_ca_0*`` skipped. Subjects per split come from the config (train S1, S5, S6, S7;
val S8; test S9, S11 by default). Meshes whose regressed H36M joints are more than 25 mm (mean,
translation-aligned) from the annotated ones are marked invalid, as officially. ``camera_id`` is the
files' ``cam_idx`` (1-4, the ``ca_0<k>`` of the image names; the official evaluation keeps camera 4).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lib.data.datasets.common import image_index, mean_shape_if_extreme, nested, stack_params
from lib.data.datasets.detections import DetectionFile
from lib.data.frames import (
    DataMismatchError,
    FrameTable,
    Keypoints2D,
    ReaderOptions,
    SmplParams,
    check_split,
    join_rows,
    keypoints_from_array,
    load_joblib,
    load_json,
    path_key,
    project,
)

NAME = "h36m"
SPLITS = ("train", "val", "test")
MESH_FIT_MAX_ERROR = 0.025  # metres
_SKIPPED_PREFIX = "s_11_act_02_subact_02_ca_0"  # corrupted videos, skipped officially
_FRAME_STEP = 2
_VIDEO = re.compile(r"s(\d+)_act(\d+)_subact(\d+)_ca(\d+)$")  # the video ids ``_video`` makes


def _file_split(split: str) -> str:
    return "test" if split == "test" else "train"


def detection_files(root: Path, split: str) -> dict[str, DetectionFile]:
    """Named detection files of a split (val subjects come from the training files)."""
    s = _file_split(split)
    path = root / f"Human36M_{s}_cpn_joint_2d.json"
    noise = "Human3.6M precomputed noisy COCO 2D (NeuralAnnot)"
    return {
        "cpn": DetectionFile(path, f"Human3.6M {s} CPN detections", _read_cpn),
        "official_noise": DetectionFile(root / "annotations", noise, _read_official_noise),
    }


def read(options: ReaderOptions, split: str) -> FrameTable:
    """The frame table of the subjects of a split ('train', 'val' or 'test')."""
    check_split(NAME, split, SPLITS)
    subjects = list(options.subjects.get(split, ()))
    if not subjects:
        raise ValueError(f"Human3.6M {split}: no subjects configured (DATA.H36M_{split.upper()}_SUBJECTS)")
    parts = [_read_subject(options.root / "annotations", int(s)) for s in subjects]
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    s = _file_split(split)
    db = load_joblib(
        options.root / f"h36m_{s}_imgfeat_db_concat.pt", f"Human3.6M {s} features", ("features", "img_name")
    )
    wanted = [path_key(n) for n in columns["image_name"]]
    rows, found = join_rows(
        wanted,
        [path_key(n) for n in db["img_name"]],
        f"Human3.6M {split} features vs annotations",
        options.missing_features,
    )
    table = _table(columns, np.asarray(db["features"], dtype=np.float32), rows)
    table.sources = _sources(options.root, s)
    return table.select(found)


def _sources(root: Path, s: str) -> dict[str, str]:
    """The files of each array, per subject as a pattern (the video id names the subject)."""
    ann = root / "annotations" / "Human36M_subject*"
    return {
        "features": str(root / f"h36m_{s}_imgfeat_db_concat.pt"),
        "gt2d": f"{ann}_joint_3d.json (projected)",
        "joints3d:h36m17": f"{ann}_joint_3d.json",
        "joints3d:coco19": f"{ann}_joint_coco_cam_3d_neuralannot.json",
        "smpl": f"{ann}_SMPL_NeuralAnnot.json",
        "smpl_camera": f"{ann}_camera.json",
    }


def _read_subject(ann_dir: Path, subject: int) -> dict[str, np.ndarray]:
    """Columns of one subject's kept frames."""
    what = f"Human3.6M S{subject}"
    data = load_json(ann_dir / f"Human36M_subject{subject}_data.json", f"{what} annotations")
    cams = load_json(ann_dir / f"Human36M_subject{subject}_camera.json", f"{what} cameras")
    world = load_json(ann_dir / f"Human36M_subject{subject}_joint_3d.json", f"{what} 3D joints")
    fits = load_json(ann_dir / f"Human36M_subject{subject}_SMPL_NeuralAnnot.json", f"{what} SMPL fits")
    coco_path = ann_dir / f"Human36M_subject{subject}_joint_coco_cam_3d_neuralannot.json"
    coco = load_json(coco_path, f"{what} COCO-19 joints") if coco_path.is_file() else None
    images = image_index(data, f"{what} annotations")
    kept = [
        (a, images[int(a["image_id"])])
        for a in data["annotations"]
        if images[int(a["image_id"])]["frame_idx"] % _FRAME_STEP == 0
        and not Path(images[int(a["image_id"])]["file_name"]).name.startswith(_SKIPPED_PREFIX)
    ]
    if not kept:
        raise DataMismatchError(f"{what}: no usable frames in the annotations")
    imgs = [img for _, img in kept]
    keys = [(img["action_idx"], img["subaction_idx"], img["frame_idx"]) for img in imgs]
    cam = [cams[str(img["cam_idx"])] for img in imgs]
    rotation = np.array([c["R"] for c in cam], dtype=np.float32)  # (N, 3, 3)
    translation = np.array([c["t"] for c in cam], dtype=np.float32).reshape(-1, 3) / 1000.0  # (N, 3) m
    intrinsics = np.array([[*c["f"], *c["c"]] for c in cam], dtype=np.float32)  # (N, 4)
    joints_world = (
        np.stack([np.asarray(nested(world, k, f"{what} 3D joints"), np.float32) for k in keys]) / 1000.0
    )
    joints_cam = joints_world @ rotation.transpose(0, 2, 1) + translation[:, None]  # (N, 17, 3)
    params = [_fit(fits, k) for k in keys]
    columns = {
        "video": np.array([_video(img) for img in imgs]),
        "frame": np.array([img["frame_idx"] // _FRAME_STEP for img in imgs], dtype=np.int64),
        "image_size": np.array([[img["width"], img["height"]] for img in imgs], dtype=np.float32),
        "image_name": np.array([img["file_name"] for img in imgs]),
        "ann_id": np.array([int(a["id"]) for a, _ in kept], dtype=np.int64),
        "image_id": np.array([int(img["id"]) for img in imgs], dtype=np.int64),
        "camera": intrinsics,
        "camera_id": np.array([img["cam_idx"] for img in imgs], dtype=np.int64),
        "joints_h36m": joints_cam.astype(np.float32),
        "pose": stack_params(params, "pose", 72),
        "betas": mean_shape_if_extreme(stack_params(params, "shape", 10)),
        "transl": stack_params(params, "trans", 3),
        "smpl_valid": np.array([p is not None for p in params]),
        "rotation": rotation,
        "translation": translation,
    }
    if coco is not None:
        ckeys = [(a, s, img["cam_idx"], f) for (a, s, f), img in zip(keys, imgs, strict=True)]
        columns["joints_coco"] = (
            np.stack(
                [np.asarray(nested(coco, k, f"{what} COCO-19 joints"), np.float32)[:19, :3] for k in ckeys]
            )
            / 1000.0
        )
    return columns


def _fit(fits: dict, key: tuple) -> dict | None:
    """The SMPL fit of a frame, or None."""
    try:
        return nested(fits, key, "fit")
    except DataMismatchError:
        return None


def _video(img: dict) -> str:
    subject, action, subaction, cam = (img[k] for k in ("subject", "action_idx", "subaction_idx", "cam_idx"))
    return f"s{subject:02d}_act{action:02d}_subact{subaction:02d}_ca{cam:02d}"


def _table(columns: dict[str, np.ndarray], features: np.ndarray, feature_rows: np.ndarray) -> FrameTable:
    n = len(columns["video"])
    joints3d = {"h36m17": columns["joints_h36m"]}
    if "joints_coco" in columns:
        joints3d["coco19"] = columns["joints_coco"]
    return FrameTable(
        name=NAME,
        video=columns["video"],
        frame=columns["frame"],
        image_size=columns["image_size"],
        image_name=columns["image_name"],
        features=features,
        feature_row=feature_rows,
        gt2d={
            "h36m17": Keypoints2D(
                "h36m17", project(columns["joints_h36m"], columns["camera"]), np.ones((n, 17), np.float32)
            )
        },
        joints3d=joints3d,
        joints3d_valid={k: np.ones(v.shape[:2], dtype=bool) for k, v in joints3d.items()},
        smpl=SmplParams(
            pose=columns["pose"],
            betas=columns["betas"],
            transl=columns["transl"],
            gender=np.full(n, "neutral"),
            valid=columns["smpl_valid"],
            rotation=columns["rotation"],
            translation=columns["translation"],
        ),
        camera=columns["camera"],
        camera_id=columns["camera_id"],
        ann_id=columns["ann_id"],
        image_id=columns["image_id"],
        mesh_fit_max_error=MESH_FIT_MAX_ERROR,
    )


def _read_cpn(path: Path, table: FrameTable, what: str) -> Keypoints2D:
    data = load_json(path, what)
    rows, _ = join_rows(
        [path_key(n) for n in table.image_name], [path_key(k) for k in data], f"{what} vs annotations"
    )
    values = list(data.values())
    return keypoints_from_array(
        "h36m17", np.stack([np.asarray(values[r], np.float32).reshape(17, -1) for r in rows])
    )


def _read_official_noise(ann_dir: Path, table: FrameTable, what: str) -> Keypoints2D:
    """COCO-17 of the per-subject noisy 2D files, ``[action][subaction][cam][source frame]``."""
    keys = [(*_video_keys(v), f * _FRAME_STEP) for v, f in zip(table.video, table.frame, strict=True)]
    files = {
        subject: load_json(ann_dir / f"Human36M_subject{subject}_joint_coco_img_noise_neuralannot.json", what)
        for subject in sorted({k[0] for k in keys})
    }
    values = np.stack([np.asarray(nested(files[k[0]], k[1:], what), np.float32)[:17, :2] for k in keys])
    return keypoints_from_array("coco17", values)


def _video_keys(video: str) -> tuple[int, int, int, int]:
    """(subject, action, subaction, camera) of a video id made by ``_video``."""
    match = _VIDEO.match(str(video))
    if match is None:
        raise DataMismatchError(f"Human3.6M: unexpected video id {video!r}")
    return tuple(int(g) for g in match.groups())
