"""Reliability of the engine on a toy model: non-finite steps are skipped then stop the run, non-finite
weights are never saved, validation with NaN predictions never makes best.pth; which checkpoint
``--resume auto`` takes and which overrides a resumed run accepts."""

from __future__ import annotations

import math
import os
import re
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lib.config import ConfigError, get_cfg
from lib.engine.checkpoint import capture_rng_state, save_checkpoint
from lib.engine.logger import RunLogger
from lib.engine.resume import RESUMABLE_KEYS, newest_resumable, resumed_config
from lib.engine.trainer import NONFINITE_FRAMES, DivergenceError, Trainer, TrainSettings
from lib.models.weights import CheckpointError


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, pose2d: torch.Tensor, img_feat: torch.Tensor) -> torch.Tensor:
        return self.linear(pose2d)


def toy_loss(output, batch, epoch):
    total = (output - batch["y"]).square().mean()
    return {"total": total, "pose": total.detach()}


def batch(value: float) -> dict:
    return {"pose2d": torch.full((2, 2), value), "img_feat": torch.zeros(2, 1), "y": torch.ones(2, 1)}


class ListLoader:
    """The loader interface the trainer uses: fixed batches, a sampler with ``set_epoch``."""

    def __init__(self, batches: list[dict]) -> None:
        self.batches, self.batch_size, self.dataset = batches, 2, None
        self.sampler = SimpleNamespace(set_epoch=lambda epoch, start=0: None)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def make_trainer(tmp_path, values: list[float], validate=None, max_nonfinite: int = 3) -> Trainer:
    torch.manual_seed(0)
    model = Toy()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    return Trainer(
        model=model,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0),
        loss_fn=toy_loss,
        loader=ListLoader([batch(v) for v in values]),
        validate=validate,
        logger=RunLogger(tmp_path),
        run_dir=tmp_path,
        settings=TrainSettings(epochs=1, val_every=1, save_every=0, max_nonfinite_steps=max_nonfinite),
        device=torch.device("cpu"),
        config_text="SEED: 0\n",
    )


def log_text(trainer: Trainer, tmp_path) -> str:
    trainer.logger.close()
    return (tmp_path / "log.txt").read_text()


def test_a_nonfinite_step_changes_nothing(tmp_path):
    trainer = make_trainer(tmp_path, [])
    trainer.step(batch(1.0))  # the optimiser has moments now
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    moments = {k: v.clone() for k, v in trainer.optimizer.state[trainer.model.linear.weight].items()}
    terms, grad_norm, finite = trainer.step(batch(math.nan))
    assert not finite and math.isnan(terms["total"]) and math.isnan(grad_norm)
    assert all(torch.equal(v, weights[k]) for k, v in trainer.model.state_dict().items())
    state = trainer.optimizer.state[trainer.model.linear.weight]
    assert all(torch.equal(v, moments[k]) for k, v in state.items())
    assert trainer.step(batch(1.0))[2]  # training goes on


def test_skipped_steps_are_counted_in_a_row_and_warned(tmp_path):
    trainer = make_trainer(tmp_path, [1.0, math.nan, 1.0, math.inf, math.nan, math.nan, 1.0])
    state = trainer.fit()
    assert state.epoch == 1 and state.iteration == 7
    log = log_text(trainer, tmp_path)
    assert log.count("the step is skipped (no update)") == 4
    assert "warning: step 2 (epoch 1): non-finite loss terms total=nan, pose=nan, gradient norm nan" in log
    assert "step 6 (epoch 1)" in log and "3 in a row of at most 3 (TRAIN.MAX_NONFINITE_STEPS)" in log
    saved = torch.load(tmp_path / "last.pth", weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in saved.values())


def test_too_many_nonfinite_steps_stop_the_run_and_save_nothing(tmp_path):
    trainer = make_trainer(tmp_path, [1.0, math.nan, math.nan, math.nan, math.nan, 1.0])
    with pytest.raises(DivergenceError) as err:
        trainer.fit()
    message = str(err.value)
    assert message.startswith("training diverged: 4 steps in a row up to step 5 (epoch 1) had a non-finite")
    assert "(at most TRAIN.MAX_NONFINITE_STEPS = 3 are skipped); non-finite loss terms total=nan" in message
    assert "lower TRAIN.LR or set TRAIN.GRAD_CLIP" in message and "NaN / inf in the input data" in message
    assert message.endswith("NaN / inf in the input data. No checkpoint was saved.")
    assert trainer.state.iteration == 5  # stopped at once: the last good batch was never reached
    assert not list(tmp_path.glob("*.pth"))
    assert log_text(trainer, tmp_path).count("the step is skipped") == 3


def test_weights_with_nan_are_never_saved(tmp_path):
    trainer = make_trainer(tmp_path, [1.0])
    trainer.fit()
    before = (tmp_path / "last.pth").read_bytes()
    with torch.no_grad():
        trainer.model.linear.bias.fill_(math.nan)
    with pytest.raises(DivergenceError, match=re.escape("last.pth is not written (last.pth (step 1)")):
        trainer.save("last.pth")
    assert (tmp_path / "last.pth").read_bytes() == before
    assert [p.name for p in tmp_path.glob("*.pth")] == ["last.pth"]


def test_validation_with_nonfinite_predictions_never_makes_best(tmp_path):
    results = iter([{"MPJPE": math.nan, NONFINITE_FRAMES: 5.0}, {"MPJPE": 7.0}])
    trainer = make_trainer(tmp_path, [1.0], validate=lambda model: next(results))
    trainer.run_validation()
    assert trainer.state.best == math.inf and not (tmp_path / "best.pth").exists()
    trainer.run_validation()
    assert trainer.state.best == 7.0 and (tmp_path / "best.pth").is_file()
    assert "warning: epoch 0 validation: 5 frames have non-finite predictions" in log_text(trainer, tmp_path)


# ------------------------------------------------------------------------------------------------------
# Resuming
# ------------------------------------------------------------------------------------------------------
def saved_text(*opts: str) -> str:
    return get_cfg("configs/synthetic_pose.yaml", list(opts)).dump()


def test_allowed_overrides_are_applied_and_reported():
    text = saved_text("TRAIN.SCHEDULER", "step")
    cfg, changes = resumed_config(
        text,
        ["TRAIN.EPOCHS", "12", "TRAIN.LOG_EVERY", "5", "TRAIN.LR", "2e-3", "DATA.WORKERS", "0"],
        "run/last.pth",
    )
    assert (cfg.TRAIN.EPOCHS, cfg.TRAIN.LOG_EVERY, cfg.TRAIN.LR) == (12, 5, 2e-3)
    assert changes == ("TRAIN.EPOCHS: 8 -> 12", "TRAIN.LOG_EVERY: 20 -> 5")  # the same LR is no change
    assert cfg.dump() != text and get_cfg("configs/synthetic_pose.yaml").MODEL == cfg.MODEL


def test_overrides_that_change_the_model_or_the_optimisation_are_refused():
    with pytest.raises(ConfigError) as err:
        resumed_config(
            saved_text(), ["TRAIN.LR", "1e3", "MODEL.SEQ_LEN", "4", "TRAIN.LOG_EVERY", "5"], "r.pth"
        )
    message = str(err.value)
    assert message.startswith("--resume continues the config saved in r.pth; these overrides would change")
    assert "\n  TRAIN.LR: saved 0.002, given 1000.0\n  MODEL.SEQ_LEN: saved 8, given 4\n" in message
    assert "TRAIN.LOG_EVERY" not in message.split("allowed on resume")[0]
    assert (
        "allowed on resume: BODY.J_REGRESSOR_COCO" in message
        and "start a new run without --resume" in message
    )


def test_more_epochs_are_refused_under_the_cosine_schedule():
    with pytest.raises(ConfigError, match=re.escape("TRAIN.EPOCHS: saved 8, given 12 (the run's cosine")):
        resumed_config(saved_text(), ["TRAIN.EPOCHS", "12"], "r.pth")


@pytest.mark.parametrize("key", ["OUTPUT_DIR", "EXPERIMENT", "SEED", "TRAIN.BATCH_SIZE", "DATA.EPOCH_LENGTH"])
def test_keys_off_the_allow_list_are_refused(key):
    assert key not in RESUMABLE_KEYS
    value = {"OUTPUT_DIR": "elsewhere", "EXPERIMENT": "other"}.get(key, "7")
    with pytest.raises(ConfigError, match=re.escape(f"\n  {key}: saved ")):
        resumed_config(saved_text(), [key, value], "r.pth")


def write_checkpoint(path, iteration: int, mtime: int) -> None:
    path.parent.mkdir(parents=True)
    state = {"epoch": 0, "epoch_step": iteration, "iteration": iteration, "rng": capture_rng_state()}
    save_checkpoint({"model": {}, "optimizer": {}, "scheduler": {}, **state, "config": "SEED: 1\n"}, path)
    os.utime(path, (mtime, mtime))


def test_resume_auto_takes_the_newest_resumable_checkpoint_of_all_runs(tmp_path):
    experiment = tmp_path / "exp"
    write_checkpoint(experiment / "20240101-000000" / "last.pth", iteration=3, mtime=1_000)
    write_checkpoint(experiment / "b-run" / "last.pth", iteration=7, mtime=2_000)
    write_checkpoint(
        experiment / "eval" / "20240103-000000" / "last.pth", iteration=9, mtime=4_000
    )  # not a run
    (experiment / "20240102-000000").mkdir()  # the newest run folder: it never saved a checkpoint
    (experiment / "latest").symlink_to("20240102-000000")
    (experiment / "c-broken").mkdir()
    (experiment / "c-broken" / "last.pth").write_bytes(b"truncated")
    os.utime(experiment / "c-broken" / "last.pth", (3_000, 3_000))
    path, checkpoint = newest_resumable(experiment)
    assert path == experiment / "b-run" / "last.pth" and checkpoint["iteration"] == 7


def test_resume_auto_without_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "exp" / "20240101-000000").mkdir(parents=True)
    with pytest.raises(CheckpointError) as err:
        newest_resumable(tmp_path / "exp")
    assert str(err.value) == (
        f"--resume auto: no run folder of {tmp_path / 'exp'} holds a resumable last.pth\n"
        "start a new run without --resume, or pass --resume PATH"
    )
