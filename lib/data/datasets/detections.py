"""Precomputed 2D detections in the COCO keypoint-result format, joined to a frame table.

Format: a JSON list of ``{"annotation_id" | "image_id" | "image_name": ..., "keypoints": [x, y, score] *
17, "score": s}`` in pixels of the full image (the official ViTPose outputs for 3DPW and MPI-INF-3DHP use
``annotation_id`` / ``image_name``). Entries are matched to table rows on that key. An image name matches
the entry name that shares the longest path suffix with it, so the folders that tell images apart count
whatever the roots (MPI-INF-3DHP's six test sequences all hold ``imageSequence/img_000001.jpg``; the
sequence folder ``TS<k>`` decides). A name whose longest shared suffix fits several entry names, or an
entry name that several table images fall on, is an error naming the file and the suffix. Where several
people share an image, the entry closest to the row's ground-truth 2D is taken, or the highest-scoring
one when the table has no ground truth. A row without any entry is an error naming the first missing
keys (no silent drops).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lib.data.frames import DataMismatchError, FrameTable, Keypoints2D, load_json

KEY_FIELDS = ("annotation_id", "image_id", "image_name")


@dataclass(frozen=True)
class DetectionFile:
    """A named detection file of a dataset split and how to parse it."""

    path: Path
    what: str  # description for error messages, e.g. '3DPW test ViTPose detections'
    parse: Callable[[Path, FrameTable, str], Keypoints2D] | None = None  # None: COCO keypoint results


def read_keypoint_results(path: Path, table: FrameTable, what: str) -> Keypoints2D:
    """COCO-17 detections (N, 17, 2) pixels + (N, 17) scores for every row of ``table``."""
    entries = load_json(path, what)
    if not isinstance(entries, list) or not entries:
        raise DataMismatchError(f"{what} {path}: expected a non-empty list of keypoint results")
    field = next((f for f in KEY_FIELDS if f in entries[0]), None)
    if field is None:
        raise DataMismatchError(f"{what} {path}: entries need one of the keys {KEY_FIELDS}")
    row_keys = _row_keys(table, field, what)
    by_key: dict[object, list[np.ndarray]] = {}
    for entry in entries:
        key = str(entry[field]) if field == "image_name" else int(entry[field])
        by_key.setdefault(key, []).append(np.asarray(entry["keypoints"], dtype=np.float32).reshape(17, 3))
    if field == "image_name":
        matched = match_image_names(sorted(set(row_keys)), list(by_key), f"{what} {path}")
        row_keys = [matched.get(k, k) for k in row_keys]  # an unmatched name stays, reported as missing
    missing = [k for k in row_keys if k not in by_key]
    if missing:
        raise DataMismatchError(
            f"{what} {path}: {len(missing)} of {len(row_keys)} frames have no detection "
            f"({len(by_key)} keys in the file); first missing {field}: {missing[:5]}"
        )
    gt = table.gt2d.get("coco17")
    picked = np.stack(
        [_pick(by_key[k], None if gt is None else gt.xy[i]) for i, k in enumerate(row_keys)]
    )  # (N, 17, 3)
    return Keypoints2D("coco17", picked[..., :2].copy(), picked[..., 2].copy())


def match_image_names(wanted: list[str], available: list[str], what: str) -> dict[str, str]:
    """Each wanted image path's entry in ``available``: the one sharing the longest path suffix with it.

    Returns:
        {wanted name: available name} for the names that share at least the file name with an entry.
        Raises a DataMismatchError when that longest suffix is shared by several entries, or when one
        entry is the match of several wanted images (the paths cannot tell those images apart).
    """
    index = _suffix_index(available)
    matched = {}
    for name in wanted:
        parts = _parts(name)
        suffix = next((parts[-k:] for k in range(len(parts), 0, -1) if parts[-k:] in index), None)
        if suffix is None:
            continue
        hits = sorted(index[suffix])
        if len(hits) > 1:
            raise DataMismatchError(
                f"{what}: image {name!r} matches {len(hits)} entries on the path {'/'.join(suffix)!r} "
                f"(e.g. {hits[:3]}); give the entries image names with the folders that tell them apart"
            )
        matched[name] = hits[0]
    _check_one_image_per_entry(matched, what)
    return matched


def _suffix_index(names: list[str]) -> dict[tuple[str, ...], set[str]]:
    """Every path suffix (1, 2, ... trailing parts) of ``names`` -> the names ending in it."""
    index: dict[tuple[str, ...], set[str]] = {}
    for name in names:
        parts = _parts(name)
        for k in range(1, len(parts) + 1):
            index.setdefault(parts[-k:], set()).add(name)
    return index


def _check_one_image_per_entry(matched: dict[str, str], what: str) -> None:
    images: dict[str, list[str]] = {}
    for name, entry in matched.items():
        images.setdefault(entry, []).append(name)
    for entry, names in images.items():
        if len(names) > 1:
            raise DataMismatchError(
                f"{what}: entry {entry!r} is the only match of {len(names)} different images "
                f"(e.g. {names[:3]}); its path cannot tell them apart, give full image paths"
            )


def _parts(name: str) -> tuple[str, ...]:
    return PurePosixPath(str(name)).parts


def _row_keys(table: FrameTable, field: str, what: str) -> list:
    if field == "image_name":
        return [str(name) for name in table.image_name]
    ids = table.ann_id if field == "annotation_id" else table.image_id
    if ids is None:
        raise DataMismatchError(f"{what}: the {table.name} table has no {field} to join detections on")
    return [int(i) for i in ids]


def _pick(candidates: list[np.ndarray], gt_xy: np.ndarray | None) -> np.ndarray:
    """The (17, 3) detection of one row among the entries of its key."""
    if len(candidates) == 1:
        return candidates[0]
    if gt_xy is None:
        return max(candidates, key=lambda c: float(c[:, 2].mean()))
    return min(candidates, key=lambda c: float(np.linalg.norm(c[:, :2] - gt_xy, axis=-1).mean()))


def load_detections(table: FrameTable, name: str, spec: DetectionFile) -> FrameTable:
    """``table`` with ``detections[name]`` read from ``spec``."""
    parse = spec.parse or read_keypoint_results
    table.detections[name] = parse(spec.path, table, spec.what)
    table.sources[f"detections:{name}"] = str(spec.path)
    return table
