"""Loading checkpoints: the official file layout, wrapper prefixes, sub-networks and clear errors."""

import collections

import pytest
import torch

from lib.models.weights import CheckpointError, CheckpointMismatchError, load_model_weights
from tests.test_model_variants import build


def official_style_checkpoint(model: torch.nn.Module, path, prefix: str = "module.") -> None:
    """A file laid out like the official ``*.pth.tar`` (DataParallel prefix, Counter milestones)."""
    torch.save(
        {
            "epoch": 20,
            "model_state_dict": {prefix + k: v for k, v in model.state_dict().items()},
            "optim_state_dict": {},
            "scheduler_state_dict": {"milestones": collections.Counter({2: 1, 4: 1}), "gamma": 0.9},
            "train_log": [0.5, 0.4],
            "test_log": {"surface": [90.0], "joint": [70.0]},
        },
        path,
    )


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_official_layout_loads(tmp_path):
    source, target = build(seed=1), build(seed=2)
    official_style_checkpoint(source, tmp_path / "mesh_3dpw.pth.tar")
    load_model_weights(target, tmp_path / "mesh_3dpw.pth.tar")
    assert_same_weights(source, target)


def test_pose_stream_from_stage1_or_full_checkpoint(tmp_path):
    full, stage1 = build(seed=1), build("STAGE", "pose", seed=3)
    official_style_checkpoint(full, tmp_path / "mesh.pth.tar")
    official_style_checkpoint(stage1, tmp_path / "pose.pth.tar", prefix="")
    target = build(seed=2)
    load_model_weights(target.pose_lifter, tmp_path / "mesh.pth.tar", prefix="pose_lifter.")
    assert_same_weights(full.pose_lifter, target.pose_lifter)
    load_model_weights(target.pose_lifter, tmp_path / "pose.pth.tar", prefix="pose_lifter.")
    assert_same_weights(stage1, target.pose_lifter)


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    official_style_checkpoint(build("MODEL.INPUT_JOINT_SET", "h36m17"), tmp_path / "h36m.pth.tar")
    target = build("MODEL.POSE_STREAM.USE_IMG_FEAT", "False")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_model_weights(target, tmp_path / "h36m.pth.tar")
    message = str(err.value)
    assert "h36m.pth.tar" in message
    assert "unexpected keys" in message and "pose_lifter.imgfeat_embed.weight" in message
    assert "mis-shaped keys" in message and "pose_lifter.spatial_pos_embed: checkpoint (1, 17, 16)" in message
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())  # nothing half-loaded


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model_weights(build(), tmp_path / "absent.pth")
    good = tmp_path / "good.pth"
    official_style_checkpoint(build(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model_weights(build(), truncated)
    torch.save({"epoch": 3, "notes": "no weights"}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="no network weights"):
        load_model_weights(build(), tmp_path / "empty.pth")
