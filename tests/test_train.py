"""End to end: both stages train on the tiny synthetic dataset (stage 2 logs a validation mesh image),
resume is bitwise exact, torchrun agrees."""

from __future__ import annotations

import csv
import math
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from lib.config import ConfigError, get_cfg, get_cfg_from_text
from lib.models.build import build_model
from tests.conftest import TINY_CONFIG, body_cfg_opts, config_overrides

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TINY_MODEL = config_overrides(TINY_CONFIG, ("MODEL",))  # configs/tiny.yaml's network, over any config


@pytest.fixture(scope="module")
def opts(synthetic_body_dir, tiny_synthetic_data, tmp_path_factory) -> list[str]:
    """Overrides of configs/synthetic_pose.yaml (or synthetic_mesh.yaml) for a run of a few seconds:
    configs/tiny.yaml's keys, every window of the tiny dataset per epoch."""
    data_dir, _ = tiny_synthetic_data
    tiny = config_overrides(TINY_CONFIG, ("MODEL", "DATA", "TRAIN", "EVAL"), {"DATA.EPOCH_LENGTH": "0"})
    return [
        *body_cfg_opts(synthetic_body_dir), *tiny,
        "OUTPUT_DIR", str(tmp_path_factory.mktemp("output")), "DATA.SYNTHETIC.DIR", str(data_dir),
        "DATA.CACHE_DIR", str(tmp_path_factory.mktemp("cache")), "DATA.WORKERS", "0",
    ]  # fmt: skip


def run(cfg: str, opts: list[str], *extra: str) -> Path:
    """Run train.py in-process; return the run folder of that experiment's latest run."""
    assert train.main(["--cfg", cfg, *extra, *opts]) == 0
    output = Path(opts[opts.index("OUTPUT_DIR") + 1])
    experiment = opts[opts.index("EXPERIMENT") + 1] if "EXPERIMENT" in opts else Path(cfg).stem
    return (output / experiment / "latest").resolve()


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_two_stages_train_and_write_their_outputs(opts):
    pose_run = run("configs/synthetic_pose.yaml", [*opts, "TRAIN.VAL_EVERY", "3"])
    for name in ("config.yaml", "last.pth", "best.pth", "log.txt", "metrics.csv"):
        assert (pose_run / name).is_file(), name
    assert any((pose_run / "tensorboard").iterdir())
    with open(pose_run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["metric"] for r in rows if r["split"] == "val"} == {"MPJPE", "PA-MPJPE", "ACCEL"}
    assert [int(r["epoch"]) for r in rows if r["metric"] == "MPJPE"] == [2]  # the last epoch, always

    mesh_run = run(
        "configs/synthetic_mesh.yaml", [*opts, "MODEL.POSE_CHECKPOINT", str(pose_run / "best.pth")]
    )
    checkpoint = torch.load(mesh_run / "last.pth", weights_only=True)
    assert checkpoint["epoch"] == 2 and "pose_mesh_coevo.upsample_conv.weight" in checkpoint["model"]
    with open(mesh_run / "metrics.csv") as f:
        assert {"PVE", "MPJPE"} <= {r["metric"] for r in csv.DictReader(f)}
    images = tensorboard_images(mesh_run)  # the mesh of one validation window, at every validation
    assert [(e.step, e.height) for e in images["val/mesh"]] == [(checkpoint["iteration"] // 2, 256),
                                                                (checkpoint["iteration"], 256)]  # fmt: skip
    assert not tensorboard_images(pose_run)
    assert_other_model_settings_refused(opts, pose_run, mesh_run)


def assert_other_model_settings_refused(opts, pose_run: Path, mesh_run: Path) -> None:
    """A switch that changes no weight's shape (so the weights would load) but does change the
    computation: evaluating, or starting stage 2, under another value is a clear error naming it."""
    from eval import main as eval_main

    other = [*opts, "MODEL.POSE_STREAM.INPUT_NORM", "screen"]
    argv = ["--cfg", "configs/synthetic_mesh.yaml", "--checkpoint", str(mesh_run / "best.pth"), *other]
    named = re.escape("MODEL.POSE_STREAM.INPUT_NORM: checkpoint 'root_scale', config 'screen'")
    with pytest.raises(ConfigError, match=named):
        eval_main(argv)
    with pytest.raises(ConfigError, match=re.escape(f"{pose_run / 'best.pth'} was trained with other")):
        train.main(["--cfg", "configs/synthetic_mesh.yaml", *other,
                    "MODEL.POSE_CHECKPOINT", str(pose_run / "best.pth")])  # fmt: skip
    # Training-only keys (initialisation, drop path) may differ.
    assert eval_main([*argv[:4], *opts, "MODEL.POSE_STREAM.POS_EMBED_STD", "0.0"]) == 0


def tensorboard_images(run_dir: Path) -> dict[str, list]:
    """Every image event of a run's TensorBoard folder by tag."""
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return {tag: events.Images(tag) for tag in events.Tags()["images"]}


def test_interrupted_run_resumes_bitwise_exactly(opts):
    mesh = [*opts, "EXPERIMENT", "straight", "MODEL.POSE_CHECKPOINT", ""]
    straight = run("configs/synthetic_mesh.yaml", mesh)
    interrupted = [
        *opts,
        "EXPERIMENT",
        "interrupted",
        "MODEL.POSE_CHECKPOINT",
        "",
        "TRAIN.STOP_AFTER_ITERS",
        "5",
    ]
    stopped = run("configs/synthetic_mesh.yaml", interrupted)
    stopped_state = torch.load(stopped / "last.pth", weights_only=True)
    steps_per_epoch = torch.load(straight / "last.pth", weights_only=True)["iteration"] // 2
    assert stopped_state["iteration"] == 5 and 0 < stopped_state["epoch_step"] < steps_per_epoch  # mid-epoch
    run(
        "configs/synthetic_mesh.yaml",
        [*interrupted, "TRAIN.STOP_AFTER_ITERS", "0"],
        "--resume",
        str(stopped / "last.pth"),
    )
    final, reference = weights(stopped / "last.pth"), weights(straight / "last.pth")
    assert all(torch.equal(final[k], reference[k]) for k in reference)


def test_resume_errors_are_clear(opts, capsys):
    from lib.cli import run_main

    assert (
        run_main(train.main, ["--cfg", "configs/synthetic_pose.yaml", "--resume", "/nowhere/last.pth"]) == 2
    )
    assert "checkpoint not found: /nowhere/last.pth" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_one_process(opts):
    """2 CPU processes (Gloo) with half the batch each == 1 process with the whole batch.

    Summation order differs, and Adam turns tiny gradient differences into steps of up to lr for
    near-zero gradients, so the tolerance is stated relative to how far the weights moved: at lr 1e-5
    over 8 steps they move up to 8e-5; the two runs must agree to 2e-6 (measured: 4.3e-7).
    """
    short = [*opts, "TRAIN.EPOCHS", "1", "TRAIN.LR", "1e-5"]
    single = run("configs/synthetic_pose.yaml", [*short, "EXPERIMENT", "single"])
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    command = [*launcher, "train.py", "--cfg", "configs/synthetic_pose.yaml", *short, "EXPERIMENT", "ddp"]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=600)
    output = Path(opts[opts.index("OUTPUT_DIR") + 1])
    ddp, reference = weights(output / "ddp" / "latest" / "last.pth"), weights(single / "last.pth")
    cfg = get_cfg(single / "config.yaml")
    torch.manual_seed(cfg.SEED)
    initial = build_model(cfg).state_dict()  # train.py seeds the same way before building
    moved = max((reference[k] - initial[k]).abs().max().item() for k in reference)
    difference = max((ddp[k] - reference[k]).abs().max().item() for k in reference)
    assert moved > 5e-5 and difference < 2e-6


def test_torchrun_trains_stage_two(opts):
    """Stage 2 under two processes: the decoder's skipped joint branches (no gradient) do not stop DDP."""
    pose = run("configs/synthetic_pose.yaml", [*opts, "TRAIN.EPOCHS", "1", "EXPERIMENT", "ddp_pose"])
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    command = [*launcher, "train.py", "--cfg", "configs/synthetic_mesh.yaml", *opts, "TRAIN.EPOCHS", "1",
               "MODEL.POSE_CHECKPOINT", str(pose / "best.pth"), "EXPERIMENT", "ddp_mesh"]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=600)
    output = Path(opts[opts.index("OUTPUT_DIR") + 1])
    trained = weights(output / "ddp_mesh" / "latest" / "last.pth")
    assert all(torch.isfinite(v).all() for v in trained.values())


def test_divergence_stops_the_run_and_never_saves_nonfinite_weights(opts, capsys):
    from lib.cli import run_main

    argv = ["--cfg", "configs/synthetic_pose.yaml", *opts, "EXPERIMENT", "diverged", "TRAIN.LR", "1e3",
            "TRAIN.EPOCHS", "3", "TRAIN.CHECKPOINT_EVERY_ITERS", "1"]  # fmt: skip
    assert run_main(train.main, argv) == 2
    err = capsys.readouterr().err
    run_dir = (Path(opts[opts.index("OUTPUT_DIR") + 1]) / "diverged" / "latest").resolve()
    log = (run_dir / "log.txt").read_text()
    skipped = [
        int(step) for step in re.findall(r"warning: step (\d+) \(epoch 1\): .* the step is skipped", log)
    ]
    first = skipped[0]
    assert skipped == [first, first + 1, first + 2] and err.count("\n") == 1
    assert err.startswith(f"error: training diverged: 4 steps in a row up to step {first + 3} (epoch 1) had ")
    assert "lower TRAIN.LR or set TRAIN.GRAD_CLIP), or NaN / inf in the input data" in err
    # last.pth is refreshed every step, skipped ones too: a skipped step leaves the weights as they were.
    assert err.endswith(f"Nothing was saved after the divergence; last.pth (step {first + 2}) holds the last "
                        "saved weights.\n")  # fmt: skip
    checkpoint = torch.load(run_dir / "last.pth", weights_only=True)
    assert checkpoint["iteration"] == first + 2 and not (run_dir / "best.pth").exists()
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())


def test_resume_auto_takes_the_newest_checkpoint_and_refuses_model_or_optimiser_overrides(opts, capsys):
    from lib.cli import run_main
    from lib.engine.run_dir import create_run_dir

    pose = "configs/synthetic_pose.yaml"
    base = [*opts, "EXPERIMENT", "resumed", "TRAIN.SCHEDULER", "step", "TRAIN.STOP_AFTER_ITERS", "3"]
    experiment = Path(opts[opts.index("OUTPUT_DIR") + 1]) / "resumed"
    assert run_main(train.main, ["--cfg", pose, "--resume", "auto", *base]) == 2
    assert capsys.readouterr().err == (
        f"error: --resume auto: no run folder of {experiment} holds a resumable last.pth\n"
        "start a new run without --resume, or pass --resume PATH\n"
    )
    assert not experiment.exists()
    stopped = run(pose, base)
    newer = create_run_dir(get_cfg(pose, base))  # the newest run folder (latest) has no checkpoint
    checkpoint, config = (stopped / "last.pth").read_bytes(), (stopped / "config.yaml").read_text()

    refused = ["TRAIN.LR", "1e3", "MODEL.SEQ_LEN", "4", "TRAIN.LOG_EVERY", "1"]
    assert run_main(train.main, ["--cfg", pose, "--resume", "auto", *base, *refused]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --resume continues the config saved in {stopped / 'last.pth'}; these ")
    assert "\n  MODEL.SEQ_LEN: saved 8, given 4\n  TRAIN.LR: saved 0.002, given 1000.0\nallowed on" in err
    assert (stopped / "last.pth").read_bytes() == checkpoint
    assert (stopped / "config.yaml").read_text() == config

    allowed = ["TRAIN.STOP_AFTER_ITERS", "0", "TRAIN.EPOCHS", "3", "TRAIN.LOG_EVERY", "1"]
    assert train.main(["--cfg", pose, "--resume", "auto", *base, *allowed]) == 0
    final = torch.load(stopped / "last.pth", weights_only=True)
    saved = get_cfg_from_text(final["config"])
    assert final["epoch"] == 3 and (saved.TRAIN.EPOCHS, saved.TRAIN.LOG_EVERY, saved.TRAIN.LR) == (3, 1, 2e-3)
    assert get_cfg(stopped / "config.yaml") == saved
    assert [p.name for p in newer.iterdir()] == ["config.yaml"]
    assert (
        f"resumed from {stopped / 'last.pth'} (--resume auto: the newest resumable checkpoint of "
        f"{experiment}) at epoch 0, step 3; overrides applied: TRAIN.EPOCHS: 2 -> 3, "
        "TRAIN.LOG_EVERY: 2 -> 1, TRAIN.STOP_AFTER_ITERS: 3 -> 0"
    ) in (stopped / "log.txt").read_text()


def test_eval_reports_nonfinite_weights_and_predictions_and_writes_nothing(opts, capsys):
    from eval import main as eval_main
    from lib.cli import run_main

    pose = "configs/synthetic_pose.yaml"
    short = [*opts, "EXPERIMENT", "overflow", "TRAIN.STOP_AFTER_ITERS", "1"]
    checkpoint = torch.load(run(pose, short) / "last.pth", weights_only=True)
    output = Path(opts[opts.index("OUTPUT_DIR") + 1]) / "overflow"
    for name, scale in (("nan.pth", math.nan), ("huge.pth", 1e30)):  # huge: finite weights, inf outputs
        model = {k: v * scale if v.is_floating_point() else v for k, v in checkpoint["model"].items()}
        torch.save({**checkpoint, "model": model}, output / name)
        assert run_main(eval_main, ["--cfg", pose, "--checkpoint", str(output / name), *short]) == 2
    nan_error, huge_error = capsys.readouterr().err.splitlines()[-2:]
    nan_path = output / "nan.pth"
    assert (
        nan_error == f"error: {nan_path}: the weights hold NaN / inf (a diverged run?); nothing was evaluated"
    )
    assert re.fullmatch(
        r"error: the checkpoint predicts NaN / inf for (\d+) of \1 synthetic test frames "
        r"\(first: video '\w+', frame 0\): the weights overflow on them; nothing was scored",
        huge_error,
    )
    assert not (output / "eval").exists()


def test_temporal_groups_train_with_the_acceleration_loss(opts):
    """Stage 1 on groups of 3 consecutive windows: the acceleration term is logged and the run finishes."""
    grouped = [*opts, "EXPERIMENT", "grouped", "DATA.TEMPORAL_GROUP", "3", "LOSS.ACCEL_WEIGHT", "1.0",
               "TRAIN.EPOCHS", "1", "TRAIN.LOG_EVERY", "1"]  # fmt: skip
    run_dir = run("configs/synthetic_pose.yaml", grouped)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tag = next(t for t in events.Tags()["scalars"] if t.endswith("accel") and t.startswith("train"))
    values = [e.value for e in events.Scalars(tag)]
    assert len(values) == 8 and all(v > 0 for v in values)  # 8 steps of 4 groups of 3 windows
    mixed = [*grouped, "EXPERIMENT", "mixed", "DATA.TEMPORAL_GROUP_SHARE", "0.5"]
    events = EventAccumulator(str(run("configs/synthetic_pose.yaml", mixed) / "tensorboard"))
    events.Reload()
    values = [e.value for e in events.Scalars(tag)]  # 0 on steps whose 4 samples hold no group
    assert len(values) == 8 and sum(v > 0 for v in values) >= 4
