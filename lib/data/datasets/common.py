"""Small parsing helpers shared by the dataset readers (nested JSON look-ups, COCO-format files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lib.data.frames import DataMismatchError, join_rows, load_joblib

_GENDERS = {"m": "male", "male": "male", "f": "female", "female": "female", "neutral": "neutral"}
MAX_ABS_BETA = 3.0  # officially, fitted shapes with any |beta| above this are replaced by the mean shape


def nested(data: Any, keys: Sequence[Any], what: str) -> Any:
    """``data[k0][k1]...``: dicts are indexed by ``str(k)``, lists by ``int(k)``; a miss names the path."""
    node = data
    for depth, key in enumerate(keys):
        try:
            node = node[int(key)] if isinstance(node, list) else node[str(key)]
        except (KeyError, IndexError, ValueError):
            path = "][".join(str(k) for k in keys[: depth + 1])
            raise DataMismatchError(f"{what}: no entry [{path}]") from None
    return node


def nested_array(data: Any, keys: list[Sequence[Any]], what: str, shape: tuple[int, ...]) -> np.ndarray:
    """(N, *shape) float32 stack of ``nested(data, k)`` for each key path, cut to ``shape``'s columns."""
    out = np.empty((len(keys), *shape), dtype=np.float32)
    for i, key in enumerate(keys):
        value = np.asarray(nested(data, key, what), dtype=np.float32)
        out[i] = value[tuple(slice(0, s) for s in shape)]
    return out


def gender_name(value: str) -> str:
    """'male' / 'female' / 'neutral' from the spellings the annotation files use."""
    try:
        return _GENDERS[str(value).lower()]
    except KeyError:
        raise DataMismatchError(f"unknown gender {value!r}; expected one of {sorted(_GENDERS)}") from None


def image_index(coco: dict, what: str) -> dict[int, dict]:
    """``images`` of a COCO-format file by id."""
    if "images" not in coco or "annotations" not in coco:
        raise DataMismatchError(f"{what}: not a COCO-format file (needs 'images' and 'annotations')")
    return {int(img["id"]): img for img in coco["images"]}


def stack_params(params: list[dict], key: str, size: int) -> np.ndarray:
    """(N, size) float32 stack of ``param[key]`` (flattened), zeros where a param is None."""
    out = np.zeros((len(params), size), dtype=np.float32)
    for i, param in enumerate(params):
        if param is not None:
            out[i] = np.asarray(param[key], dtype=np.float32).reshape(-1)[:size]
    return out


def mean_shape_if_extreme(betas: np.ndarray) -> np.ndarray:
    """(N, 10) betas with the rows holding any |beta| > 3 set to zeros (the official ``get_smpl_coord``
    treatment of NeuralAnnot / SMPLify fits of Human3.6M, MPI-INF-3DHP and COCO)."""
    return np.where((np.abs(betas) > MAX_ABS_BETA).any(axis=1, keepdims=True), 0.0, betas).astype(np.float32)


def features_by_annotation(
    path: Path, what: str, ann_ids: Sequence[int], policy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of a joblib DB with ``features`` (M, D) and ``aid`` (M,), joined on annotation ids.

    Returns:
        features (M, D) float32, rows (N,) int into it, found (N,) bool (see ``join_rows``).
    """
    db = load_joblib(path, what, ("features", "aid"))
    available = [int(a) for a in np.asarray(db["aid"]).reshape(-1)]
    rows, found = join_rows([int(a) for a in ann_ids], available, f"{what} vs annotations", policy)
    return np.asarray(db["features"], dtype=np.float32), rows, found


def static_image_fields(
    prefix: str, anns: list[dict], images: dict[int, dict]
) -> dict[str, np.ndarray | bool]:
    """FrameTable fields of single-image datasets: every annotation is its own one-frame video."""
    imgs = [images[int(a["image_id"])] for a in anns]
    return {
        "video": np.array([f"{prefix}_{a['id']}" for a in anns]),
        "frame": np.zeros(len(anns), dtype=np.int64),
        "image_size": np.array([[img["width"], img["height"]] for img in imgs], dtype=np.float32),
        "image_name": np.array([img["file_name"] for img in imgs]),
        "ann_id": np.array([int(a["id"]) for a in anns], dtype=np.int64),
        "image_id": np.array([int(a["image_id"]) for a in anns], dtype=np.int64),
        "static": True,
    }
