"""Unpickling without running code: every global a pickle names must be on an allow-list.

A pickle can name any importable callable and have the loader call it (``os.system``, ``builtins.eval``),
so opening a downloaded file could run code. The project's pickled inputs (SMPL models, GraphCMR's
mesh downsampling, the datasets' joblib databases) hold only numpy arrays, scipy sparse matrices and
plain containers; ``find_allowed`` resolves exactly those names and refuses any other one before
anything is called. ``numpy.dtype``, ``_reconstruct`` and ``copyreg._reconstructor`` only build
objects of allowed classes, so they cannot reach anything else.
"""

from __future__ import annotations

import builtins
import copyreg
import functools
import importlib
import os
import pickle
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

# Python 2 module names, as protocol 0-2 pickles of the SMPL / GraphCMR era spell them.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
SPARSE_CLASSES = frozenset(
    f"{kind}_{container}"
    for kind in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")
    for container in ("matrix", "array")
)


class PickleRefusedError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list; nothing it names was called."""

    def __init__(self, global_name: str) -> None:
        self.global_name = global_name
        super().__init__(
            f"it names {global_name}, which is not on the allow-list of numpy / scipy.sparse types "
            "(loading it could run code)"
        )


# numpy's private array constructors, by the module numpy 1 (``numpy.core``) or 2 (``numpy._core``) names
_NUMPY_CONSTRUCTORS = (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))


def _numpy_core(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(f"numpy._core.{module}"), name)
    except ImportError:  # numpy 1
        return getattr(importlib.import_module(f"numpy.core.{module}"), name)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it to store bytes; only latin-1 (no codec lookup)."""
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise PickleRefusedError(f"_codecs.encode with the codec {encoding!r}")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    **{
        (f"numpy.{core}.{module}", name): (lambda m=module, n=name: _numpy_core(m, n))
        for core in ("core", "_core")
        for module, name in _NUMPY_CONSTRUCTORS
    },
    ("copyreg", "_reconstructor"): lambda: copyreg._reconstructor,
    ("builtins", "object"): lambda: builtins.object,
    ("builtins", "set"): lambda: builtins.set,
    ("builtins", "frozenset"): lambda: builtins.frozenset,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


def find_allowed(module: str, name: str) -> Any:
    """The object a pickle's global ``module.name`` stands for if it is allowed, else PickleRefusedError.
    scipy sparse classes are looked up under ``scipy.sparse`` (old pickles name modules SciPy removed)."""
    module = _PY2_MODULES.get(module, module)
    if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and name in SPARSE_CLASSES:
        import scipy.sparse

        return getattr(scipy.sparse, name)
    if (module, name) in _ALLOWED:
        return _ALLOWED[(module, name)]()
    raise PickleRefusedError(f"{module}.{name}")


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only allowed globals (``find_allowed``) and, for a subclass,
    what its ``find_extra`` returns (None: refused)."""

    def find_class(self, module: str, name: str) -> Any:
        extra = self.find_extra(module, name)
        return extra if extra is not None else find_allowed(module, name)

    def find_extra(self, module: str, name: str) -> Any | None:
        return None


def load_restricted(file: BinaryIO, encoding: str = "latin1") -> Any:
    """One pickle from ``file`` through ``RestrictedUnpickler`` (latin-1 reads Python 2 numpy arrays)."""
    return RestrictedUnpickler(file, encoding=encoding).load()


def load_npy_restricted(file: BinaryIO) -> np.ndarray:
    """One ``.npy`` array from a seekable ``file``; an object array's pickled content goes through the
    allow-list (instead of ``np.load(allow_pickle=True)``)."""
    version = np.lib.format.read_magic(file)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, _, dtype = readers[version](file)
    if not dtype.hasobject:
        file.seek(0)
        return np.lib.format.read_array(file, allow_pickle=False)
    array = load_restricted(file)  # np.save pickles an object array whole, right after the header
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise ValueError(f"the pickled object array does not match its header (shape {shape})")
    return array


# ---------------------------------------------------------------------------------------------------
# joblib
# ---------------------------------------------------------------------------------------------------
_JOBLIB_LOCK = threading.Lock()


def load_joblib_restricted(path: str | os.PathLike) -> Any:
    """``joblib.load`` with the allow-list: numpy arrays (joblib's ``NumpyArrayWrapper`` records, whose
    raw data joblib reads itself), plain containers, nothing else. Files of joblib < 0.10 (arrays in
    companion files) are refused."""
    import joblib
    from joblib import numpy_pickle

    # joblib.load takes no unpickler: its module's NumpyUnpickler is swapped for the restricted one while
    # this call runs (decompression and array reading stay joblib's own).
    unpickler, legacy = _restricted_joblib_unpickler(), numpy_pickle.load_compatibility
    with _JOBLIB_LOCK:
        original = numpy_pickle.NumpyUnpickler
        numpy_pickle.NumpyUnpickler, numpy_pickle.load_compatibility = unpickler, _refuse_legacy_joblib
        try:
            return joblib.load(os.fspath(path))
        finally:
            numpy_pickle.NumpyUnpickler, numpy_pickle.load_compatibility = original, legacy


def _refuse_legacy_joblib(filename: str) -> Any:
    raise PickleRefusedError("the joblib < 0.10 format (arrays in companion files)")


@functools.cache
def _restricted_joblib_unpickler() -> type:
    """joblib's unpickler restricted to the allow-list (built on first use: importing joblib is slow)."""
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class SafeArrayWrapper(NumpyArrayWrapper):
        """joblib's array record; an object array's nested pickle goes through the allow-list too
        (joblib < 1.6 reads it with a plain ``pickle.load``)."""

        def read_array(self, unpickler, *args, **kwargs):
            if self.dtype.hasobject:
                return load_restricted(unpickler.file_handle, encoding="ASCII")
            return super().read_array(unpickler, *args, **kwargs)

    class RestrictedNumpyUnpickler(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                return SafeArrayWrapper
            return find_allowed(module, name)

    return RestrictedNumpyUnpickler
