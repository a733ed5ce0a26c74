"""Human3.6M, MPI-INF-3DHP, COCO and MPII through build_dataset, from files in the official formats."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import torch

from lib.data.build import build_dataset
from lib.data.frames import DataMismatchError, holdout_mask, load_joblib, project
from lib.data.video_dataset import DetectorError
from tests.payloads import SYSTEM_GLOBAL, MarkerPayload
from tests.reader_files import (
    LinearBody,
    cfg,
    regressors,
    write_coco,
    write_h36m,
    write_mpii,
    write_mpii3d_test,
    write_mpii3d_train,
)

H36M_OPTS = ("MODEL.INPUT_JOINT_SET", "h36m17", "DATA.H36M_TEST_SUBJECTS", "[9]")


def _by_frame(ds):
    return {(ds[i]["video"], ds[i]["frame"]): ds[i] for i in range(len(ds))}


def test_h36m_camera_frame_targets_fit_check_and_cpn(tmp_path):
    body, regs = LinearBody(), regressors()
    files = write_h36m(tmp_path / "h36m", body, regs["h36m17"])
    ds = build_dataset(cfg(tmp_path, *H36M_OPTS), "h36m", "test", body, regs)
    assert sorted(ds.table.frame.tolist()) == [0, 1, 2, 3, 4]  # every 2nd frame, numbered // 2
    items = _by_frame(ds)
    video = "s09_act02_subact01_ca01"
    rotation, t = files["R"], files["t"]
    item = items[(video, 1)]  # source frame 2
    truth = files["truth"][2]
    joints_cam = truth["joints_world"] @ rotation.T + t
    root = joints_cam[0]
    np.testing.assert_allclose(item["pose3d_h36m"].numpy(), joints_cam - root, atol=1e-5)
    np.testing.assert_allclose(item["pose3d"].numpy(), joints_cam - root, atol=1e-5)  # input set = H36M-17
    verts_cam = truth["verts_world"] @ rotation.T + t
    np.testing.assert_allclose(item["mesh"].numpy(), verts_cam - root, atol=1e-4)
    assert item["mesh_valid"] == 1
    assert items[(video, 2)]["mesh_valid"] == 0  # source frame 4: the fit is > 25 mm off the GT joints
    assert items[(video, 3)]["mesh_valid"] == 0  # source frame 6: no fit
    assert items[(video, 3)]["pose3d_h36m_valid"].all()  # the GT joints are still targets
    assert item["image_size"].tolist() == [1000.0, 1002.0]
    cpn = build_dataset(cfg(tmp_path, *H36M_OPTS, "DATA.DETECTOR", "cpn"), "h36m", "test", body, regs)
    xy = files["truth"][2]["cpn"]
    expected = np.stack([xy[:, 0] / 1000 * 2 - 1, xy[:, 1] / 1000 * 2 - 1002 / 1000], axis=-1)
    np.testing.assert_allclose(_by_frame(cpn)[(video, 1)]["pose2d"][2].numpy(), expected, atol=1e-5)


def test_h36m_features_joined_on_paths_and_gt_2d_projected(tmp_path):
    body, regs = LinearBody(), regressors()
    write_h36m(tmp_path / "h36m", body, regs["h36m17"])
    ds = build_dataset(cfg(tmp_path, *H36M_OPTS), "h36m", "test", body, regs)
    db = joblib.load(tmp_path / "h36m" / "h36m_test_imgfeat_db_concat.pt")
    names = [n.split("/", 1)[1] for n in db["img_name"]]
    for row in range(len(ds.table)):
        feat = ds.table.features[ds.table.feature_row[row]]
        np.testing.assert_array_equal(feat, db["features"][names.index(ds.table.image_name[row])])
    projected = project(ds.table.joints3d["h36m17"], ds.table.camera)
    np.testing.assert_allclose(ds.table.gt2d["h36m17"].xy, projected)


def test_h36m_coco_input_from_ground_truth_2d_is_a_clear_error(tmp_path):
    body, regs = LinearBody(), {"h36m17": regressors()["h36m17"]}
    write_h36m(tmp_path / "h36m", body, regs["h36m17"])
    with pytest.raises(DetectorError, match=r"needs ground-truth 2D in coco17.*\['h36m17'\]"):
        build_dataset(cfg(tmp_path, "DATA.H36M_TEST_SUBJECTS", "[9]"), "h36m", "test", body, regs)


def test_mpi_inf_3dhp_test_real_image_size_and_valid_flags(tmp_path):
    db = write_mpii3d_test(tmp_path / "mpii3d")
    body, regs = LinearBody(), regressors()
    ds = build_dataset(cfg(tmp_path, *H36M_OPTS), "mpi_inf_3dhp", "test", body, regs)
    items = _by_frame(ds)
    ts5 = items[("TS5", 1)]
    assert ts5["image_size"].tolist() == [1920.0, 1080.0]
    assert items[("TS1", 1)]["image_size"].tolist() == [2048.0, 2048.0]
    xy = db["joints2D"][6, 39, :2]  # TS5 frame 1, pelvis (SPIN row 39)
    np.testing.assert_allclose(
        ts5["pose2d"][2, 0].numpy(), [xy[0] / 1920 * 2 - 1, xy[1] / 1920 * 2 - 1080 / 1920], atol=1e-5
    )
    invalid = items[("TS1", 2)]  # valid_i = 0: flagged, its annotation kept for the official protocol
    assert not invalid["frame_valid"] and invalid["pose3d_h36m_valid"].all()
    assert items[("TS1", 1)]["frame_valid"] and items[("TS1", 1)]["pose3d_h36m_valid"].all()
    assert all(item["mesh_valid"] == 0 for item in items.values())  # no meshes for the test set
    j3d = db["joints3D"][0]
    np.testing.assert_allclose(
        items[("TS1", 0)]["pose3d_h36m"][10].numpy(), j3d[38] - j3d[39], atol=1e-6
    )  # head
    vit = build_dataset(cfg(tmp_path, "DATA.DETECTOR", "vitpose"), "mpi_inf_3dhp", "test", body, regs)
    assert vit[0]["pose2d"].shape == (4, 19, 2)


def test_mpi_inf_3dhp_train_val_holdout_and_world_to_camera(tmp_path):
    truth = write_mpii3d_train(tmp_path / "mpii3d")
    body, regs = LinearBody(), regressors()
    opts = ("DATA.VAL_FRACTION", "0.5")
    train = build_dataset(cfg(tmp_path, *opts), "mpi_inf_3dhp", "train", body, regs)
    val = build_dataset(cfg(tmp_path, *opts), "mpi_inf_3dhp", "val", body, regs)
    train_videos, val_videos = set(train.table.video), set(val.table.video)
    assert not train_videos & val_videos
    assert train_videos | val_videos == {"S1_Seq1_cam0", "S2_Seq1_cam0"}
    assert len(train) + len(val) == 8
    item = train[0]
    assert item["mesh_valid"] == 1 and item["pose2d"].shape == (4, 19, 2)
    subject = int(item["video"].split("_")[0][1:])  # 'S<subject>_Seq1_cam0'
    joints = truth[(subject, item["frame"])]
    expected = (joints["coco_cam"] - joints["h36m_cam"][0]) / 1000.0  # COCO-19 targets from the joint file, m
    np.testing.assert_allclose(item["pose3d"].numpy(), expected, atol=1e-5)


def test_coco_static_repeated_filters_and_fit_targets(tmp_path):
    body, regs = LinearBody(), regressors()
    anns, _ = write_coco(tmp_path / "coco", body, regs["coco17"])
    ds = build_dataset(cfg(tmp_path, "DATA.VAL_FRACTION", "0.0"), "coco", "train", body, regs)
    assert sorted(ds.table.ann_id.tolist()) == [10, 11, 15, 16]  # crowd, zero-width box, no fit: skipped
    items = {int(ds.table.ann_id[ds.windows.target[i]]): ds[i] for i in range(len(ds))}
    item = items[11]
    assert torch.equal(item["pose2d"], item["pose2d"][:1].expand(4, -1, -1))  # repeated over T
    assert torch.equal(item["img_feat"], item["img_feat"][:1].expand(4, -1))
    assert item["pose2d_conf"][0, 3] == 0 and item["pose2d_conf"][0, 0] == 1  # unlabelled joint
    kps = np.asarray(anns["11"]["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(
        item["pose2d"][0, 0].numpy(), [kps[0, 0] / 640 * 2 - 1, kps[0, 1] / 640 * 2 - 0.75], atol=1e-5
    )
    assert item["mesh_valid"] == 1 and item["pose3d_valid"].all() and item["pose3d_h36m"][0].abs().sum() == 0
    noisy = build_dataset(
        cfg(tmp_path, "DATA.VAL_FRACTION", "0.0", "DATA.DETECTOR", "gt_noise"), "coco", "train", body, regs
    )
    assert noisy[0]["pose2d"].shape == (4, 19, 2)
    with pytest.raises(ValueError, match="coco has no split 'test'"):
        build_dataset(cfg(tmp_path), "coco", "test", body, regs)


def test_mpii_2d_is_the_projected_fit(tmp_path):
    fits = write_mpii(tmp_path / "mpii")
    body, regs = LinearBody(), regressors()
    ds = build_dataset(cfg(tmp_path, "DATA.VAL_FRACTION", "0.0"), "mpii", "train", body, regs)
    assert sorted(ds.table.ann_id.tolist()) == [20, 21, 22]  # 23 has no fit
    row = int(ds.windows.target[0])
    fit = fits[str(int(ds.table.ann_id[row]))]
    smpl = fit["smpl_param"]
    joints = regs["coco17"].numpy() @ body.numpy(smpl["pose"], smpl["shape"], smpl["trans"])
    cam = np.array([[*fit["cam_param"]["focal"], *fit["cam_param"]["princpt"]]])
    xy = project(joints[None], cam)[0]
    expected = np.stack([xy[:, 0] / 1280 * 2 - 1, xy[:, 1] / 1280 * 2 - 720 / 1280], axis=-1)
    np.testing.assert_allclose(ds[0]["pose2d"][1, :17].numpy(), expected, atol=1e-4)
    with pytest.raises(DetectorError, match="coco17"):
        build_dataset(cfg(tmp_path), "mpii", "train", body, {"h36m17": regs["h36m17"]})


def test_holdout_is_deterministic_and_whole_videos():
    videos = np.array([f"v{i // 3}" for i in range(300)])
    mask = holdout_mask(videos, 0.2, "x")
    assert np.array_equal(mask, holdout_mask(videos[::-1], 0.2, "x")[::-1])
    for v in np.unique(videos):
        assert len(set(mask[videos == v].tolist())) == 1
    assert 0.05 < mask.mean() < 0.4


def test_joblib_databases_load_arrays_and_refuse_code(tmp_path):
    names = np.array(["S1/Seq1/video_0/000001.jpg", "S1/Seq1/video_0/000002.jpg"])
    db = {"features": np.ones((2, 4), np.float32), "img_name": names, "aid": [np.int64(3), 4],
          "tags": np.array(["a", None], dtype=object), "valid_i": {1, 2}}  # fmt: skip
    joblib.dump(db, tmp_path / "good.pt")
    loaded = load_joblib(tmp_path / "good.pt", "test DB", ("features", "img_name"))
    assert loaded["img_name"].tolist() == names.tolist() and loaded["tags"].tolist() == ["a", None]
    assert loaded["features"].dtype == np.float32 and loaded["aid"] == [3, 4] and loaded["valid_i"] == {1, 2}
    marker = tmp_path / "ran"
    hostile = {  # a payload as a plain value, and one inside an object array (joblib's nested pickle)
        "value.pt": {"features": np.ones((2, 4), np.float32), "img_name": MarkerPayload(marker)},
        "array.pt": {"features": np.array([MarkerPayload(marker)], dtype=object), "img_name": names},
    }
    for name, content in hostile.items():
        joblib.dump(content, tmp_path / name)
        with pytest.raises(DataMismatchError) as err:
            load_joblib(tmp_path / name, "test DB", ("features",))
        assert str(err.value) == (
            f"test DB {tmp_path / name}: refused: it names {SYSTEM_GLOBAL}, which is not on the allow-list "
            "of numpy / scipy.sparse types (loading it could run code)"
        )
        assert not marker.exists()
