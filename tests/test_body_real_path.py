"""The real-SMPL path: chumpy pickles read without chumpy, both file namings, clear errors, no mixing."""

from __future__ import annotations

import pickle
import shutil
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lib.body.build import build_body_model
from lib.body.files import BodyFileError, find_smpl_file, load_smpl_data, save_npy
from lib.body.generated.make import user_files_in_the_way
from lib.body.smpl import load_smpl_layer
from lib.config import get_cfg
from tests.conftest import body_cfg_opts
from tests.payloads import SYSTEM_GLOBAL, MarkerPayload


class _FakeChumpyModule:
    """Registers a stand-in ``chumpy.ch.Ch`` while pickling, so the pickle names chumpy like SMPL's do."""

    def __enter__(self):
        ch = types.ModuleType("chumpy.ch")

        class Ch:  # what chumpy pickles: an object whose state holds its value in 'x'
            def __init__(self, x):
                self.x = x
                self._dirty_vars = set()

        Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
        ch.Ch = Ch
        self.saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
        sys.modules["chumpy"] = types.ModuleType("chumpy")
        sys.modules["chumpy.ch"] = ch
        return Ch

    def __exit__(self, *exc):
        for key, module in self.saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


def _write_chumpy_smpl(data: dict, path) -> None:
    """An SMPL pickle as the SMPL site ships it: chumpy arrays, a sparse regressor, protocol 2."""
    with _FakeChumpyModule() as chumpy_ch:
        real_format = dict(data)
        for key in ("shapedirs", "v_template", "posedirs", "weights", "J"):
            real_format[key] = chumpy_ch(np.asarray(data[key]))
        real_format["J_regressor"] = sp.csc_matrix(data["J_regressor"])
        module = sp.csc_matrix.__module__
        sp.csc_matrix.__module__ = "scipy.sparse.csc"  # the name old SciPy pickled it under
        try:
            with open(path, "wb") as f, warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # importing scipy.sparse.csc warns
                pickle.dump(real_format, f, protocol=2)
        finally:
            sp.csc_matrix.__module__ = module
    assert b"chumpy.ch" in path.read_bytes() and b"scipy.sparse.csc\n" in path.read_bytes()


@pytest.fixture(scope="module")
def neutral_data(synthetic_body_dir):
    return load_smpl_data(synthetic_body_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl")


def test_chumpy_pickle_loads_without_chumpy(neutral_data, tmp_path, synthetic_body_model):
    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    _write_chumpy_smpl(neutral_data, path)
    assert "chumpy" not in sys.modules or not hasattr(sys.modules["chumpy"], "ch")
    data = load_smpl_data(path)
    assert isinstance(data["shapedirs"], np.ndarray)
    np.testing.assert_array_equal(data["shapedirs"], neutral_data["shapedirs"])
    assert find_smpl_file(tmp_path, "neutral") == path
    layer = load_smpl_layer(path, "neutral")
    pose, betas = torch.zeros(2, 72), torch.randn(2, 10, generator=torch.Generator().manual_seed(0))
    pose[1, 3:6] = torch.tensor([0.3, 0.1, -0.2])
    vertices = layer(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:]).vertices
    expected = synthetic_body_model(pose, betas).vertices
    torch.testing.assert_close(vertices, expected)


def test_both_file_namings_are_found(synthetic_body_dir, tmp_path):
    source = synthetic_body_dir / "body_models" / "smpl"
    for gender, official in (("male", "basicModel_m"), ("female", "basicModel_f")):
        shutil.copy(source / f"SMPL_{gender.upper()}.pkl", tmp_path / f"{official}_lbs_10_207_0_v1.0.0.pkl")
        assert find_smpl_file(tmp_path, gender).name.startswith(official)
        assert find_smpl_file(source, gender).name == f"SMPL_{gender.upper()}.pkl"


def test_missing_smpl_names_the_file_and_source(tmp_path):
    with pytest.raises(BodyFileError) as err:
        find_smpl_file(tmp_path, "neutral")
    message = str(err.value)
    assert "SMPL_NEUTRAL.pkl" in message and "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl" in message
    assert "smpl.is.tue.mpg.de" in message and "make body" in message and str(tmp_path) in message


def test_malformed_smpl_files(neutral_data, tmp_path):
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"this is not a pickle")
    with pytest.raises(BodyFileError, match="unreadable SMPL pickle"):
        load_smpl_data(tmp_path / "SMPL_NEUTRAL.pkl")
    broken = {k: v for k, v in neutral_data.items() if k != "weights"}
    (tmp_path / "SMPL_MALE.pkl").write_bytes(pickle.dumps(broken, protocol=2))
    with pytest.raises(BodyFileError, match="weights"):
        load_smpl_data(tmp_path / "SMPL_MALE.pkl")
    wrong = dict(neutral_data, v_template=neutral_data["v_template"][:100])
    (tmp_path / "SMPL_FEMALE.pkl").write_bytes(pickle.dumps(wrong, protocol=2))
    with pytest.raises(BodyFileError, match="v_template"):
        load_smpl_layer(tmp_path / "SMPL_FEMALE.pkl", "female")


def test_regressor_for_another_mesh_is_refused(synthetic_body_dir, tmp_path):
    shutil.copytree(synthetic_body_dir, tmp_path / "body")
    regressor = np.load(tmp_path / "body" / "base_data" / "J_regressor_h36m_correct.npy")
    shuffled = regressor[:, np.random.default_rng(0).permutation(regressor.shape[1])]  # other vertex order
    save_npy(tmp_path / "body" / "base_data" / "J_regressor_h36m_correct.npy", shuffled)
    cfg = get_cfg(opts=[*body_cfg_opts(tmp_path / "body"), "BODY.GENDERS", "['neutral']"])
    with pytest.raises(BodyFileError, match="does not fit the SMPL model"):
        build_body_model(cfg)


def test_generator_never_overwrites_user_files(synthetic_body_dir, neutral_data, tmp_path):
    smpl_dir, base_dir = synthetic_body_dir / "body_models" / "smpl", synthetic_body_dir / "base_data"
    assert user_files_in_the_way(smpl_dir, base_dir) == []  # a generated body may be regenerated
    user = tmp_path / "smpl"
    user.mkdir()
    real = {k: v for k, v in neutral_data.items() if k != "generated_by"}
    (user / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl").write_bytes(pickle.dumps(real, protocol=2))
    (tmp_path / "base").mkdir()
    shutil.copy(base_dir / "smpl_mean_vertices.npy", tmp_path / "base")
    in_the_way = user_files_in_the_way(user, tmp_path / "base")
    assert {p.name for p in in_the_way} == {
        "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
        "smpl_mean_vertices.npy",
    }


def test_a_pickle_that_would_run_code_is_refused(neutral_data, tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(MarkerPayload(marker)))  # plain pickle runs it: the payload is real
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({**neutral_data, "extra": MarkerPayload(marker)}, protocol=2))
    with pytest.raises(BodyFileError) as err:
        load_smpl_data(path)
    assert str(err.value).startswith(
        f"refused SMPL pickle: it names {SYSTEM_GLOBAL}, which is not on the allow-list of numpy / "
        f"scipy.sparse types (loading it could run code): {path}\n"
    )
    assert not marker.exists()
