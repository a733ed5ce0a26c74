"""Every way a run can fail on the user's input or on the machine ends in one line naming the file or the
key and what to do, with exit code 2, and leaves nothing behind (issue 18): malformed configs and values,
dataset files that are unknown, truncated, not UTF-8 or empty, output folders that are files, read-only or
hold a real ``latest`` folder, a full disk, checkpoints that cannot be resumed, a failed evaluation, a
demo ``--out`` that cannot be written. Training killed again and again during its checkpoint writes
leaves only complete checkpoints and resumes bit for bit."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import demo
import eval as eval_script
import train
from lib.cli import run_main
from lib.config import get_cfg
from lib.data.build import READERS
from lib.engine.build import build_body_assets
from lib.engine.checkpoint import load_checkpoint, save_checkpoint
from lib.engine.run_dir import DiskFullError
from lib.models.build import build_model
from tests.conftest import TINY_CONFIG, body_cfg_opts, config_overrides

REPO = Path(__file__).resolve().parents[1]
TINY = "configs/tiny.yaml"  # EXPERIMENT tiny, stage 1 of a tiny network
TEMPORARIES = ".*.tmp.*"  # lib/io.py's atomic writes: .<name>.<random>.tmp.<suffix>


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def output(tmp_path) -> Path:
    return tmp_path / "output"


@pytest.fixture
def opts(synthetic_body_dir, tiny_synthetic_data, cache_dir, output) -> list[str]:
    """Overrides of configs/tiny.yaml: the generated body, the tiny dataset, every window per epoch."""
    data_dir, _ = tiny_synthetic_data
    return [
        *body_cfg_opts(synthetic_body_dir), "DATA.SYNTHETIC.DIR", str(data_dir), "OUTPUT_DIR", str(output),
        "DATA.CACHE_DIR", str(cache_dir), "DATA.WORKERS", "0", "DATA.EPOCH_LENGTH", "0",
    ]  # fmt: skip


def error_line(main, argv: list[str], capsys) -> str:
    """The message ``run_main`` printed for a user error: exit code 2, one line, no traceback."""
    assert run_main(main, argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err[err.rfind("error: ") :]
    assert err.rfind("error: ") >= 0 and last.count("\n") == 1 and last.endswith("\n"), err
    return last.removeprefix("error: ").rstrip("\n")


def temporaries(folder: Path) -> list[Path]:
    """Temporary files of interrupted writes in the run folders of ``folder`` (not through ``latest``)."""
    return sorted(p for p in folder.glob(f"*/{TEMPORARIES}") if p.parent.name != "latest")


@contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """``path`` as an existing folder nobody may write to: a read-only tmpfs when running as root (root
    ignores permission bits), else mode 0555. Skips the test where neither is possible."""
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    with mounted_tmpfs(path, "ro,size=64k"):
        yield path


@contextmanager
def mounted_tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs with ``options`` mounted on ``path`` for the block (root only; else the test is skipped)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small or read-only tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# ------------------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------------------
YAML_CASES = {
    "parser error": (
        b"TRAIN:\n  LR: [1, 2\n",
        "not a valid YAML config: line 3, column 1: expected ',' or ']', but got '<stream end>' (while "
        "parsing a flow sequence from line 2, column 7); fix the YAML syntax there",
    ),
    "tab": (
        b"TRAIN:\n\tLR: 0.1\n",
        "not a valid YAML config: line 2, column 1: found character '\\t' that cannot start any token "
        "(while scanning for the next token); indent with spaces, not tabs",
    ),
    "list": (
        b"- TRAIN\n- LR\n",
        "not a valid YAML config: the top level is a list, not a mapping of KEY: value lines (e.g. 'TRAIN:' "
        "and below it '  LR: 1.0e-4')",
    ),
    "not UTF-8": (
        b"\xffTRAIN:\n  LR: 0.1\n",
        "not UTF-8 text (byte 0: invalid start byte); save the config as a UTF-8 YAML file",
    ),
    "value for a section": (
        b"TRAIN: 3\n",
        "Type mismatch for TRAIN: it is a section of keys (on indented lines below it), not a value",
    ),
}


@pytest.mark.parametrize("case", YAML_CASES)
def test_a_malformed_yaml_is_one_line_naming_the_file(case, opts, output, tmp_path, capsys):
    content, message = YAML_CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    assert error_line(train.main, ["--cfg", str(path), *opts], capsys) == f"{path.resolve()}: {message}"
    assert not output.exists()


def test_a_yaml_null_is_refused_naming_the_key(opts, output, tmp_path, capsys):
    path = tmp_path / "null.yaml"
    path.write_text("_BASE_: " + str(REPO / TINY) + "\nTRAIN:\n  LR: null\n")
    err = error_line(train.main, ["--cfg", str(path), *opts], capsys)
    assert err == "TRAIN.LR is empty (null); give a float, e.g. 5e-05"
    assert not output.exists()


OVERRIDE_CASES = [
    (["DATA.TRAIN_RATIOS", "1.0"], "command-line overrides: Type mismatch for DATA.TRAIN_RATIOS: it takes a "
     "list (default [1.0]), got the float 1.0"),
    (["DATA.TRAIN_RATIOS", "['a']"], "DATA.TRAIN_RATIOS takes a list of float values like its default [1.0], "
     "got ['a']"),
    (["DATA.TRAIN_RATIOS", "[0]"], "DATA.TRAIN_RATIOS are sampling weights: each >= 0 and at least one > 0; "
     "got [0.0]"),
    (["TRAIN.BATCH_SIZE", "0"], "TRAIN.BATCH_SIZE must be >= 1, got 0"),
    (["EVAL.BATCH_SIZE", "0"], "EVAL.BATCH_SIZE must be >= 1, got 0"),
    (["TRAIN.LOG_EVERY", "0"], "TRAIN.LOG_EVERY must be >= 1, got 0"),
    (["DATA.STRIDE", "0"], "DATA.STRIDE must be >= 1, got 0"),
    (["BODY.GENDERS", "['neutral', 'x']"], "BODY.GENDERS must name SMPL layers of ['neutral', 'male', "
     "'female'], each once; got ['neutral', 'x']"),
    (["BODY.GENDERS", "[]"], "BODY.GENDERS must name SMPL layers of ['neutral', 'male', 'female'], each "
     "once; got []"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "message"), OVERRIDE_CASES, ids=lambda x: " ".join(x)[:40])
def test_a_value_of_the_wrong_type_or_range_is_refused_before_anything_runs(
    override, message, opts, output, capsys
):
    assert error_line(train.main, ["--cfg", TINY, *opts, *override], capsys) == message
    assert not output.exists()


# ------------------------------------------------------------------------------------------------------
# Datasets
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["DATA.TRAIN_LIST", "DATA.VAL_LIST"])
def test_an_unknown_dataset_name_is_refused_naming_the_key(key, opts, output, capsys):
    override = [key, "['nope']", *(["DATA.TRAIN_RATIOS", "[1.0]"] if key == "DATA.TRAIN_LIST" else [])]
    err = error_line(train.main, ["--cfg", TINY, *opts, *override], capsys)
    assert err == f"{key}: unknown dataset 'nope'; known: {sorted(READERS)}"
    assert not output.exists()


def test_an_empty_training_list_is_refused(opts, output, capsys):
    override = ["DATA.TRAIN_LIST", "[]", "DATA.TRAIN_RATIOS", "[]"]
    err = error_line(train.main, ["--cfg", TINY, *opts, *override], capsys)
    assert err == "DATA.TRAIN_LIST is empty: name at least one dataset, e.g. [synthetic]"
    assert not output.exists()


def test_genders_the_data_needs_but_not_loaded_are_named(opts, output, tiny_synthetic_data, capsys):
    data_dir, _ = tiny_synthetic_data
    annotations = json.loads((data_dir / "3DPW_latest_train.json").read_text())["annotations"]
    needed = sorted({a["smpl_param"]["gender"] for a in annotations} - {"neutral"})
    assert needed, "the tiny dataset has gendered bodies"
    err = error_line(train.main, ["--cfg", TINY, *opts, "BODY.GENDERS", "['neutral']"], capsys)
    assert err == (
        f"synthetic train: the ground truth has {needed} bodies but BODY.GENDERS loads only ['neutral']; "
        f"add {needed} to BODY.GENDERS (their SMPL files must be in BODY.SMPL_DIR)"
    )
    assert not output.exists()


def broken_copy(data_dir: Path, tmp_path: Path, name: str, change) -> tuple[Path, Path]:
    """A copy of the dataset folder whose file ``name`` is replaced by ``change(its bytes)``."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    (copy / name).write_bytes(change((copy / name).read_bytes()))
    return copy, copy / name


REPLACE = "replace it with a complete copy (the generated datasets: make data)"


@pytest.mark.parametrize(
    ("name", "what", "change", "problem"),
    [
        ("3DPW_latest_train.json", "3DPW train annotations", lambda b: b[:5000],
         r"is not valid JSON, truncated or corrupt \(line 1 column \d+: [^)]+\)"),
        ("3DPW_latest_train.json", "3DPW train annotations", lambda b: b"\xff" + b,
         re.escape("is not UTF-8 text (byte 0: invalid start byte)")),
        ("3DPW_train_img_feat.json", "3DPW train image features", lambda b: b[: len(b) // 2],
         r"is not valid JSON, truncated or corrupt \(line 1 column \d+: [^)]+\)"),
    ],
    ids=["truncated", "not UTF-8", "truncated features"],
)  # fmt: skip
def test_a_truncated_or_non_utf8_json_is_named(
    name, what, change, problem, opts, output, tiny_synthetic_data, tmp_path, capsys
):
    copy, path = broken_copy(tiny_synthetic_data[0], tmp_path, name, change)
    err = error_line(train.main, ["--cfg", TINY, *opts, "DATA.SYNTHETIC.DIR", str(copy)], capsys)
    assert re.fullmatch(f"{re.escape(f'{what} {path}')} {problem}: {re.escape(REPLACE)}", err), err
    assert not output.exists()


def test_an_empty_split_is_named(opts, output, tiny_synthetic_data, tmp_path, capsys):
    def no_frames(content: bytes) -> bytes:
        return json.dumps({**json.loads(content), "images": [], "annotations": []}).encode()

    copy, _ = broken_copy(tiny_synthetic_data[0], tmp_path, "3DPW_latest_train.json", no_frames)
    err = error_line(train.main, ["--cfg", TINY, *opts, "DATA.SYNTHETIC.DIR", str(copy)], capsys)
    assert err == (
        f"synthetic train split is empty (no frames; files in {copy}): check its files (make data rebuilds "
        "the synthetic dataset) or leave 'synthetic' out of DATA.TRAIN_LIST"
    )
    assert not output.exists()


# ------------------------------------------------------------------------------------------------------
# Output folders (checked before any data is loaded: a fresh DATA.CACHE_DIR stays unmade)
# ------------------------------------------------------------------------------------------------------
def test_an_output_dir_that_is_a_file_is_refused_at_once(opts, output, tmp_path, capsys):
    output.write_text("the user's file")
    fresh_cache = tmp_path / "cache"
    err = error_line(train.main, ["--cfg", TINY, *opts, "DATA.CACHE_DIR", str(fresh_cache)], capsys)
    folder = "choose a folder (made if missing)"
    assert err == f"OUTPUT_DIR {output}/tiny: {output} is a file, not a folder; {folder}"
    assert output.read_text() == "the user's file" and not fresh_cache.exists()


def test_a_read_only_output_dir_is_refused_at_once(opts, tmp_path, capsys):
    fresh_cache = tmp_path / "cache"
    with read_only_folder(tmp_path / "read_only") as folder:
        argv = ["--cfg", TINY, *opts, "OUTPUT_DIR", str(folder / "out"), "DATA.CACHE_DIR", str(fresh_cache)]
        err = error_line(train.main, argv, capsys)
        assert err == (
            f"OUTPUT_DIR {folder}/out/tiny: {folder} is not writable (read-only disk or no permission); "
            "choose a folder you can write to, or change its permissions"
        )
        assert list(folder.iterdir()) == [] and not fresh_cache.exists()


def test_a_latest_that_is_a_real_folder_is_refused_and_nothing_is_made(opts, output, tmp_path, capsys):
    latest = output / "tiny" / "latest"
    latest.mkdir(parents=True)
    (latest / "notes.txt").write_text("mine")
    fresh_cache = tmp_path / "cache"
    err = error_line(train.main, ["--cfg", TINY, *opts, "DATA.CACHE_DIR", str(fresh_cache)], capsys)
    assert err == (
        f"{latest} is a real folder, but runs keep a link to the newest run there: move or rename it, "
        "then start again"
    )
    assert [p.name for p in (output / "tiny").iterdir()] == ["latest"]  # no run folder, no stray link
    assert [p.name for p in latest.iterdir()] == ["notes.txt"] and not fresh_cache.exists()


def test_a_full_disk_is_named_and_leaves_no_temporary(opts, tmp_path, capsys):
    """A tmpfs large enough for the run's config and logs but not for its first checkpoint (1 MB)."""
    with mounted_tmpfs(tmp_path / "small", "size=256k") as disk:
        argv = ["--cfg", TINY, *opts, "OUTPUT_DIR", str(disk), "TRAIN.STOP_AFTER_ITERS", "1"]
        err = error_line(train.main, argv, capsys)
        run_dir = (disk / "tiny" / "latest").resolve()
        assert re.fullmatch(
            re.escape(f"disk full: no space left on the device writing {run_dir / 'last.pth'} (")
            + r"\d+\.\d MB free\); nothing was written there and earlier checkpoints are intact: free "
            r"space on that disk, then continue with --resume auto \(or start anew if the run had no "
            r"checkpoint yet\)",
            err,
        ), err
        assert not (run_dir / "last.pth").exists() and not list(run_dir.glob(TEMPORARIES))


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    """The same without a small disk: torch.save fails as it does there (its writer's OSError ENOSPC
    becomes a RuntimeError 'unexpected pos')."""
    path = tmp_path / "last.pth"
    save_checkpoint({"step": 1}, path)

    def full_disk(payload, f):
        f.write(b"partial")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:  # chained as the __context__, as torch's writer does
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 7 vs 5") from None

    monkeypatch.setattr(torch, "save", full_disk)
    message = re.escape(f"disk full: no space left on the device writing {path} (")
    with pytest.raises(DiskFullError, match=message):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


# ------------------------------------------------------------------------------------------------------
# Resume
# ------------------------------------------------------------------------------------------------------
def test_resuming_a_truncated_or_weights_only_file_outside_a_run_folder_says_what_is_wrong(
    opts, output, tmp_path, capsys
):
    loose = tmp_path / "downloads"
    loose.mkdir()
    torch.save({"model": {"w": torch.zeros(64, 64)}}, loose / "weights.pth")
    (loose / "cut.pth").write_bytes((loose / "weights.pth").read_bytes()[:1000])
    err = error_line(train.main, ["--cfg", TINY, "--resume", str(loose / "cut.pth"), *opts], capsys)
    assert err.startswith(
        f"cannot read checkpoint {loose / 'cut.pth'}: the file (1000 bytes) is truncated, corrupt or not a "
        "PyTorch checkpoint ("
    )
    assert err.endswith("); use a complete checkpoint, e.g. a run's last.pth or best.pth")
    err = error_line(train.main, ["--cfg", TINY, "--resume", str(loose / "weights.pth"), *opts], capsys)
    assert err == (
        f"{loose / 'weights.pth'} is not a resumable training checkpoint (missing ['optimizer', 'scheduler', "
        "'epoch', 'epoch_step', 'iteration', 'rng', 'config']); to start from its weights only, use it as "
        "MODEL.POSE_CHECKPOINT or EVAL.CHECKPOINT instead"
    )
    assert not output.exists() and sorted(p.name for p in loose.iterdir()) == ["cut.pth", "weights.pth"]


# ------------------------------------------------------------------------------------------------------
# Evaluation and the demo
# ------------------------------------------------------------------------------------------------------
def save_untrained(cfg_path: str, opts: list[str], path: Path) -> Path:
    """The untrained network of a config saved as our checkpoints are (weights and config)."""
    cfg = get_cfg(cfg_path, [*opts, "DEVICE", "cpu"])
    torch.manual_seed(0)
    model = build_model(cfg, build_body_assets(cfg).coarse_mesh)
    torch.save({"model": model.state_dict(), "config": cfg.dump()}, path)
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint(synthetic_body_dir, tmp_path_factory) -> Path:
    """configs/tiny.yaml's (stage 1) network."""
    return save_untrained(TINY, body_cfg_opts(synthetic_body_dir), tmp_path_factory.mktemp("model") / "t.pth")


@pytest.fixture(scope="module")
def tiny_mesh_checkpoint(synthetic_body_dir, tmp_path_factory) -> Path:
    """configs/tiny.yaml's network in stage 2, for the demo."""
    opts = [*body_cfg_opts(synthetic_body_dir), *config_overrides(TINY_CONFIG, ("MODEL",))]
    path = tmp_path_factory.mktemp("model") / "mesh.pth"
    return save_untrained("configs/synthetic_mesh.yaml", [*opts, "MODEL.POSE_CHECKPOINT", ""], path)


def test_a_failed_evaluation_leaves_no_folder_no_partial_files_and_keeps_latest(
    opts, output, tiny_checkpoint, tiny_synthetic_data, tmp_path, capsys
):
    """The first dataset is scored, the second fails on a truncated file: nothing of the run is kept,
    neither before any evaluation succeeded nor after."""
    argv = ["--cfg", TINY, "--checkpoint", str(tiny_checkpoint), *opts]
    name = "3DPW_test_joint_coco_cam.json"
    copy, path = broken_copy(tiny_synthetic_data[0], tmp_path, name, lambda b: b[:3000])
    two = ["DATA.TEST_LIST", "['synthetic', '3dpw']", "DATA.PW3D_DIR", str(copy)]
    message = f"3DPW test COCO-19 camera joints {path} is not valid JSON, truncated or corrupt ("
    assert error_line(eval_script.main, [*argv, *two], capsys).startswith(message)
    assert not output.exists()
    assert run_main(eval_script.main, argv) == 0
    evals = output / "tiny" / "eval"
    before, latest = sorted(p.name for p in evals.iterdir()), os.readlink(evals / "latest")
    assert error_line(eval_script.main, [*argv, *two], capsys).startswith(message)
    assert sorted(p.name for p in evals.iterdir()) == before and os.readlink(evals / "latest") == latest


def test_a_full_disk_during_evaluation_keeps_nothing(opts, tiny_checkpoint, tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "small", "size=64k") as disk:
        argv = ["--cfg", TINY, "--checkpoint", str(tiny_checkpoint), *opts, "OUTPUT_DIR", str(disk)]
        err = error_line(eval_script.main, argv, capsys)
        assert re.fullmatch(
            r"disk full: no space left on the device writing \S+ \(\d+\.\d MB free\); nothing was kept: "
            "free space there or choose another OUTPUT_DIR, then evaluate again",
            err,
        ), err
        assert list(disk.iterdir()) == []


def test_an_evaluation_without_test_datasets_claims_no_files(opts, output, tiny_checkpoint, capsys):
    argv = ["--cfg", TINY, "--checkpoint", str(tiny_checkpoint), *opts, "DATA.TEST_LIST", "[]"]
    err = error_line(eval_script.main, argv, capsys)
    assert err == "DATA.TEST_LIST is empty: name the datasets to evaluate, e.g. [synthetic]"
    assert not output.exists()


def test_a_demo_out_that_is_a_file_or_not_writable_is_refused_first(tiny_mesh_checkpoint, tmp_path, capsys):
    """The video does not exist: the output folder is checked before the input is even opened."""
    out = tmp_path / "out.mp4"
    out.write_text("the user's file")
    argv = ["--video", str(tmp_path / "missing.mp4"), "--checkpoint", str(tiny_mesh_checkpoint)]
    err = error_line(demo.main, [*argv, "--out", str(out)], capsys)
    assert err == f"--out {out} is a file; pass a folder (it is created if missing)"
    assert out.read_text() == "the user's file"
    with read_only_folder(tmp_path / "read_only") as folder:
        err = error_line(demo.main, [*argv, "--out", str(folder / "demo")], capsys)
        assert err == (
            f"--out {folder / 'demo'}: {folder} is not writable (read-only disk or no permission); choose a "
            "folder you can write to, or change its permissions"
        )
        assert list(folder.iterdir()) == []


# ------------------------------------------------------------------------------------------------------
# Fault injection: SIGKILL during checkpoint writes
# ------------------------------------------------------------------------------------------------------
KILLS = 4


@pytest.mark.slow
def test_kills_during_checkpoint_writes_leave_complete_checkpoints_and_resume_bitwise(opts, output):
    """train.py writes last.pth after every step; each start is killed at a random moment once it has
    begun one to three checkpoint writes, and the next start resumes with --resume auto. Every checkpoint
    on disk always loads, a start removes the temporaries the previous kill left, and the run completed
    that way ends with the same weights and optimiser state as an uninterrupted one."""
    command = [sys.executable, "train.py", "--cfg", TINY]
    common = [*opts, "TRAIN.CHECKPOINT_EVERY_ITERS", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every run: bitwise comparable
    subprocess.run([*command, *common, "EXPERIMENT", "straight"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    experiment, rng = output / "killed", random.Random(0)
    leftovers: set[Path] = set()  # temporaries left by the last kill
    kills = left = 0
    for attempt in range(KILLS):
        resume = ["--resume", "auto"] if attempt else []
        process = subprocess.Popen([*command, *resume, *common, "EXPERIMENT", "killed"], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        # The first start is killed after its first complete write, so that a checkpoint exists to resume.
        kill_at, seen = rng.randint(2, 3) if attempt == 0 else rng.randint(1, 3), set()
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            seen |= set(temporaries(experiment)) - leftovers  # this start's writes
            if len(seen) >= kill_at:
                time.sleep(rng.uniform(0.0, 0.004))  # anywhere in the write (or just after it)
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.0005)
        _, stderr = process.communicate(timeout=60)
        if process.returncode == 0:  # finished before a kill: nothing more to interrupt
            break
        assert process.returncode == -signal.SIGKILL, stderr.decode()
        kills += 1
        run_dir = (experiment / "latest").resolve()
        for path in run_dir.glob("[!.]*.pth"):  # last.pth, best.pth (not the temporaries)
            load_checkpoint(path)  # complete: a truncated checkpoint raises
        now = set(temporaries(experiment))
        assert not now & leftovers, "a start left the temporaries of the previous kill"
        leftovers, left = now, left + len(now)
    assert kills >= 3 and left >= 1  # killed again and again, at least once in the middle of a write
    subprocess.run([*command, "--resume", "auto", *common, "EXPERIMENT", "killed"], cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    assert temporaries(experiment) == []
    resumed = load_checkpoint((experiment / "latest" / "last.pth").resolve())
    straight = load_checkpoint((output / "straight" / "latest" / "last.pth").resolve())
    assert resumed["iteration"] == straight["iteration"] and resumed["epoch"] == straight["epoch"]
    assert all(torch.equal(resumed["model"][k], v) for k, v in straight["model"].items())
    for ours, theirs in zip(resumed["optimizer"]["state"].values(), straight["optimizer"]["state"].values(),
                            strict=True):  # fmt: skip
        assert torch.equal(ours["exp_avg"], theirs["exp_avg"])
        assert torch.equal(ours["exp_avg_sq"], theirs["exp_avg_sq"])


def test_a_gpu_asked_for_on_a_machine_without_one_is_a_user_error():
    from lib.device import DeviceError, resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="'cuda' was asked for but CUDA is not available: use DEVICE cpu"):
        resolve_device("cuda")
