"""MPII human pose (train) in the preprocessed PMCE / I2L layout (``DATA.MPII_DIR``, data/MPII/mpii_data).

Files:

* ``train.json``: COCO-format; ``images[]`` (``id``, ``file_name``, ``width``, ``height``),
  ``annotations[]`` (``id``, ``image_id``, MPII-16 ``keypoints``, ``bbox``).
* ``MPII_train_SMPL_NeuralAnnot.json``: ``{str(annotation id): {smpl_param: {pose, shape, trans},
  cam_param: {focal, princpt}}}`` (camera coordinates, metres).
* ``mpii_train_db.pt``: joblib ``features`` (M, 2048), ``img_name``, ``aid``; joined on the annotation id.

MPII's own keypoints lack the face joints of COCO-17, so, as officially, the 2D ground truth is the
fitted mesh's COCO-17 joints projected with the fit's camera (done by lib/data/build.py once the meshes
are cached; it needs the 'coco17' regressor). Annotations without a fit are therefore dropped. Static
images; only 'train' exists officially, our 'val' is a deterministic holdout (``DATA.VAL_FRACTION``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.data.datasets.common import features_by_annotation, image_index, stack_params, static_image_fields
from lib.data.datasets.detections import DetectionFile
from lib.data.frames import FrameTable, ReaderOptions, SmplParams, check_split, load_json, split_holdout

NAME = "mpii"
SPLITS = ("train", "val")


def detection_files(root: Path, split: str) -> dict[str, DetectionFile]:
    """MPII has no named detection files (user files go through DATA.DETECTION_FILES)."""
    return {}


def read(options: ReaderOptions, split: str) -> FrameTable:
    """The frame table of 'train' or 'val' (a held-out share of the official training annotations)."""
    check_split(NAME, split, SPLITS)
    root = options.root
    coco = load_json(root / "train.json", "MPII train annotations")
    images = image_index(coco, "MPII train annotations")
    fits = load_json(root / "MPII_train_SMPL_NeuralAnnot.json", "MPII train SMPL fits")
    anns = [a for a in coco["annotations"] if str(a["id"]) in fits]
    features, rows, found = features_by_annotation(
        root / "mpii_train_db.pt",
        "MPII train features",
        [int(a["id"]) for a in anns],
        options.missing_features,
    )
    keep = np.flatnonzero(found)
    anns = [anns[i] for i in keep]
    fit = [fits[str(a["id"])] for a in anns]
    params = [f["smpl_param"] for f in fit]
    n = len(anns)
    table = FrameTable(
        name=NAME,
        **static_image_fields("mpii", anns, images),
        features=features,
        feature_row=rows[keep],
        smpl=SmplParams(
            pose=stack_params(params, "pose", 72),
            betas=stack_params(params, "shape", 10),
            transl=stack_params(params, "trans", 3),
            gender=np.full(n, "neutral"),
            valid=np.ones(n, dtype=bool),
        ),
        camera=np.array(
            [[*np.ravel(f["cam_param"]["focal"])[:2], *np.ravel(f["cam_param"]["princpt"])[:2]] for f in fit],
            dtype=np.float32,
        ).reshape(n, 4),
        sources={
            "features": str(root / "mpii_train_db.pt"),
            "smpl": str(root / "MPII_train_SMPL_NeuralAnnot.json"),
        },
    )
    return split_holdout(table, split, options.val_fraction)
