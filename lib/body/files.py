"""Reading and writing the body-model files: SMPL pickles, joint regressors, mesh downsampling.

Every file the project expects has an entry in ``SOURCES`` that says where a user obtains it; a missing
or malformed file raises ``BodyFileError`` with the path, what the file is and that source. Real SMPL
pickles contain ``chumpy`` objects; they are read here without chumpy (which no longer imports on modern
numpy / Python), by mapping every chumpy class to a stand-in and keeping its value array. No file here
can run code: pickles may name only numpy / scipy.sparse types and chumpy classes (lib/safe_pickle.py).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lib.errors import UserError, require_file
from lib.io import write_atomic
from lib.safe_pickle import PickleRefusedError, RestrictedUnpickler, load_npy_restricted

GENDERS = ("neutral", "male", "female")
# File names SMPL is distributed under, per gender, in the order they are looked for.
SMPL_FILE_NAMES: dict[str, tuple[str, ...]] = {
    "neutral": ("SMPL_NEUTRAL.pkl", "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"),
    "male": ("SMPL_MALE.pkl", "basicModel_m_lbs_10_207_0_v1.0.0.pkl"),
    "female": ("SMPL_FEMALE.pkl", "basicModel_f_lbs_10_207_0_v1.0.0.pkl"),
}
_MAKE_BODY = "or run `make body` to write the generated SMPL-format body to the default paths"
SOURCES: dict[str, str] = {
    "smpl": "register at https://smpl.is.tue.mpg.de, download 'SMPL for Python' and copy the .pkl files "
    f"(either naming works: {', '.join(n for names in SMPL_FILE_NAMES.values() for n in names)}); "
    + _MAKE_BODY,
    "J_regressor_h36m_correct.npy": "it ships in the official PMCE repository (github.com/kasvii/PMCE, "
    "data/Human36M/J_regressor_h36m_correct.npy); " + _MAKE_BODY,
    "J_regressor_coco.npy": "it ships in the official PMCE repository (github.com/kasvii/PMCE, "
    "data/COCO/J_regressor_coco.npy); " + _MAKE_BODY,
    "smpl_mean_vertices.npy": "it is in the official PMCE 'base_data' download (link in the PMCE README); "
    + _MAKE_BODY,
    "mesh_downsampling.npz": "it is in the official PMCE 'base_data' download (link in the PMCE README; "
    "originally from GraphCMR, github.com/nkolot/GraphCMR); " + _MAKE_BODY,
}


class BodyFileError(UserError, RuntimeError):
    """A body-model file is missing or malformed. The message names the file, where it goes and its source."""

    def __init__(self, path: str | os.PathLike, problem: str, source_key: str):
        self.path = Path(path)
        source = SOURCES.get(source_key, _MAKE_BODY)
        super().__init__(
            f"{problem}: {self.path}\n  expected at: {self.path.resolve()}\n  how to get it: {source}"
        )


def require_body_file(path: str | os.PathLike, source_key: str) -> Path:
    """``path`` as a Path; ``BodyFileError`` naming where the file comes from if it does not exist."""
    return require_file(path, lambda missing: BodyFileError(missing, "missing body-model file", source_key))


def find_smpl_file(smpl_dir: str | os.PathLike, gender: str) -> Path:
    """The SMPL pickle of ``gender`` in ``smpl_dir`` under either of its usual names."""
    if gender not in SMPL_FILE_NAMES:
        raise ValueError(f"unknown gender {gender!r}; known: {GENDERS}")
    smpl_dir = Path(smpl_dir)
    for name in SMPL_FILE_NAMES[gender]:
        if (smpl_dir / name).is_file():
            return smpl_dir / name
    names = " or ".join(SMPL_FILE_NAMES[gender])
    raise BodyFileError(
        smpl_dir / SMPL_FILE_NAMES[gender][0], f"missing SMPL {gender} model ({names})", "smpl"
    )


# ---------------------------------------------------------------------------------------------------
# SMPL pickles without chumpy
# ---------------------------------------------------------------------------------------------------
class _ChumpyStandIn:
    """Takes the pickled state of any chumpy object; ``value()`` is its array (chumpy keeps it in ``x``)."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def value(self) -> np.ndarray:
        if not isinstance(self.state, dict) or "x" not in self.state:
            raise ValueError("a chumpy expression without a stored value ('x') cannot be read without chumpy")
        return np.asarray(self.state["x"])


class _SmplUnpickler(RestrictedUnpickler):
    """The allow-list of lib/safe_pickle.py plus every chumpy class, read as the stand-in."""

    def find_extra(self, module: str, name: str) -> Any | None:
        return _ChumpyStandIn if module == "chumpy" or module.startswith("chumpy.") else None


SMPL_KEYS = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs")


def load_smpl_data(path: str | os.PathLike) -> dict[str, Any]:
    """The arrays of an SMPL pickle (real, with chumpy objects, or generated), chumpy objects as numpy.

    Raises ``BodyFileError`` if the file is missing, unreadable or lacks one of ``SMPL_KEYS``.
    """
    path = require_body_file(path, "smpl")
    try:
        with open(path, "rb") as f:
            data = _SmplUnpickler(f, encoding="latin1").load()
        data = {k: v.value() if isinstance(v, _ChumpyStandIn) else v for k, v in data.items()}
    except PickleRefusedError as err:
        raise BodyFileError(path, f"refused SMPL pickle: {err}", "smpl") from None
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, TypeError) as err:
        raise BodyFileError(path, f"unreadable SMPL pickle ({err})", "smpl") from None
    missing = [k for k in SMPL_KEYS if k not in data]
    if missing:
        raise BodyFileError(path, f"not an SMPL model (keys {missing} missing)", "smpl")
    return data


# ---------------------------------------------------------------------------------------------------
# numpy files
# ---------------------------------------------------------------------------------------------------
def load_array(path: str | os.PathLike, source_key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A ``.npy`` array whose shape matches ``shape`` (None = any size); clear errors otherwise."""
    path = require_body_file(path, source_key)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise BodyFileError(path, f"unreadable .npy file ({err})", source_key) from None
    if array.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, array.shape, strict=False)
    ):
        raise BodyFileError(path, f"expected an array of shape {shape}, got {array.shape}", source_key)
    return array


def load_downsampling(path: str | os.PathLike) -> dict[str, list[Any]]:
    """GraphCMR ``mesh_downsampling.npz``: lists 'A', 'U', 'D' of scipy sparse matrices. Its object
    arrays are unpickled through the allow-list of lib/safe_pickle.py (no ``allow_pickle=True``)."""
    import scipy.sparse

    path = require_body_file(path, "mesh_downsampling.npz")
    try:
        with zipfile.ZipFile(path) as archive:
            lists = {key: list(_npz_member(archive, key)) for key in ("A", "U", "D")}
    except PickleRefusedError as err:
        raise BodyFileError(path, f"refused downsampling file: {err}", "mesh_downsampling.npz") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise BodyFileError(path, f"unreadable downsampling file ({err})", "mesh_downsampling.npz") from None
    for key, mats in lists.items():
        if not all(scipy.sparse.issparse(m) for m in mats):
            raise BodyFileError(
                path, f"'{key}' must be a list of scipy sparse matrices", "mesh_downsampling.npz"
            )
    if len(lists["D"]) < 1 or len(lists["U"]) != len(lists["D"]):
        raise BodyFileError(
            path, "'U' and 'D' must be non-empty lists of equal length", "mesh_downsampling.npz"
        )
    return lists


def _npz_member(archive: zipfile.ZipFile, key: str) -> np.ndarray:
    """Array ``key`` of an ``.npz`` archive (read into memory: the file is small)."""
    return load_npy_restricted(io.BytesIO(archive.read(f"{key}.npy")))


# ---------------------------------------------------------------------------------------------------
# Atomic writers of the body files (lib.io.write_atomic)
# ---------------------------------------------------------------------------------------------------
def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    return write_atomic(path, lambda f: np.save(f, array, allow_pickle=False))


def save_pickle(path: str | os.PathLike, obj: Any) -> Path:
    return write_atomic(path, lambda f: pickle.dump(obj, f, protocol=2))


def save_downsampling(path: str | os.PathLike, lists: dict[str, list[Any]]) -> Path:
    """Write 'A', 'U', 'D' as object arrays of sparse matrices, the GraphCMR format."""
    arrays = {}
    for key in ("A", "U", "D"):
        arrays[key] = np.empty(len(lists[key]), dtype=object)
        for i, matrix in enumerate(lists[key]):
            arrays[key][i] = matrix
    return write_atomic(path, lambda f: np.savez(f, **arrays))
