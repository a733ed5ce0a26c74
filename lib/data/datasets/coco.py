"""COCO 2014 train in the preprocessed PMCE / Pose2Mesh layout (``DATA.COCO_DIR``, data/COCO/coco_data).

Files in ``annotations/``:

* ``person_keypoints_train2014.json``: COCO keypoints; ``images[]`` (``id``, ``file_name``, ``width``,
  ``height``), ``annotations[]`` (``id``, ``image_id``, ``keypoints`` 17 x (x, y, v), ``num_keypoints``,
  ``iscrowd``, ``bbox``). Crowd, keypoint-less and zero-size-box annotations are skipped, as officially.
* ``coco_smplify_train.json``: ``{str(annotation id): {smpl_param: {pose, shape}, cam_param: {s, t}}}``;
  as officially, annotations without a fit are skipped (every target comes from the fit) and shapes
  with any |beta| > 3 become the mean shape.
* ``coco_train_db.pt``: joblib ``features`` (M, 2048), ``img_name``, ``aid``; joined on the annotation id.

The fit's camera is weak perspective, as in Pose2Mesh / I2L-MeshNet (``get_joints_from_mesh``): the
joints of the untranslated SMPL body (model frame, metres) map to pixels of the full original image by
``(x, y) = s * (X, Y) + (tx, ty)``, so ``s`` is pixels per metre and depth is dropped. It is kept as
``weak_camera``; lib/data/build.py projects the fit's COCO-17 joints with it into the 'fit' input (the
official 2D input, with synthetic noise: 'fit_noise') and drops every target of an annotation whose fit
disagrees with its keypoints (lib/data/fit_check.py, ``DATA.FIT_ERROR_MAX``).

Static images: every annotation is its own one-frame video, repeated over the window. The 2D ground truth
('gt', 'gt_noise') is the annotated keypoints; unlabelled joints (v = 0) get confidence 0 and the mean
position of the labelled ones, so the noise model's person size stays meaningful. Only a 'train' split
exists officially; our 'val' is a deterministic holdout of it (``DATA.VAL_FRACTION``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.data.datasets.common import (
    features_by_annotation,
    image_index,
    mean_shape_if_extreme,
    stack_params,
    static_image_fields,
)
from lib.data.datasets.detections import DetectionFile
from lib.data.frames import (
    FrameTable,
    Keypoints2D,
    ReaderOptions,
    SmplParams,
    check_split,
    load_json,
    split_holdout,
)

NAME = "coco"
SPLITS = ("train", "val")


def detection_files(root: Path, split: str) -> dict[str, DetectionFile]:
    """COCO has no named detection files (user files go through DATA.DETECTION_FILES)."""
    return {}


def read(options: ReaderOptions, split: str) -> FrameTable:
    """The frame table of 'train' or 'val' (a held-out share of the official training annotations)."""
    check_split(NAME, split, SPLITS)
    ann_dir = options.root / "annotations"
    coco = load_json(ann_dir / "person_keypoints_train2014.json", "COCO train keypoint annotations")
    images = image_index(coco, "COCO train keypoint annotations")
    fits = load_json(ann_dir / "coco_smplify_train.json", "COCO train SMPLify fits")
    anns = [a for a in coco["annotations"] if _usable(a) and str(a["id"]) in fits]
    aids = [int(a["id"]) for a in anns]
    features, rows, found = features_by_annotation(
        ann_dir / "coco_train_db.pt", "COCO train features", aids, options.missing_features
    )
    keep = np.flatnonzero(found)
    anns = [anns[i] for i in keep]
    fit = [fits[str(a["id"])] for a in anns]
    params = [f["smpl_param"] for f in fit]
    n = len(anns)
    table = FrameTable(
        name=NAME,
        **static_image_fields("coco", anns, images),
        features=features,
        feature_row=rows[keep],
        gt2d={"coco17": _keypoints(anns)},
        smpl=SmplParams(
            pose=stack_params(params, "pose", 72),
            betas=mean_shape_if_extreme(stack_params(params, "shape", 10)),
            transl=np.zeros((n, 3), dtype=np.float32),
            gender=np.full(n, "neutral"),
            valid=np.ones(n, dtype=bool),
        ),
        weak_camera=np.array(
            [[float(np.ravel(f["cam_param"]["s"])[0]), *np.ravel(f["cam_param"]["t"])[:2]] for f in fit],
            dtype=np.float32,
        ).reshape(n, 3),
        sources={
            "features": str(ann_dir / "coco_train_db.pt"),
            "gt2d": str(ann_dir / "person_keypoints_train2014.json"),
            "smpl": str(ann_dir / "coco_smplify_train.json"),
            "weak_camera": str(ann_dir / "coco_smplify_train.json"),
        },
    )
    return split_holdout(table, split, options.val_fraction)


def _usable(ann: dict) -> bool:
    """Not a crowd, at least one labelled keypoint, a box of positive size."""
    labelled = np.asarray(ann["keypoints"], dtype=np.float32).reshape(17, 3)[:, 2] > 0
    width, height = ann["bbox"][2], ann["bbox"][3]
    return not ann.get("iscrowd", 0) and labelled.any() and width > 0 and height > 0


def _keypoints(anns: list[dict]) -> Keypoints2D:
    values = np.stack([np.asarray(a["keypoints"], dtype=np.float32).reshape(17, 3) for a in anns])
    labelled = values[..., 2] > 0  # (N, 17)
    xy = values[..., :2]
    centre = (xy * labelled[..., None]).sum(axis=1) / labelled.sum(axis=1)[:, None]  # (N, 2)
    xy = np.where(labelled[..., None], xy, centre[:, None]).astype(np.float32)
    return Keypoints2D("coco17", xy, labelled.astype(np.float32))
