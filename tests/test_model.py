"""The PMCE network against the official one: sizes, checkpoint keys, initialisation and forward.

The reference files come from running the official code (``../shared/reference``).
"""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lib.config import get_cfg
from lib.models.build import build_model
from tests.conftest import REFERENCE, needs_reference

REPO = Path(__file__).resolve().parents[1]
FORWARD_FIXTURE = REFERENCE / "pmce_forward_seed0.pt"
KEYS_FILE = REFERENCE / "pmce_state_dict_keys.txt"


def random_coarse_mesh(num_coarse: int = 431, num_joints: int = 17, seed: int = 0) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    return SimpleNamespace(
        template=torch.rand(num_coarse, 3, generator=g) - 0.5,
        vertex_joint_map=torch.randint(0, num_joints, (num_coarse,), generator=g),
        upsample=(),
    )


def official_model(joint_set: str, stage: str = "mesh") -> torch.nn.Module:
    cfg = get_cfg(opts=["MODEL.INPUT_JOINT_SET", joint_set, "STAGE", stage])
    return build_model(cfg, random_coarse_mesh())


def reference_keys(stage: int) -> dict[str, tuple[int, ...]]:
    """key -> shape from the official listing; stage 1 or 2."""
    text = KEYS_FILE.read_text().split("### STAGE 2")[stage - 1]
    rows = [line.split("\t") for line in text.splitlines() if "\t" in line and not line.startswith("#")]
    return {key: tuple(int(d) for d in shape.strip("()").split(",") if d.strip()) for key, shape, _ in rows}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "joint_set, pose_params, full_params",
    [("coco19", 3_699_220, 103_066_416), ("h36m17", 3_698_708, 103_064_752)],
)
def test_parameter_counts_equal_official(joint_set, pose_params, full_params):
    assert n_params(official_model(joint_set, "pose")) == pose_params
    assert n_params(official_model(joint_set, "mesh")) == full_params


@needs_reference(KEYS_FILE)
@pytest.mark.parametrize("stage", [1, 2])
def test_state_dict_keys_and_shapes_equal_official(stage):
    model = official_model("coco19", "pose" if stage == 1 else "mesh")
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert list(ours.items()) == list(reference_keys(stage).items())


@needs_reference(FORWARD_FIXTURE)
def test_seeded_build_reproduces_official_initialisation():
    fixture = torch.load(FORWARD_FIXTURE, weights_only=True)
    standins = fixture["standins"]
    coarse = SimpleNamespace(
        template=standins["init_vertices_431"], vertex_joint_map=standins["vj_relation"], upsample=()
    )
    torch.manual_seed(0)
    state = build_model(get_cfg(), coarse).state_dict()
    for key, official in fixture["state_dict_small"].items():
        assert torch.equal(state[key], official), key


@needs_reference(FORWARD_FIXTURE)
def test_forward_matches_official_fixture(capsys):
    spec = importlib.util.spec_from_file_location(
        "check_official_fixture", REPO / "scripts" / "check_official_fixture.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(FORWARD_FIXTURE)]) == 0
    report = capsys.readouterr().out
    assert "16/16 within 1e-05" in report
    assert script.main([str(FORWARD_FIXTURE.with_name("absent.pt"))]) == 2
