"""Session fixtures: the generated SMPL-format body and a tiny synthetic 3DPW-format dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from yacs.config import CfgNode

from lib.body.generated.make import GeneratedBody, generate_body, write_body
from lib.config import get_cfg

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "tiny.yaml"  # the smoke run's settings, which the tests train with
REFERENCE = REPO.parent / "shared" / "reference"  # the official PMCE code's outputs, beside the repository


def reference_missing(path: Path) -> str:
    """The skip reason of an official-parity test without its reference file: the summary (pytest -ra)
    must say that the parity was not checked, not let a skip pass for a success."""
    return f"official parity NOT checked: {path} is missing (the official PMCE code's outputs)"


def needs_reference(path: Path) -> pytest.MarkDecorator:
    """Skip an official-parity test, saying so, when the official code's output ``path`` is absent."""
    return pytest.mark.skipif(not path.is_file(), reason=reference_missing(path))


def config_overrides(path: Path, sections: tuple[str, ...], changes: dict | None = None) -> list[str]:
    """``KEY VALUE`` overrides of the keys that the YAML ``path`` itself sets (not its _BASE_'s) under the
    top-level ``sections``, in the file's order, to lay over another config; ``changes`` replace values."""

    def flatten(node: dict, prefix: str) -> list[tuple[str, str]]:
        pairs = []
        for key, value in node.items():
            name = f"{prefix}{key}"
            pairs += flatten(value, f"{name}.") if isinstance(value, dict) else [(name, str(value))]
        return pairs

    tree = yaml.safe_load(path.read_text())
    pairs = [pair for section in sections for pair in flatten(tree[section], f"{section}.")]
    return [x for key, value in pairs for x in (key, (changes or {}).get(key, value))]


@pytest.fixture(scope="session")
def synthetic_body() -> GeneratedBody:
    """The generated body in memory (the same arrays the files hold)."""
    return generate_body()


@pytest.fixture(scope="session")
def synthetic_body_dir(synthetic_body: GeneratedBody, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the generated body in the default layout: body_models/smpl/ and base_data/."""
    root = tmp_path_factory.mktemp("generated_body")
    write_body(synthetic_body, root / "body_models" / "smpl", root / "base_data")
    return root


def body_cfg_opts(root: Path) -> list[str]:
    """Config overrides that point every BODY path into ``root`` (same layout as data/)."""
    base = root / "base_data"
    return [
        "BODY.SMPL_DIR", str(root / "body_models" / "smpl"),
        "BODY.MEAN_VERTICES", str(base / "smpl_mean_vertices.npy"),
        "BODY.MESH_DOWNSAMPLING", str(base / "mesh_downsampling.npz"),
        "BODY.J_REGRESSOR_H36M", str(base / "J_regressor_h36m_correct.npy"),
        "BODY.J_REGRESSOR_COCO", str(base / "J_regressor_coco.npy"),
    ]  # fmt: skip


@pytest.fixture(scope="session")
def synthetic_body_cfg(synthetic_body_dir: Path) -> CfgNode:
    """The default config with BODY.* pointing at the generated body."""
    return get_cfg(opts=body_cfg_opts(synthetic_body_dir))


@pytest.fixture(scope="session")
def synthetic_body_model(synthetic_body_cfg: CfgNode):
    """``BodyModel`` (neutral, male, female) built from the generated files through smplx."""
    from lib.body.build import build_body_model

    return build_body_model(synthetic_body_cfg)


# A tiny synthetic dataset: two short training videos, one for validation and one for test.
TINY_DATA_OPTS = [
    "DATA.SYNTHETIC.NUM_SEQUENCES", "[2, 1, 1]", "DATA.SYNTHETIC.SEQ_LEN_RANGE", "[12, 16]",
    "DATA.SYNTHETIC.WORKERS", "1", "DATA.SYNTHETIC.OCCLUDER_PROB", "0.5",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_synthetic_data(
    synthetic_body_dir: Path, synthetic_body_model, tmp_path_factory
) -> tuple[Path, dict]:
    """(folder, manifest) of the tiny synthetic dataset, written once per session with config hash 'abc'."""
    from lib.data.noise import build_noise
    from lib.data.synthetic.generate import build_synthetic_settings, generate_dataset

    cfg = get_cfg(opts=[*body_cfg_opts(synthetic_body_dir), *TINY_DATA_OPTS])
    out = tmp_path_factory.mktemp("synthetic") / "pw3d_data"
    manifest = generate_dataset(
        synthetic_body_model, build_synthetic_settings(cfg), build_noise(cfg), out, config_hash="abc",
        log=lambda _: None,
    )  # fmt: skip
    return out, manifest


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread (the batched solves of the SMPL fit and the rig exports are 3-4x
    faster than on two OpenMP threads of a busy 2-core CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
