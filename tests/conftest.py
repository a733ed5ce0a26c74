"""Body-model fixtures: the generated SMPL-format body, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from yacs.config import CfgNode

from lib.body.generated.make import GeneratedBody, generate_body, write_body
from lib.config import get_cfg


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
