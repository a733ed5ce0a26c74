"""The yacs configuration: defaults, YAML inheritance, overrides and clear errors."""

import re
from pathlib import Path

import pytest
from yacs.config import CfgNode

from lib.config import ConfigError, get_cfg, get_cfg_defaults, get_cfg_from_text, save_cfg, target_index

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = get_cfg(path)
    assert cfg.is_frozen()
    assert cfg.EXPERIMENT == path.stem


def test_official_hyper_parameters():
    cfg = get_cfg(CONFIG_DIR / "train_mesh_3dpw.yaml")
    assert (cfg.STAGE, cfg.MODEL.INPUT_JOINT_SET, cfg.TRAIN.LR, cfg.TRAIN.EPOCHS) == (
        "mesh",
        "coco19",
        5e-5,
        20,
    )
    assert list(cfg.TRAIN.LR_STEPS) == [2, 4, 6, 8, 10, 12, 15] and cfg.TRAIN.LR_FACTOR == 0.9
    h36m = get_cfg(CONFIG_DIR / "train_mesh_h36m.yaml")
    assert (h36m.TRAIN.LR, h36m.TRAIN.EDGE_LOSS_START, h36m.MODEL.INPUT_JOINT_SET) == (1e-4, 10, "h36m17")


def test_base_inheritance_and_overrides(tmp_path):
    write(tmp_path / "base.yaml", "STAGE: pose\nTRAIN:\n  LR: 0.1\n  EPOCHS: 3\n")
    child = write(tmp_path / "child.yaml", "_BASE_: base.yaml\nTRAIN:\n  LR: 0.2\n")
    cfg = get_cfg(child, ["TRAIN.EPOCHS", "7", "MODEL.SEQ_LEN", "8"])
    assert (cfg.STAGE, cfg.TRAIN.LR, cfg.TRAIN.EPOCHS, cfg.MODEL.SEQ_LEN) == ("pose", 0.2, 7, 8)
    assert target_index(cfg) == 4


def test_base_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "_BASE_: b.yaml\n")
    write(tmp_path / "b.yaml", "_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        get_cfg(tmp_path / "a.yaml")


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path / "typo.yaml", "TRAIN:\n  LEARNING_RATE: 0.1\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*TRAIN\.LEARNING_RATE"):
        get_cfg(path)
    with pytest.raises(ConfigError, match=r"MODEL\.NOPE"):
        get_cfg(opts=["MODEL.NOPE", "1"])


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match=r"TRAIN\.EPOCHS"):
        get_cfg(opts=["TRAIN.EPOCHS", "many"])


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"MODEL.DECODER.NORM = 'batchnorm' is not one of"):
        get_cfg(opts=["MODEL.DECODER.NORM", "batchnorm"])


@pytest.mark.parametrize(
    "opts, message",
    [
        (["MODEL.SEQ_LEN", "0"], "MODEL.SEQ_LEN"),
        (["MODEL.TARGET_INDEX", "16"], "MODEL.TARGET_INDEX"),
        (["MODEL.POSE_STREAM.HEADS", "5"], "not divisible"),
        (["MODEL.DECODER.USE_IMG_FEAT", "False"], "NORM layernorm"),
        (
            ["MODEL.DECODER.COND_INIT", "zero"],
            "COND_INIT zero does not fit MODEL.DECODER.NORM adaln_official",
        ),
        (["DATA.TRAIN_RATIOS", "[0.5, 0.5]"], "DATA.TRAIN_RATIOS"),
        (["TRAIN.LR"], "odd number"),
    ],
)
def test_inconsistent_values_are_errors(opts, message):
    with pytest.raises(ConfigError, match=message):
        get_cfg(opts=opts)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        get_cfg(tmp_path / "absent.yaml")


def test_frozen_and_saved_config_round_trips(tmp_path):
    cfg = get_cfg(CONFIG_DIR / "synthetic_mesh.yaml", ["TRAIN.LR", "0.003"])
    with pytest.raises(AttributeError):
        cfg.TRAIN.LR = 1.0
    save_cfg(cfg, tmp_path / "run" / "config.yaml")
    assert list((tmp_path / "run").iterdir()) == [tmp_path / "run" / "config.yaml"]  # no temporary left
    reloaded = get_cfg(tmp_path / "run" / "config.yaml")
    assert isinstance(reloaded, CfgNode) and reloaded == cfg


def test_saved_config_text_round_trips_and_ignored_sections_keep_the_defaults():
    saved = get_cfg(opts=["MODEL.SEQ_LEN", "8", "DEMO.SMPL_FIT_ITERS", "100"]).dump()
    cfg = get_cfg_from_text(saved, ["DEMO.BATCH_SIZE", "4"], ignore=["DEMO"])
    assert cfg.MODEL.SEQ_LEN == 8 and cfg.DEMO.BATCH_SIZE == 4
    assert cfg.DEMO.SMPL_FIT_ITERS == get_cfg_defaults().DEMO.SMPL_FIT_ITERS
    assert get_cfg_from_text(saved).DEMO.SMPL_FIT_ITERS == 100
    with pytest.raises(ConfigError, match="checkpoint x: not a valid YAML config"):
        get_cfg_from_text("a: [", source="checkpoint x")


def test_an_int_given_for_a_float_key_becomes_a_float(tmp_path):
    opts = ["TRAIN.LR", "1", "DEMO.FOCAL_LENGTH", "1680", "DATA.TRAIN_RATIOS", "[1]", "TRAIN.EPOCHS", "3"]
    cfg = get_cfg(opts=opts)
    values = (cfg.TRAIN.LR, cfg.DEMO.FOCAL_LENGTH, cfg.DATA.TRAIN_RATIOS[0], cfg.TRAIN.EPOCHS)
    assert values == (1.0, 1680.0, 1.0, 3) and [type(v) for v in values] == [float, float, float, int]
    path = write(
        tmp_path / "ints.yaml", "TRAIN:\n  LR: 1\nDEMO:\n  FOCAL_LENGTH: 1680\nLOSS:\n  EDGE_WEIGHT: 20\n"
    )
    cfg = get_cfg(path)
    assert [type(v) for v in (cfg.TRAIN.LR, cfg.DEMO.FOCAL_LENGTH, cfg.LOSS.EDGE_WEIGHT)] == [float] * 3
    assert get_cfg_from_text("TRAIN:\n  LR: 2\n").TRAIN.LR == 2.0
    assert get_cfg_from_text(cfg.dump()) == cfg  # a saved config reads back unchanged


@pytest.mark.parametrize(("key", "value"), [("TRAIN.EPOCHS", "2.5"), ("TRAIN.LR", "True")])
def test_other_type_mismatches_stay_errors(key, value):
    with pytest.raises(ConfigError, match=rf"command-line overrides: Type mismatch .* {re.escape(key)}"):
        get_cfg(opts=[key, value])


@pytest.mark.parametrize("how", ["--cfg", "_BASE_"])
def test_a_python_config_is_refused_and_never_run(tmp_path, capsys, how):
    import train
    from lib.cli import run_main

    marker = tmp_path / "ran"
    code = write(tmp_path / "evil.py", f"open({str(marker)!r}, 'w').close()\ncfg = {{'SEED': 1}}\n")
    path = code if how == "--cfg" else write(tmp_path / "child.yaml", "_BASE_: evil.py\nSEED: 2\n")
    assert run_main(train.main, ["--cfg", str(path), "OUTPUT_DIR", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: {code}: config files must be YAML (.yaml or .yml); other files are refused "
        "(yacs would run a Python config as code)\n"
    )
    assert not marker.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["evil.py"] + (["child.yaml"] if how == "_BASE_" else [])
    )
