"""The per-frame table every dataset reader produces, and the helpers readers share.

A reader (``lib/data/datasets/<name>.py``) knows one dataset's files and turns them into a
:class:`FrameTable`: flat numpy arrays with one row per (person, frame), N rows. Everything downstream
(windows, meshes, items) works on such tables and knows no file format. Static image datasets (COCO,
MPII) are tables whose every row is its own one-frame video.

Units: 2D keypoints in pixels of the full original image; 3D joints, SMPL translations and camera
translations in metres (readers convert millimetre files on read); 3D in camera coordinates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lib.errors import MissingFileError, UserError, require_file
from lib.io import write_atomic
from lib.keypoints import project_pinhole
from lib.safe_pickle import PickleRefusedError, load_joblib_restricted

MISSING_FEATURE_POLICIES = ("error", "drop")


class DataFileError(MissingFileError):
    """A dataset file the reader needs is missing; the message names the exact path and the file."""


class DataMismatchError(UserError, ValueError):
    """Two files of a dataset that must be joined on a key disagree (e.g. features vs annotations)."""


class NonFiniteDataError(DataMismatchError):
    """A dataset file holds NaN or inf where an item needs a number; the message names the file, the video
    and the frame."""


class MalformedDataFileError(DataMismatchError):
    """A dataset file cannot be parsed (truncated, not UTF-8, not JSON); the message names the file."""


@dataclass
class Keypoints2D:
    """2D keypoints of every row in one joint set: pixels of the full image, with a confidence."""

    joint_set: str  # 'coco17' or 'h36m17'
    xy: np.ndarray  # (N, J, 2) float32 pixels
    conf: np.ndarray  # (N, J) float32 in [0, 1]; detector score, or 1 / 0 for labelled / missing GT


@dataclass
class SmplParams:
    """SMPL parameters of every row. Vertices are ``R @ body(pose, betas, transl) + t`` when ``rotation``
    / ``translation`` are given (parameters fitted in world coordinates), else the body output itself."""

    pose: np.ndarray  # (N, 72) axis-angle
    betas: np.ndarray  # (N, 10)
    transl: np.ndarray  # (N, 3) metres
    gender: np.ndarray  # (N,) str: 'neutral', 'male' or 'female'
    valid: np.ndarray  # (N,) bool, False where the row has no (usable) fit; its values are zeros
    rotation: np.ndarray | None = None  # (N, 3, 3) world -> camera
    translation: np.ndarray | None = None  # (N, 3) metres, world -> camera


@dataclass
class FrameTable:
    """One dataset split, one row per (person, frame); see the module docstring for units."""

    name: str  # dataset name, e.g. '3dpw'
    video: np.ndarray  # (N,) str video id (one person track of one camera)
    frame: np.ndarray  # (N,) int frame number in the dataset's frame step (gaps split videos)
    image_size: np.ndarray  # (N, 2) float32 (width, height) of the frame's original image, pixels
    image_name: np.ndarray  # (N,) str, the image's path as the annotations name it
    features: np.ndarray  # (M, D) float32 image features (may be a memory map)
    feature_row: np.ndarray  # (N,) int, row of ``features`` of each frame
    gt2d: dict[str, Keypoints2D] = field(default_factory=dict)  # joint set -> ground-truth 2D
    detections: dict[str, Keypoints2D] = field(default_factory=dict)  # detector name -> detections
    joints3d: dict[str, np.ndarray] = field(default_factory=dict)  # joint set -> (N, J, 3) m, camera
    joints3d_valid: dict[str, np.ndarray] = field(default_factory=dict)  # joint set -> (N, J) bool
    smpl: SmplParams | None = None
    camera: np.ndarray | None = None  # (N, 4) fx, fy, cx, cy in pixels; NaN where unknown
    # (N, 3) s, tx, ty of a weak-perspective fit camera (COCO's SMPLify fits): pixels = s * metres + t
    weak_camera: np.ndarray | None = None
    camera_id: np.ndarray | None = None  # (N,) int camera index as the dataset numbers it; -1 where unknown
    frame_valid: np.ndarray | None = None  # (N,) bool, the dataset's own valid-frame flag (for the protocols)
    ann_id: np.ndarray | None = None  # (N,) int annotation id, where the dataset has one
    image_id: np.ndarray | None = None  # (N,) int image id, where the dataset has one
    static: bool = False  # single images: every row is its own one-frame video, repeated over T
    mesh_fit_max_error: float | None = None  # metres; see lib/data/build.py (fit check vs GT joints)
    # The file each array was read from, for error messages: 'features', 'gt2d', 'detections:<name>',
    # 'joints3d:<set>', 'smpl', 'smpl_camera', 'weak_camera' ('<group>:<name>' falls back to '<group>').
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.video)
        if self.frame_valid is None:
            self.frame_valid = np.ones(n, dtype=bool)
        if self.camera is None:
            self.camera = np.full((n, 4), np.nan, dtype=np.float32)
        if self.camera_id is None:
            self.camera_id = np.full(n, -1, dtype=np.int64)
        for key, value in self._row_arrays():
            if len(value) != n:
                raise ValueError(f"{self.name}: {key} has {len(value)} rows, the table has {n}")

    def __len__(self) -> int:
        return len(self.video)

    def _row_arrays(self):
        yield "frame", self.frame
        yield "image_size", self.image_size
        yield "image_name", self.image_name
        yield "feature_row", self.feature_row
        yield "camera", self.camera
        if self.weak_camera is not None:
            yield "weak_camera", self.weak_camera
        yield "camera_id", self.camera_id
        yield "frame_valid", self.frame_valid
        for name, kp in {**self.gt2d, **self.detections}.items():
            yield f"2D '{name}'", kp.xy
        for name, joints in self.joints3d.items():
            yield f"joints3d '{name}'", joints
        if self.smpl is not None:
            yield "smpl.pose", self.smpl.pose

    def select(self, keep: np.ndarray) -> FrameTable:
        """The rows where ``keep`` (N,) bool is True (or the rows listed by an int array)."""
        smpl = self.smpl
        if smpl is not None:
            smpl = SmplParams(
                smpl.pose[keep],
                smpl.betas[keep],
                smpl.transl[keep],
                smpl.gender[keep],
                smpl.valid[keep],
                None if smpl.rotation is None else smpl.rotation[keep],
                None if smpl.translation is None else smpl.translation[keep],
            )
        return FrameTable(
            name=self.name,
            video=self.video[keep],
            frame=self.frame[keep],
            image_size=self.image_size[keep],
            image_name=self.image_name[keep],
            features=self.features,
            feature_row=self.feature_row[keep],
            gt2d={k: Keypoints2D(v.joint_set, v.xy[keep], v.conf[keep]) for k, v in self.gt2d.items()},
            detections={
                k: Keypoints2D(v.joint_set, v.xy[keep], v.conf[keep]) for k, v in self.detections.items()
            },
            joints3d={k: v[keep] for k, v in self.joints3d.items()},
            joints3d_valid={k: v[keep] for k, v in self.joints3d_valid.items()},
            smpl=smpl,
            camera=self.camera[keep],
            weak_camera=None if self.weak_camera is None else self.weak_camera[keep],
            camera_id=self.camera_id[keep],
            frame_valid=self.frame_valid[keep],
            ann_id=None if self.ann_id is None else self.ann_id[keep],
            image_id=None if self.image_id is None else self.image_id[keep],
            static=self.static,
            mesh_fit_max_error=self.mesh_fit_max_error,
            sources=self.sources,
        )

    def source(self, key: str) -> str:
        """The file array ``key`` came from, as the reader recorded it."""
        group = key.split(":")[0]
        return self.sources.get(key) or self.sources.get(group) or f"the {self.name} files"


@dataclass(frozen=True)
class ReaderOptions:
    """What a reader needs besides the split; built from the config by lib/data/build.py."""

    root: Path  # the dataset's folder in the official layout
    val_fraction: float = 0.05  # share of videos held out as 'val' where the dataset has no val split
    missing_features: str = "error"  # 'error': a frame without a feature row fails; 'drop': it is dropped
    subjects: Mapping[str, Sequence[int]] = field(default_factory=dict)  # split -> subjects (Human3.6M)
    fit_error_max: float = 0.0  # DATA.FIT_ERROR_MAX (lib/data/fit_check.py); <= 0: no check
    cache_dir: Path | None = None  # DATA.CACHE_DIR: parsed copies of large JSON feature files (None: off)


# ------------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------------
def require_data_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a DataFileError naming it and what it is."""
    return require_file(
        path,
        lambda missing: DataFileError(
            f"{what} not found: {missing} (download the preprocessed PMCE data into the official layout, "
            "see README)"
        ),
    )


def load_json(path: Path, what: str) -> Any:
    """Parsed JSON of a required file."""
    return _parse_json(require_data_file(path, what), what)


def _parse_json(path: Path, what: str) -> Any:
    """The parsed JSON file ``path``; one that is not UTF-8 JSON (truncated, corrupt) is a
    MalformedDataFileError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as err:
        problem = f"is not UTF-8 text (byte {err.start}: {err.reason})"
    except json.JSONDecodeError as err:
        problem = f"is not valid JSON, truncated or corrupt (line {err.lineno} column {err.colno}: {err.msg})"
    raise MalformedDataFileError(
        f"{what} {path} {problem}: replace it with a complete copy (the generated datasets: make data)"
    )


def load_feature_json(path: Path, what: str, cache_dir: Path | None) -> tuple[list[str], np.ndarray]:
    """Keys and (M, D) float32 rows of a ``{key: [D floats]}`` JSON feature file.

    Parsing the JSON takes seconds per 100 MB, in every process that reads it; with ``cache_dir`` the
    parsed arrays are kept in an ``.npz`` named after the file's path, size and modification time, so
    a changed file is parsed again.
    """
    path = require_data_file(path, what)
    stat = path.stat()
    tag = hashlib.sha1(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    cached = None if cache_dir is None else Path(cache_dir) / f"features_{path.stem}_{tag}.npz"
    if cached is not None and cached.is_file():
        with np.load(cached) as stored:
            return stored["keys"].tolist(), stored["features"]
    feats = _parse_json(path, what)
    if not isinstance(feats, dict):
        raise MalformedDataFileError(f"{what} {path}: expected {{key: [floats]}}, got {type(feats).__name__}")
    keys, rows = list(feats), np.asarray(list(feats.values()), dtype=np.float32)
    if cached is not None:
        write_atomic(cached, lambda f: np.savez(f, keys=np.array(keys), features=rows))
    return keys, rows


def load_joblib(path: Path, what: str, keys: Sequence[str]) -> dict[str, Any]:
    """A joblib database (official ``*.pt`` feature files) that must hold ``keys``; read through the
    allow-list of lib/safe_pickle.py (numpy arrays and plain containers: no file runs code)."""
    try:
        db = load_joblib_restricted(require_data_file(path, what))
    except PickleRefusedError as err:
        raise DataMismatchError(f"{what} {path}: refused: {err}") from None
    if not isinstance(db, dict):
        raise DataMismatchError(f"{what} {path}: expected a dict of arrays, got {type(db).__name__}")
    missing = [k for k in keys if k not in db]
    if missing:
        raise DataMismatchError(f"{what} {path} lacks the keys {missing}; it has {sorted(db)}")
    return db


def path_key(path: str) -> str:
    """The last two components of an image path (``folder/file.jpg``), the part all files agree on."""
    return "/".join(Path(str(path)).parts[-2:])


# ------------------------------------------------------------------------------------------------------
# Finite values
# ------------------------------------------------------------------------------------------------------
FEATURE_BLOCK_ROWS = 1 << 14  # feature rows checked at once: the feature files reach gigabytes
_CHECKED = {
    "features": "image features",
    "gt2d": "ground-truth 2D keypoints",
    "detections": "2D detections",
    "joints3d": "3D joints",
    "smpl": "SMPL parameters",
    "smpl_camera": "camera poses of the SMPL fits",
    "weak_camera": "fit cameras",
}


def check_finite(table: FrameTable) -> None:
    """NonFiniteDataError, naming the file, the video and the frame, at the first frame whose inputs or
    targets hold NaN / inf: the feature rows the frames use, every 2D keypoint set, and the 3D joints and
    SMPL fits marked valid (readers mark a NaN fit invalid on purpose). Cameras may be NaN (unknown)."""
    for key, bad in _nonfinite_frames(table):
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            group, _, name = key.partition(":")
            what = f"{_CHECKED[group]} {name}".strip()
            raise NonFiniteDataError(
                f"{table.source(key)}: NaN or inf in the {what} of {int(bad.sum())} {table.name} frames; "
                f"first: video {str(table.video[first])!r}, frame {int(table.frame[first])}"
            )


def _nonfinite_frames(table: FrameTable) -> Iterator[tuple[str, np.ndarray]]:
    """(array name, (N,) bool frames with a non-finite value that is used) of every checked array."""
    yield "features", ~_finite_feature_rows(table.features)[table.feature_row]
    for group, keypoints in (("gt2d", table.gt2d), ("detections", table.detections)):
        for name, kp in keypoints.items():
            yield f"{group}:{name}", ~(_finite_rows(kp.xy) & _finite_rows(kp.conf))
    for name, joints in table.joints3d.items():
        valid = table.joints3d_valid.get(name, np.ones(joints.shape[:2], dtype=bool))
        yield f"joints3d:{name}", (~np.isfinite(joints).all(axis=-1) & valid).any(axis=-1)
    smpl = table.smpl
    if smpl is not None:
        params_ok = _finite_rows(smpl.pose) & _finite_rows(smpl.betas) & _finite_rows(smpl.transl)
        yield "smpl", smpl.valid & ~params_ok
        if smpl.rotation is not None and smpl.translation is not None:
            yield "smpl_camera", smpl.valid & ~(_finite_rows(smpl.rotation) & _finite_rows(smpl.translation))
    if table.weak_camera is not None:
        yield "weak_camera", ~_finite_rows(table.weak_camera)


def _finite_feature_rows(features: np.ndarray) -> np.ndarray:
    """(M,) bool, computed in blocks (a bounded temporary even for a memory-mapped file)."""
    ok = np.ones(len(features), dtype=bool)
    for start in range(0, len(features), FEATURE_BLOCK_ROWS):
        ok[start : start + FEATURE_BLOCK_ROWS] = _finite_rows(features[start : start + FEATURE_BLOCK_ROWS])
    return ok


def _finite_rows(values: np.ndarray) -> np.ndarray:
    """(N,) bool: every value of each row of an (N, ...) array is finite."""
    return np.isfinite(values.reshape(len(values), -1)).all(axis=1)


# ------------------------------------------------------------------------------------------------------
# Joins and splits
# ------------------------------------------------------------------------------------------------------
def join_rows(
    wanted: Sequence[Any], available: Sequence[Any], what: str, policy: str = "error"
) -> tuple[np.ndarray, np.ndarray]:
    """Match ``wanted`` keys (one per table row) to their row in ``available`` (e.g. a feature file).

    Returns:
        rows: (N,) int row in ``available`` of each wanted key (-1 where missing);
        found: (N,) bool. With ``policy='error'`` a missing key raises a DataMismatchError that names
        the first missing keys and the counts; with ``'drop'`` the caller drops the rows not found.
    """
    if policy not in MISSING_FEATURE_POLICIES:
        raise ValueError(f"policy must be one of {MISSING_FEATURE_POLICIES}, got {policy!r}")
    index: dict[Any, int] = {}
    for i, key in enumerate(available):
        if index.setdefault(key, i) != i:
            raise DataMismatchError(f"{what}: key {key!r} occurs more than once")
    rows = np.array([index.get(key, -1) for key in wanted], dtype=np.int64)
    found = rows >= 0
    if policy == "error" and not found.all():
        missing = [wanted[i] for i in np.flatnonzero(~found)[:5]]
        raise DataMismatchError(
            f"{what}: {int((~found).sum())} of {len(wanted)} keys have no entry "
            f"({len(available)} entries available); first missing: {missing}"
        )
    return rows, found


def holdout_mask(videos: np.ndarray, fraction: float, salt: str) -> np.ndarray:
    """(N,) bool, True for rows whose video falls in a deterministic ``fraction`` of the videos.

    The choice hashes each video id with ``salt`` (the dataset name), so it is stable across runs,
    machines and orderings, and whole videos go to one side.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    names, inverse = np.unique(videos, return_inverse=True)
    draws = np.array([_unit_hash(f"{salt}/{name}") for name in names])
    return (draws < fraction)[inverse.reshape(-1)]


def _unit_hash(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def split_holdout(table: FrameTable, split: str, fraction: float) -> FrameTable:
    """The 'train' or 'val' part of a table that has no official validation split."""
    held = holdout_mask(table.video, fraction, table.name)
    if split not in ("train", "val"):
        raise ValueError(f"{table.name}: split must be 'train' or 'val', got {split!r}")
    return table.select(held if split == "val" else ~held)


def check_split(dataset: str, split: str, known: Sequence[str]) -> None:
    if split not in known:
        raise ValueError(f"{dataset} has no split {split!r}; it has {list(known)}")


# ------------------------------------------------------------------------------------------------------
# Geometry shared by readers
# ------------------------------------------------------------------------------------------------------
def project(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Pinhole projection of (N, J, 3) camera points with (N, 4) (fx, fy, cx, cy) -> (N, J, 2) pixels
    (float32), as the official readers project: only depths within 1e-9 of zero are clamped."""
    focal, center = camera[:, None, 0:2], camera[:, None, 2:4]
    return project_pinhole(points, focal, center, clamp="nonzero", eps=1e-9).astype(np.float32)


def keypoints_from_array(joint_set: str, values: np.ndarray, num_joints: int = 17) -> Keypoints2D:
    """Keypoints2D from an (N, >=J, 2 or 3) array: x, y and, when present, the confidence column."""
    values = np.asarray(values, dtype=np.float32)[:, :num_joints]
    if values.ndim != 3 or values.shape[-1] < 2:
        raise ValueError(f"keypoints must be (N, J, 2) or (N, J, 3), got {values.shape}")
    conf = values[..., 2] if values.shape[-1] > 2 else np.ones(values.shape[:2], dtype=np.float32)
    return Keypoints2D(joint_set, values[..., :2].copy(), conf.astype(np.float32))


def frame_number(file_name: str) -> int:
    """The frame number in an image file name such as ``image_00042.jpg`` or ``frame_000042.jpg``."""
    digits = "".join(c if c.isdigit() else " " for c in Path(file_name).stem).split()
    if not digits:
        raise ValueError(f"no frame number in image file name {file_name!r}")
    return int(digits[-1])
