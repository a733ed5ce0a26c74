"""3DPW in the preprocessed PMCE / Pose2Mesh layout (``DATA.PW3D_DIR``, default data/PW3D/pw3d_data).

Files per split ``S`` (``train``, ``validation``, ``test``; our 'val' is the official 'validation'):

* ``3DPW_latest_S.json``: COCO-format; ``images[]`` (``id``, ``file_name`` 'image_00042.jpg', ``width``,
  ``height``, ``sequence``, optional ``cam_param`` {``focal``, ``princpt``}); ``annotations[]`` (``id``,
  ``image_id``, ``person_id``, ``smpl_param`` {``pose`` 72, ``shape`` 10, ``trans`` 3, ``gender``}),
  SMPL already in camera coordinates (metres).
* ``3DPW_S_joint_coco_cam.json`` (COCO-19 3D, mm), ``3DPW_S_gt_joint_coco_img.json`` (COCO-19 2D,
  pixels), ``3DPW_S_joint_h36m_cam.json`` (H36M-17 3D, mm): ``[sequence][str(frame)][str(person)]``.
* ``3DPW_S_img_feat.json``: ``{"<sequence>_<person>_<frame>": [2048 floats]}``.
* detections: ``vitpose_3dpw_test_output.json`` (test; COCO keypoint results keyed by ``annotation_id``)
  and ``3DPW_train_joint_coco_img_noise.json`` (train; the official precomputed noisy COCO-19 2D,
  ``[sequence][frame][person]``), selectable as 'vitpose' / 'official_noise'.

A video is one person of one sequence (id ``<sequence>_<person>``); frames are the image numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.data.datasets.common import gender_name, image_index, nested, nested_array, stack_params
from lib.data.datasets.detections import DetectionFile
from lib.data.frames import (
    FrameTable,
    Keypoints2D,
    ReaderOptions,
    SmplParams,
    check_split,
    frame_number,
    join_rows,
    keypoints_from_array,
    load_feature_json,
    load_json,
)

NAME = "3dpw"
SPLITS = {"train": "train", "val": "validation", "test": "test"}


def detection_files(root: Path, split: str) -> dict[str, DetectionFile]:
    """Named detection files of a split."""
    if split == "test":
        return {
            "vitpose": DetectionFile(root / "vitpose_3dpw_test_output.json", "3DPW test ViTPose detections")
        }
    if split == "train":
        path = root / "3DPW_train_joint_coco_img_noise.json"
        return {
            "official_noise": DetectionFile(path, "3DPW train precomputed noisy 2D", _read_official_noise)
        }
    return {}


def read(options: ReaderOptions, split: str) -> FrameTable:
    """The frame table of a 3DPW split ('train', 'val' or 'test')."""
    check_split(NAME, split, tuple(SPLITS))
    root, s = options.root, SPLITS[split]
    coco = load_json(root / f"3DPW_latest_{s}.json", f"3DPW {split} annotations")
    images = image_index(coco, f"3DPW {split} annotations")
    anns = coco["annotations"]
    seq = [images[int(a["image_id"])]["sequence"] for a in anns]
    frame = np.array([frame_number(images[int(a["image_id"])]["file_name"]) for a in anns], dtype=np.int64)
    person = [int(a["person_id"]) for a in anns]

    feat_keys, features = load_feature_json(
        root / f"3DPW_{s}_img_feat.json", f"3DPW {split} image features", options.cache_dir
    )
    wanted = [f"{q}_{p}_{f}" for q, p, f in zip(seq, person, frame, strict=True)]
    rows, found = join_rows(
        wanted, feat_keys, f"3DPW {split} features vs annotations", options.missing_features
    )
    keep = np.flatnonzero(found)
    anns, seq, frame, person = (
        [anns[i] for i in keep],
        [seq[i] for i in keep],
        frame[keep],
        [person[i] for i in keep],
    )
    keys = [(q, f, p) for q, f, p in zip(seq, frame, person, strict=True)]
    imgs = [images[int(a["image_id"])] for a in anns]
    return FrameTable(
        name=NAME,
        video=np.array([f"{q}_{p}" for q, p in zip(seq, person, strict=True)]),
        frame=frame,
        image_size=np.array([[img["width"], img["height"]] for img in imgs], dtype=np.float32),
        image_name=np.array([f"{q}/{img['file_name']}" for q, img in zip(seq, imgs, strict=True)]),
        features=features,
        feature_row=rows[keep],
        gt2d=_gt2d(root, s, split, keys),
        joints3d=_joints3d(root, s, split, keys),
        joints3d_valid={"coco19": np.ones((len(keys), 19), bool), "h36m17": np.ones((len(keys), 17), bool)},
        smpl=_smpl(anns),
        camera=_camera(imgs),
        ann_id=np.array([int(a["id"]) for a in anns], dtype=np.int64),
        image_id=np.array([int(a["image_id"]) for a in anns], dtype=np.int64),
        sources={
            "features": str(root / f"3DPW_{s}_img_feat.json"),
            "gt2d": str(root / f"3DPW_{s}_gt_joint_coco_img.json"),
            "joints3d:coco19": str(root / f"3DPW_{s}_joint_coco_cam.json"),
            "joints3d:h36m17": str(root / f"3DPW_{s}_joint_h36m_cam.json"),
            "smpl": str(root / f"3DPW_latest_{s}.json"),
        },
    )


def _gt2d(root: Path, s: str, split: str, keys: list) -> dict[str, Keypoints2D]:
    data = load_json(root / f"3DPW_{s}_gt_joint_coco_img.json", f"3DPW {split} ground-truth 2D joints")
    xy = nested_array(data, keys, f"3DPW {split} ground-truth 2D joints", (19, 2))
    return {"coco17": Keypoints2D("coco17", xy[:, :17].copy(), np.ones((len(keys), 17), np.float32))}


def _joints3d(root: Path, s: str, split: str, keys: list) -> dict[str, np.ndarray]:
    coco = load_json(root / f"3DPW_{s}_joint_coco_cam.json", f"3DPW {split} COCO-19 camera joints")
    h36m = load_json(root / f"3DPW_{s}_joint_h36m_cam.json", f"3DPW {split} H36M-17 camera joints")
    return {
        "coco19": nested_array(coco, keys, f"3DPW {split} COCO-19 camera joints", (19, 3)) / 1000.0,
        "h36m17": nested_array(h36m, keys, f"3DPW {split} H36M-17 camera joints", (17, 3)) / 1000.0,
    }


def _smpl(anns: list[dict]) -> SmplParams:
    params = [a["smpl_param"] for a in anns]
    return SmplParams(
        pose=stack_params(params, "pose", 72),
        betas=stack_params(params, "shape", 10),
        transl=stack_params(params, "trans", 3),
        gender=np.array([gender_name(p["gender"]) for p in params]),
        valid=np.ones(len(params), dtype=bool),
    )


def _camera(imgs: list[dict]) -> np.ndarray:
    camera = np.full((len(imgs), 4), np.nan, dtype=np.float32)
    for i, img in enumerate(imgs):
        if "cam_param" in img:
            camera[i] = [*img["cam_param"]["focal"], *img["cam_param"]["princpt"]]
    return camera


def _read_official_noise(path: Path, table: FrameTable, what: str) -> Keypoints2D:
    data = load_json(path, what)
    seq_person = [v.rsplit("_", 1) for v in table.video]
    keys = [(q, f, p) for (q, p), f in zip(seq_person, table.frame, strict=True)]
    values = np.stack([np.asarray(nested(data, k, what), dtype=np.float32)[:17, :2] for k in keys])
    return keypoints_from_array("coco17", values)
