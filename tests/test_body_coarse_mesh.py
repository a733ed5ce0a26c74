"""The coarse mesh reproduces the official constructor on the fixture's stand-ins, and loads from files."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lib.body.coarse_mesh import build_coarse_mesh, load_coarse_mesh, nearest_joint_map
from lib.body.files import BodyFileError, load_downsampling, save_downsampling, save_npy
from tests.conftest import REFERENCE, reference_missing
from tests.payloads import SYSTEM_GLOBAL, MarkerPayload

FIXTURE = REFERENCE / "pmce_forward_seed0.pt"


def _selection(columns: np.ndarray, num_cols: int) -> sp.csr_matrix:
    """0/1 matrix with a single 1 in row r at column columns[r]."""
    rows = np.arange(len(columns))
    return sp.csr_matrix((np.ones(len(columns), np.float32), (rows, columns)), shape=(len(columns), num_cols))


@pytest.fixture(scope="module")
def standins() -> dict[str, np.ndarray]:
    if not FIXTURE.is_file():
        pytest.skip(reference_missing(FIXTURE))
    s = torch.load(FIXTURE, weights_only=True)["standins"]
    return {k: v.numpy() for k, v in s.items()}


def _downsampling(s: dict[str, np.ndarray]) -> dict[str, list]:
    d0 = _selection(s["D0_selected_columns"], 6890)
    d1 = _selection(s["D1_selected_columns"], 1723)
    return {"A": [], "U": [d0.T.tocsr(), d1.T.tocsr()], "D": [d0, d1]}


def test_reproduces_official_constructor(standins):
    mesh = build_coarse_mesh(
        standins["smpl_mean_vertices"], _downsampling(standins), standins["J_regressor_h36m"]
    )
    assert mesh.template.dtype == torch.float32 and mesh.template.shape == (431, 3)
    assert torch.equal(mesh.template, torch.from_numpy(standins["init_vertices_431"]))
    assert mesh.vertex_joint_map.dtype == torch.int64
    assert torch.equal(mesh.vertex_joint_map, torch.from_numpy(standins["vj_relation"]))
    assert [tuple(u.shape) for u in mesh.upsample] == [(1723, 431), (6890, 1723)]
    assert all(u.is_sparse and u.dtype == torch.float32 for u in mesh.upsample)


def test_load_from_files(standins, tmp_path):
    save_npy(tmp_path / "mean.npy", standins["smpl_mean_vertices"])
    save_npy(tmp_path / "reg.npy", standins["J_regressor_h36m"])
    save_downsampling(tmp_path / "down.npz", _downsampling(standins))
    mesh = load_coarse_mesh(tmp_path / "mean.npy", tmp_path / "down.npz", tmp_path / "reg.npy")
    assert torch.equal(mesh.vertex_joint_map, torch.from_numpy(standins["vj_relation"]))


def test_nearest_joint_first_on_ties():
    joints = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 5.0, 0]])
    vertices = torch.tensor([[0.0, 0, 0], [-0.9, 0, 0], [0, 4.0, 0]])
    assert nearest_joint_map(vertices, joints).tolist() == [0, 1, 2]


def test_missing_and_malformed_files(tmp_path):
    save_npy(tmp_path / "mean.npy", np.zeros((10, 2), np.float32))
    with pytest.raises(BodyFileError, match="shape"):
        load_coarse_mesh(tmp_path / "mean.npy", tmp_path / "down.npz", tmp_path / "reg.npy")
    save_npy(tmp_path / "mean.npy", np.zeros((10, 3), np.float32))
    with pytest.raises(BodyFileError, match="J_regressor_h36m_correct") as err:
        load_coarse_mesh(tmp_path / "mean.npy", tmp_path / "down.npz", tmp_path / "reg.npy")
    assert "reg.npy" in str(err.value) and "kasvii/PMCE" in str(err.value)
    save_npy(tmp_path / "reg.npy", np.zeros((17, 10), np.float32))
    (tmp_path / "down.npz").write_bytes(b"not a zip")
    with pytest.raises(BodyFileError, match="unreadable"):
        load_coarse_mesh(tmp_path / "mean.npy", tmp_path / "down.npz", tmp_path / "reg.npy")


def test_nearest_joint_set_switch_uses_the_input_joints(synthetic_body_dir):
    """'h36m17' maps vertices to Human3.6M-17 indices (the official quirk); 'input' to COCO-19 joints."""
    from lib.body.build import build_coarse_mesh_from_cfg
    from lib.config import get_cfg
    from tests.conftest import body_cfg_opts

    official = build_coarse_mesh_from_cfg(get_cfg(opts=body_cfg_opts(synthetic_body_dir)))
    semantic = build_coarse_mesh_from_cfg(
        get_cfg(opts=[*body_cfg_opts(synthetic_body_dir), "MODEL.DECODER.NEAREST_JOINT_SET", "input"])
    )
    assert torch.equal(official.template, semantic.template)
    assert int(official.vertex_joint_map.max()) < 17 and int(semantic.vertex_joint_map.max()) < 19
    assert not torch.equal(official.vertex_joint_map, semantic.vertex_joint_map)


def _object_array(items: list) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def _write_npz(path: Path, lists: dict[str, list], protocol: int) -> bytes:
    """An .npz of object arrays as np.save writes them (header, then the pickled array), with the
    pickle protocol given; returns the pickled bytes of 'D'."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, items in lists.items():
            array, buffer = _object_array(items), io.BytesIO()
            np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(array))
            pickled = pickle.dumps(array, protocol=protocol)
            archive.writestr(f"{key}.npy", buffer.getvalue() + pickled)
    return pickled


def test_downsampling_reads_python2_era_pickles_and_refuses_code(tmp_path):
    down = sp.csr_matrix(np.eye(3, 5, dtype=np.float32))
    lists = {"A": [sp.csr_matrix(np.eye(5, dtype=np.float32))], "U": [down.T.tocsr()], "D": [down]}
    pickled = _write_npz(tmp_path / "old.npz", lists, protocol=1)
    assert b"copy_reg\n_reconstructor" in pickled and b"__builtin__\nobject" in pickled  # as GraphCMR's
    loaded = load_downsampling(tmp_path / "old.npz")
    assert all((loaded[k][0] != lists[k][0]).nnz == 0 for k in lists)
    marker = tmp_path / "ran"
    _write_npz(tmp_path / "evil.npz", {**lists, "U": [MarkerPayload(marker)]}, protocol=2)
    with pytest.raises(BodyFileError) as err:
        load_downsampling(tmp_path / "evil.npz")
    assert str(err.value).startswith(f"refused downsampling file: it names {SYSTEM_GLOBAL}, which is not on")
    assert f"(loading it could run code): {tmp_path / 'evil.npz'}\n" in str(err.value)
    assert not marker.exists()
