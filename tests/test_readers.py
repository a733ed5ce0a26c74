"""3DPW through build_dataset: item contract, units, normalisation, gaps, detectors, features, mesh cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from lib.data.build import build_dataset
from lib.data.frames import DataFileError, DataMismatchError, NonFiniteDataError, load_feature_json
from lib.data.video_dataset import DetectorError
from tests.reader_files import LinearBody, cfg, regressors, write_json, write_pw3d


def _item_for(ds, seq, pid, frame):
    for i in range(len(ds)):
        item = ds[i]
        if item["video"] == f"{seq}_{pid}" and item["frame"] == frame:
            return item
    raise AssertionError(f"no window targets {seq} {pid} {frame}")


def _eq5(xy, w, h):
    return np.stack([xy[:, 0] / w * 2 - 1, xy[:, 1] / w * 2 - h / w], axis=-1)


@pytest.fixture
def pw3d(tmp_path):
    truth = write_pw3d(tmp_path / "pw3d")
    return tmp_path, truth, LinearBody(), regressors()


def test_item_contract_units_and_normalisation(pw3d):
    tmp_path, truth, body, regs = pw3d
    ds = build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    assert len(ds) == 9  # stride 1: every frame is a target once
    item = _item_for(ds, "courtyard", 0, 1)
    assert item["pose2d"].shape == (4, 19, 2) and item["pose2d_conf"].shape == (4, 19)
    assert item["img_feat"].shape == (4, 2048) and item["mesh"].shape == (6890, 3)
    assert item["pose3d"].shape == (19, 3) and item["pose3d_h36m"].shape == (17, 3)
    assert item["pose3d_valid"].shape == (19,) and item["pose3d_h36m_valid"].shape == (17,)
    assert item["mesh_valid"] == 1 and item["pose3d_valid"].all() and item["pose3d_h36m_valid"].all()
    t = truth[("courtyard", 0, 1)]
    w, h = t["size"]
    expected = _eq5(t["j2d"][:17], w, h)
    pelvis = (expected[11] + expected[12]) / 2
    neck = (expected[5] + expected[6]) / 2
    target = item["pose2d"][2].double().numpy()  # target position T // 2 = 2
    np.testing.assert_allclose(target, np.concatenate([expected, [pelvis], [neck]]), atol=1e-5)
    assert item["image_size"].tolist() == [1080.0, 1920.0]
    root = t["h3d"][0] / 1000.0  # metres
    np.testing.assert_allclose(item["pose3d_h36m"].numpy(), t["h3d"] / 1000.0 - root, atol=1e-5)
    np.testing.assert_allclose(item["pose3d"].numpy(), t["c3d"] / 1000.0 - root, atol=1e-5)
    assert torch.all(item["pose3d_h36m"][0] == 0)
    smpl = t["smpl"]
    verts = body.numpy(smpl["pose"], smpl["shape"], smpl["trans"], "male")
    np.testing.assert_allclose(item["mesh"].numpy(), verts - root, atol=1e-4)


def test_frame_gap_splits_the_video(pw3d):
    tmp_path, _, body, regs = pw3d
    ds = build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    frames = ds.table.frame
    for w in range(len(ds)):
        window = frames[ds.windows.indices[w]]
        video = ds.table.video[ds.windows.indices[w]]
        if video[0] == "courtyard_0":
            assert (window <= 2).all() or (window >= 4).all(), window  # never straddles the missing frame 3
    courtyard = ds.windows.segment[ds.windows.video == list(ds.windows.video_names).index("courtyard_0")]
    assert set(courtyard.tolist()) == {0, 1}


def test_features_follow_their_keys(pw3d):
    tmp_path, _, body, regs = pw3d
    feats = json.loads((tmp_path / "pw3d" / "3DPW_test_img_feat.json").read_text())
    ds = build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    item = _item_for(ds, "outdoors", 1, 1)
    np.testing.assert_allclose(item["img_feat"][2].numpy(), feats["outdoors_1_1"], atol=1e-6)


def test_missing_feature_is_a_loud_error_or_dropped(pw3d):
    tmp_path, _, body, regs = pw3d
    path = tmp_path / "pw3d" / "3DPW_test_img_feat.json"
    feats = json.loads(path.read_text())
    del feats["outdoors_1_2"]
    write_json(path, feats)
    with pytest.raises(DataMismatchError, match=r"1 of 9 keys.*outdoors_1_2"):
        build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    ds = build_dataset(cfg(tmp_path, "DATA.MISSING_FEATURES", "drop"), "3dpw", "test", body, regs)
    assert len(ds) == 8


def test_missing_file_names_path_and_file(pw3d):
    tmp_path, _, body, regs = pw3d
    with pytest.raises(
        DataFileError, match=r"3DPW val annotations not found: .*3DPW_latest_validation\.json"
    ):
        build_dataset(cfg(tmp_path), "3dpw", "val", body, regs)


def test_validation_split_reads_the_official_validation_files(tmp_path):
    write_pw3d(tmp_path / "pw3d", split_file="validation")
    ds = build_dataset(cfg(tmp_path), "3dpw", "val", LinearBody(), regressors())
    assert len(ds) == 9


def test_named_detector_and_unknown_detector(pw3d):
    tmp_path, truth, body, regs = pw3d
    ds = build_dataset(cfg(tmp_path, "DATA.DETECTORS", "['3dpw=vitpose']"), "3dpw", "test", body, regs)
    item = _item_for(ds, "outdoors", 1, 0)
    t = truth[("outdoors", 1, 0)]
    np.testing.assert_allclose(item["pose2d"][2, :17].numpy(), _eq5(t["det"][:, :2], *t["size"]), atol=1e-5)
    np.testing.assert_allclose(item["pose2d_conf"][2].numpy(), 0.9, atol=1e-6)
    with pytest.raises(DetectorError, match=r"unknown detector 'hrnet'.*'gt', 'gt_noise', 'vitpose'"):
        build_dataset(cfg(tmp_path, "DATA.DETECTOR", "hrnet"), "3dpw", "test", body, regs)


def test_user_detection_file_in_coco_result_format(pw3d):
    tmp_path, _, body, regs = pw3d
    coco = json.loads((tmp_path / "pw3d" / "3DPW_latest_test.json").read_text())
    results = [
        {"image_id": img["id"], "keypoints": [float(img["id"])] * 51, "score": 1.0} for img in coco["images"]
    ]
    write_json(tmp_path / "mine.json", results)
    opts = ("DATA.DETECTOR", "mine", "DATA.DETECTION_FILES", f"['3dpw:test:mine:{tmp_path / 'mine.json'}']")
    ds = build_dataset(cfg(tmp_path, *opts), "3dpw", "test", body, regs)
    row = int(ds.windows.target[0])
    assert ds.table.detections["mine"].xy[row, 0, 0] == ds.table.image_id[row]


def test_gt_noise_is_redrawn_per_epoch_and_reproducible(pw3d):
    tmp_path, _, body, regs = pw3d
    clean = build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)[3]["pose2d"]
    opts = ("DATA.DETECTOR", "gt_noise", "DATA.EVAL_NOISE", "window")
    noisy = build_dataset(cfg(tmp_path, *opts), "3dpw", "test", body, regs)
    first = noisy[3]["pose2d"]
    assert not torch.allclose(first, clean)
    assert torch.equal(first, noisy[3]["pose2d"])
    noisy.set_epoch(1)
    assert not torch.equal(first, noisy[3]["pose2d"])


def test_evaluation_noise_is_drawn_once_per_video(pw3d):
    """Every window sees the same noisy frame, as with a real detector's output."""
    tmp_path, _, body, regs = pw3d
    ds = build_dataset(cfg(tmp_path, "DATA.DETECTOR", "gt_noise"), "3dpw", "test", body, regs)
    clean = build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    a, b = ds.windows.indices[3], ds.windows.indices[4]
    shared = sorted(set(a) & set(b))
    assert shared, "consecutive windows overlap"
    ia, ib = [list(a).index(r) for r in shared], [list(b).index(r) for r in shared]
    assert torch.equal(ds[3]["pose2d"][ia], ds[4]["pose2d"][ib])
    assert not torch.allclose(ds[3]["pose2d"], clean[3]["pose2d"])
    ds.set_epoch(1)
    assert torch.equal(ds[3]["pose2d"][ia], ds[4]["pose2d"][ib])


def test_training_noise_per_video_is_shared_by_windows_and_redrawn_per_epoch(pw3d):
    """DATA.TRAIN_NOISE video: consecutive training windows see the same noisy frames (as at test time,
    for the acceleration loss), and the next epoch draws new noise."""
    tmp_path, _, body, regs = pw3d
    write_pw3d(tmp_path / "pw3d", split_file="train")
    opts = ("DATA.DETECTOR", "gt_noise", "DATA.TRAIN_NOISE", "video")
    ds = build_dataset(cfg(tmp_path, *opts), "3dpw", "train", body, regs)
    a, b = ds.windows.indices[3], ds.windows.indices[4]
    shared = sorted(set(a) & set(b))
    ia, ib = [list(a).index(r) for r in shared], [list(b).index(r) for r in shared]
    first = ds[3]["pose2d"]
    assert torch.equal(first[ia], ds[4]["pose2d"][ib])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[3]["pose2d"])
    assert torch.equal(ds[3]["pose2d"][ia], ds[4]["pose2d"][ib])


def test_mesh_cache_is_reused_and_keyed_on_the_parameters(pw3d):
    tmp_path, _, body, regs = pw3d
    build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    calls = body.calls
    assert calls == 2  # one batch per gender
    build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    assert body.calls == calls  # served from the cache
    other = LinearBody(identity="another-body")
    build_dataset(cfg(tmp_path), "3dpw", "test", other, regs)
    assert other.calls == 2  # a different body model is a different key
    path = tmp_path / "pw3d" / "3DPW_latest_test.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["smpl_param"]["trans"] = [0.0, 0.0, 3.0]
    write_json(path, coco)
    build_dataset(cfg(tmp_path), "3dpw", "test", body, regs)
    assert body.calls == calls + 2
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_unknown_dataset_and_split(pw3d):
    tmp_path, _, body, regs = pw3d
    with pytest.raises(ValueError, match="unknown dataset 'pw3d'"):
        build_dataset(cfg(tmp_path), "pw3d", "test", body, regs)
    with pytest.raises(ValueError, match="3dpw has no split 'dev'"):
        build_dataset(cfg(tmp_path), "3dpw", "dev", body, regs)


def test_float16_mesh_cache(pw3d):
    tmp_path, _, body, regs = pw3d
    ds = build_dataset(cfg(tmp_path, "DATA.MESH_CACHE_DTYPE", "float16"), "3dpw", "test", body, regs)
    assert ds.meshes.dtype == np.float16 and ds.meshes.shape == (9, 6890, 3)
    assert ds[0]["mesh"].dtype == torch.float32


def test_feature_json_cache(tmp_path):
    """The parsed feature file is cached by path, size and mtime: a second read skips the JSON, an edited
    file is parsed again, and no cache folder means no cache."""
    path, cache = tmp_path / "feat.json", tmp_path / "cache"
    path.write_text(json.dumps({"a_0_1": [0.5, 1.0], "a_0_2": [0.25, 0.0]}))
    keys, rows = load_feature_json(path, "features", cache)
    assert (
        keys == ["a_0_1", "a_0_2"] and rows.dtype == np.float32 and rows.tolist() == [[0.5, 1.0], [0.25, 0.0]]
    )
    (cached,) = cache.iterdir()
    again_keys, again_rows = load_feature_json(path, "features", cache)
    assert again_keys == keys and np.array_equal(again_rows, rows)
    path.write_text(json.dumps({"b_0_1": [2.0, 3.0, 4.0]}))
    os.utime(path, ns=(cached.stat().st_mtime_ns + 10**9,) * 2)
    assert load_feature_json(path, "features", cache)[0] == ["b_0_1"]
    assert len(list(cache.iterdir())) == 2
    assert load_feature_json(path, "features", None)[1].shape == (1, 3)


@pytest.mark.parametrize(
    ("file", "what", "video", "frame", "detector"),
    [
        ("3DPW_test_img_feat.json", "image features", "outdoors_1", 2, "gt"),
        ("3DPW_test_joint_h36m_cam.json", "3D joints h36m17", "courtyard_0", 4, "gt"),
        ("3DPW_test_gt_joint_coco_img.json", "ground-truth 2D keypoints coco17", "courtyard_0", 4, "gt"),
        ("vitpose_3dpw_test_output.json", "2D detections vitpose", "outdoors_1", 2, "vitpose"),
    ],
)
def test_nan_or_inf_in_a_file_names_the_file_video_and_frame(pw3d, file, what, video, frame, detector):
    tmp_path, _, body, regs = pw3d
    path = tmp_path / "pw3d" / file
    data = json.loads(path.read_text())
    if file.endswith("img_feat.json"):
        data[f"{video}_{frame}"][7] = float("nan")
    elif file.startswith("vitpose"):
        data[-1]["keypoints"][4] = float("inf")  # the last entry: outdoors person 1, frame 2
    else:
        data["courtyard"][str(frame)]["0"][3][1] = float("-inf")
    write_json(path, data)
    with pytest.raises(NonFiniteDataError) as err:
        build_dataset(cfg(tmp_path, "DATA.DETECTOR", detector), "3dpw", "test", body, regs)
    assert str(err.value) == (
        f"{path}: NaN or inf in the {what} of 1 3dpw frames; first: video {video!r}, frame {frame}"
    )
    assert not list((tmp_path / "cache").glob("meshes_*"))  # stopped before any mesh was made
