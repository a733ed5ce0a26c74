"""Engine building blocks: schedules, atomic checkpoints, RNG capture, run folders."""

import random

import numpy as np
import pytest
import torch

from lib.config import get_cfg
from lib.engine.build import build_optimizer, build_scheduler
from lib.engine.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from lib.engine.run_dir import create_run_dir
from lib.models.weights import CheckpointError


def lrs(scheduler, optimizer, epochs: int) -> list[float]:
    out = []
    for _ in range(epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_step_schedule_equals_official_multistep():
    cfg = get_cfg("configs/train_mesh_3dpw.yaml")
    model = torch.nn.Linear(2, 2)
    ours = build_optimizer(cfg, model)
    reference = torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=5e-5)
    official = torch.optim.lr_scheduler.MultiStepLR(reference, milestones=[2, 4, 6, 8, 10, 12, 15], gamma=0.9)
    assert lrs(build_scheduler(cfg, ours), ours, 20) == pytest.approx(lrs(official, reference, 20), rel=1e-12)


def test_warmup_and_cosine():
    cfg = get_cfg(
        opts=["TRAIN.SCHEDULER", "cosine", "TRAIN.WARMUP_EPOCHS", "2", "TRAIN.EPOCHS", "6", "TRAIN.LR", "1.0"]
    )
    optimizer = build_optimizer(cfg, torch.nn.Linear(2, 2))
    values = lrs(build_scheduler(cfg, optimizer), optimizer, 6)
    assert values[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert values[3] > values[4] > values[5] > 0


def test_checkpoint_round_trip_and_atomic_replace(tmp_path):
    path = tmp_path / "last.pth"
    payload = {"model": {"w": torch.ones(2)}, "optimizer": {}, "scheduler": {}, "epoch": 1, "epoch_step": 0,
               "iteration": 5, "rng": capture_rng_state(), "config": "SEED: 1\n"}  # fmt: skip
    save_checkpoint(payload, path)
    payload["iteration"] = 6
    save_checkpoint(payload, path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # no temporary files left
    assert load_checkpoint(path)["iteration"] == 6


def test_bad_checkpoints_are_clear_errors(tmp_path):
    good = tmp_path / "good.pth"
    save_checkpoint({"model": {}, "epoch": 0}, good)
    with pytest.raises(CheckpointError, match="not a resumable training checkpoint"):
        load_checkpoint(good)
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "cut.pth")


def test_rng_state_round_trip(tmp_path):
    state = capture_rng_state()
    save_checkpoint({"rng": state}, tmp_path / "rng.pth")
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(torch.load(tmp_path / "rng.pth", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_run_dirs_are_never_reused(tmp_path):
    cfg = get_cfg(opts=["OUTPUT_DIR", str(tmp_path), "EXPERIMENT", "exp"])
    first, second = create_run_dir(cfg, name="run"), create_run_dir(cfg, name="run")
    assert first != second and (first / "config.yaml").is_file() and (second / "config.yaml").is_file()
    assert (tmp_path / "exp" / "latest").resolve() == second.resolve()
    assert get_cfg(second / "config.yaml") == cfg


def test_an_evaluation_does_not_move_the_training_runs_latest(tmp_path):
    cfg = get_cfg(opts=["OUTPUT_DIR", str(tmp_path), "EXPERIMENT", "exp"])
    train_run = create_run_dir(cfg)
    eval_run = create_run_dir(cfg, group="eval")
    assert eval_run.parent == tmp_path / "exp" / "eval"
    assert (tmp_path / "exp" / "latest").resolve() == train_run.resolve()
    assert (tmp_path / "exp" / "eval" / "latest").resolve() == eval_run.resolve()
