"""Official data semantics on files in the published formats: COCO's fit input and fit check, the
MPI-INF-3DHP noisy-input check, Human3.6M's NeuralAnnot noisy 2D, per-dataset strides, detection paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.config import ConfigError, get_cfg
from lib.data.build import build_dataset, dataset_stride
from lib.data.datasets.common import mean_shape_if_extreme
from lib.data.fit_check import box_errors, within
from lib.data.frames import DataMismatchError
from lib.data.video_dataset import DetectorError
from tests.reader_files import (
    MPII3D_TRAIN_OFF,
    LinearBody,
    body_vertices,
    cfg,
    coco_fit_2d,
    regressors,
    write_coco,
    write_h36m,
    write_json,
    write_mpii3d_test,
    write_mpii3d_train,
)


def _eq5(xy, w, h):
    return np.stack([xy[:, 0] / w * 2 - 1, xy[:, 1] / w * 2 - h / w], axis=-1)


def _by_target(ds, column):
    """{value of ``column`` at the window's target: item}."""
    return {int(getattr(ds.table, column)[ds.windows.target[i]]): ds[i] for i in range(len(ds))}


def _by_frame(ds):
    return {(ds[i]["video"], ds[i]["frame"]): ds[i] for i in range(len(ds))}


def _no_targets(item) -> bool:
    return (
        item["mesh_valid"] == 0 and item["pose3d_valid"].sum() == 0 and item["pose3d_h36m_valid"].sum() == 0
    )


def _all_targets(item) -> bool:
    return item["mesh_valid"] == 1 and item["pose3d_valid"].all() and item["pose3d_h36m_valid"].all()


# ------------------------------------------------------------------------------------------------------
# The 64x64-box check and the shape reset
# ------------------------------------------------------------------------------------------------------
def test_box_error_is_measured_in_a_64_box_around_the_person():
    box = np.array([[[0.0, 0.0], [101.0, 40.0]]])  # larger side 101 px: 100 after the inclusive-pixel -1
    reference = np.zeros((1, 3, 2))
    points = np.array([[[10.0, 0.0], [0.0, 20.0], [500.0, 0.0]]])
    valid = np.array([[True, True, False]])  # the unlabelled third joint does not count
    np.testing.assert_allclose(box_errors(points, reference, valid, box), [15 * 64 / 100])
    assert box_errors(points, reference, valid, np.zeros((1, 2, 2)))[0] == np.inf  # no person size
    errors = np.array([2.9, 3.0, 3.1, np.inf])
    assert within(errors, 3.0).tolist() == [True, True, False, False]
    assert within(errors, 0.0).all() and within(errors, -1.0).all()  # <= 0 disables the check


def test_extreme_shapes_become_the_mean_shape():
    betas = np.array([[0.5] * 10, [0.1] * 9 + [-3.2]], dtype=np.float32)
    out = mean_shape_if_extreme(betas)
    np.testing.assert_array_equal(out[0], betas[0])
    assert not out[1].any()


# ------------------------------------------------------------------------------------------------------
# COCO: the SMPLify fit's weak-perspective projection as input, and its check against the keypoints
# ------------------------------------------------------------------------------------------------------
@pytest.fixture
def coco(tmp_path):
    body, regs = LinearBody(), regressors()
    anns, fits = write_coco(tmp_path / "coco", body, regs["coco17"])
    return tmp_path, anns, fits, body, regs


def test_coco_fit_input_is_the_weak_perspective_projection(coco):
    tmp_path, anns, fits, body, regs = coco
    opts = ("DATA.VAL_FRACTION", "0.0", "DATA.DETECTORS", "['coco=fit']")
    items = _by_target(build_dataset(cfg(tmp_path, *opts), "coco", "train", body, regs), "ann_id")
    fit = coco_fit_2d(body, regs["coco17"], fits["11"]["smpl_param"])  # s * metres + t, full-image pixels
    np.testing.assert_allclose(items[11]["pose2d"][0, :17].numpy(), _eq5(fit, 640, 480), atol=1e-4)
    assert items[11]["pose2d_conf"].all()  # the fit has every joint, labelled or not
    assert not np.allclose(np.asarray(anns["11"]["keypoints"]).reshape(17, 3)[:, :2], fit)  # not the GT
    param = fits["10"]["smpl_param"]  # |beta| > 3: the target is the mean-shape body, like the input
    verts = body_vertices(body, param["pose"], np.zeros(10), np.zeros(3))
    root = regs["h36m17"].numpy()[0] @ verts
    np.testing.assert_allclose(items[10]["mesh"].numpy(), verts - root, atol=1e-4)


def test_coco_fit_noise_is_redrawn_and_gt_stays_the_keypoints(coco):
    tmp_path, anns, _, body, regs = coco
    clean = build_dataset(cfg(tmp_path, "DATA.DETECTOR", "fit"), "coco", "train", body, regs)
    noisy = build_dataset(cfg(tmp_path, "DATA.DETECTOR", "fit_noise"), "coco", "train", body, regs)
    first = noisy[0]["pose2d"]
    assert not torch.allclose(first, clean[0]["pose2d"])
    noisy.set_epoch(1)
    assert not torch.equal(first, noisy[0]["pose2d"])
    gt = _by_target(
        build_dataset(cfg(tmp_path, "DATA.VAL_FRACTION", "0.0"), "coco", "train", body, regs), "ann_id"
    )
    keypoints = np.asarray(anns["15"]["keypoints"]).reshape(17, 3)[:, :2]
    np.testing.assert_allclose(gt[15]["pose2d"][0, :17].numpy(), _eq5(keypoints, 640, 480), atol=1e-5)


def test_coco_fit_check_drops_every_target_of_a_disagreeing_fit(coco):
    tmp_path, _, _, body, regs = coco
    items = _by_target(
        build_dataset(cfg(tmp_path, "DATA.VAL_FRACTION", "0.0"), "coco", "train", body, regs), "ann_id"
    )
    assert _no_targets(items[16])  # keypoints 30 px from the fit's projection
    assert _all_targets(items[15]) and _all_targets(items[11])  # 1 px off; 11 has an unlabelled joint
    for threshold in ("0.0", "100.0"):
        opts = ("DATA.VAL_FRACTION", "0.0", "DATA.FIT_ERROR_MAX", threshold)
        items = _by_target(build_dataset(cfg(tmp_path, *opts), "coco", "train", body, regs), "ann_id")
        assert _all_targets(items[16])


def test_coco_fit_needs_the_coco_regressor(coco):
    tmp_path, _, _, body, regs = coco
    with pytest.raises(ValueError, match="'coco17' regressor"):
        build_dataset(cfg(tmp_path), "coco", "train", body, {"h36m17": regs["h36m17"]})


# ------------------------------------------------------------------------------------------------------
# MPI-INF-3DHP training: the precomputed noisy 2D input and its check against the ground truth
# ------------------------------------------------------------------------------------------------------
def test_mpi_inf_3dhp_noisy_input_check_and_official_noise(tmp_path):
    truth = write_mpii3d_train(tmp_path / "mpii3d")
    body, regs = LinearBody(), regressors()
    opts = ("DATA.VAL_FRACTION", "0.0", "DATA.DETECTOR", "official_noise")
    items = _by_frame(build_dataset(cfg(tmp_path, *opts), "mpi_inf_3dhp", "train", body, regs))
    subject, frame = MPII3D_TRAIN_OFF
    off = items[(f"S{subject}_Seq1_cam0", frame)]
    assert _no_targets(off)  # noisy 2D 200 px off in a ~2000 px person: > 3.0 in the 64 box; window kept
    assert all(_all_targets(item) for key, item in items.items() if key != (off["video"], frame))
    noisy = truth[(2, 1)]["noise_img"][:17, :2]
    np.testing.assert_allclose(
        items[("S2_Seq1_cam0", 1)]["pose2d"][2, :17].numpy(), _eq5(noisy, 2048, 2048), atol=1e-5
    )
    opts = ("DATA.VAL_FRACTION", "0.0", "DATA.FIT_ERROR_MAX", "-1.0")
    items = _by_frame(build_dataset(cfg(tmp_path, *opts), "mpi_inf_3dhp", "train", body, regs))
    assert _all_targets(items[(f"S{subject}_Seq1_cam0", frame)])


# ------------------------------------------------------------------------------------------------------
# Human3.6M: the NeuralAnnot noisy COCO 2D of the 3DPW (COCO) setting
# ------------------------------------------------------------------------------------------------------
def test_h36m_official_noise_is_the_neuralannot_noisy_2d(tmp_path):
    body, regs = LinearBody(), regressors()
    files = write_h36m(tmp_path / "h36m", body, regs["h36m17"])
    opts = ("DATA.H36M_TEST_SUBJECTS", "[9]", "DATA.DETECTOR", "official_noise")
    ds = build_dataset(cfg(tmp_path, *opts), "h36m", "test", body, regs)
    item = _by_frame(ds)[("s09_act02_subact01_ca01", 1)]  # source frame 2
    truth = files["truth"][2]
    np.testing.assert_allclose(
        item["pose2d"][2, :17].numpy(), _eq5(truth["coco_noise"][:17, :2], 1000, 1002), atol=1e-5
    )
    root = truth["joints_world"][0] @ files["R"].T + files["t"]
    np.testing.assert_allclose(
        item["pose3d"].numpy(), truth["coco_cam"] - root, atol=1e-5
    )  # NeuralAnnot COCO-19
    with pytest.raises(
        DetectorError, match=r"'vitpose'; available: \['gt', 'gt_noise', 'cpn', 'official_noise'\]"
    ):
        build_dataset(cfg(tmp_path, *opts[:2], "DATA.DETECTOR", "vitpose"), "h36m", "test", body, regs)


# ------------------------------------------------------------------------------------------------------
# Per-dataset training strides
# ------------------------------------------------------------------------------------------------------
def test_per_dataset_stride_applies_to_training_windows_only(tmp_path):
    write_mpii3d_train(tmp_path / "mpii3d")
    write_mpii3d_test(tmp_path / "mpii3d")
    body, regs = LinearBody(), regressors()
    opts = ("DATA.VAL_FRACTION", "0.0", "DATA.STRIDES", "['3dpw=1', 'mpi_inf_3dhp=2']")
    train = build_dataset(cfg(tmp_path, *opts), "mpi_inf_3dhp", "train", body, regs)
    target = train.windows.target
    targets = sorted(zip(train.table.video[target], train.table.frame[target], strict=True))
    assert targets == [("S1_Seq1_cam0", 0), ("S1_Seq1_cam0", 2), ("S2_Seq1_cam0", 0), ("S2_Seq1_cam0", 2)]
    test = build_dataset(cfg(tmp_path, *opts), "mpi_inf_3dhp", "test", body, regs)
    assert len(test) == len(test.table) == 9  # every test frame stays a target


def test_official_strides_of_the_3dpw_setting():
    for stage in ("pose", "mesh"):
        config = get_cfg(f"configs/train_{stage}_3dpw.yaml")
        strides = {name: dataset_stride(config, name, "train") for name in config.DATA.TRAIN_LIST}
        assert strides == {"h36m": 16, "3dpw": 1, "mpi_inf_3dhp": 16, "coco": 1, "mpii": 1}
        assert dataset_stride(config, "h36m", "test") == dataset_stride(config, "mpi_inf_3dhp", "val") == 1


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("['h36=16']", "unknown dataset 'h36'"),
        ("['h36m=0']", "positive integer, got '0'"),
        ("['h36m16']", "entries must be 'dataset=value'"),
        ("['h36m=16', 'h36m=8']", "names 'h36m' twice"),
    ],
)
def test_bad_stride_entries_name_the_key(entries, message):
    with pytest.raises(ConfigError, match=f"DATA.STRIDES.*{message}|{message}.*DATA.STRIDES"):
        dataset_stride(get_cfg(opts=["DATA.STRIDES", entries]), "h36m", "train")


# ------------------------------------------------------------------------------------------------------
# Detections matched on image paths: sequences that share frame names
# ------------------------------------------------------------------------------------------------------
@pytest.fixture
def mpii3d_test(tmp_path):
    write_mpii3d_test(tmp_path / "mpii3d")
    body, regs = LinearBody(), regressors()
    table = build_dataset(cfg(tmp_path), "mpi_inf_3dhp", "test", body, regs).table
    return tmp_path, table, body, regs


def _write_detections(tmp_path, table, name_of, keypoints_of) -> None:
    entries = [
        {"image_name": name_of(str(name)), "keypoints": keypoints_of(i).reshape(-1).tolist(), "score": 1.0}
        for i, name in enumerate(table.image_name)
    ]
    write_json(tmp_path / "mpii3d" / "vitpose_mpii3d_val_output.json", entries)


def test_detections_are_matched_on_the_folder_that_tells_sequences_apart(mpii3d_test):
    tmp_path, table, body, regs = mpii3d_test
    rows = {(v, int(f)): i for i, (v, f) in enumerate(zip(table.video, table.frame, strict=True))}
    gt = table.gt2d["coco17"].xy

    def keypoints(i):  # each entry sits on the ground truth of the other sequence's same frame, if any
        other = rows.get(("TS5" if table.video[i] == "TS1" else "TS1", int(table.frame[i])), i)
        return np.concatenate([gt[other], np.full((17, 1), float(i))], axis=1)

    _write_detections(
        tmp_path, table, lambda n: "/elsewhere/" + n.split("mpi_inf_3dhp_test_set/")[1], keypoints
    )
    ds = build_dataset(cfg(tmp_path, "DATA.DETECTOR", "vitpose"), "mpi_inf_3dhp", "test", body, regs)
    assert ds.table.detections["vitpose"].conf[:, 0].tolist() == list(range(len(table)))  # its own entry


def test_a_path_that_cannot_tell_images_apart_is_an_error(mpii3d_test):
    tmp_path, table, body, regs = mpii3d_test
    path = tmp_path / "mpii3d" / "vitpose_mpii3d_val_output.json"
    detector = cfg(tmp_path, "DATA.DETECTOR", "vitpose")
    renamed = lambda n: n.replace("/TS", "/seq")  # noqa: E731 the sequence folders no longer match the table's
    _write_detections(tmp_path, table, renamed, lambda i: np.ones((17, 3)))
    with pytest.raises(DataMismatchError, match=rf"{path}: image '\S+/TS1/imageSequence/img_000001.jpg' "
                       r"matches 2 entries on the path 'imageSequence/img_000001.jpg'"):  # fmt: skip
        build_dataset(detector, "mpi_inf_3dhp", "test", body, regs)
    without_sequence = lambda n: "/".join(n.split("/")[-2:])  # noqa: E731 'imageSequence/img_000001.jpg'
    _write_detections(tmp_path, table, without_sequence, lambda i: np.ones((17, 3)))
    with pytest.raises(DataMismatchError, match=rf"{path}: entry 'imageSequence/img_000001.jpg' is the only "
                       "match of 2 different images"):  # fmt: skip
        build_dataset(detector, "mpi_inf_3dhp", "test", body, regs)
