"""People backends (detection file, ONNX helpers) and IoU tracking."""

import importlib.util
import json

import numpy as np
import pytest

from lib.people.blazepose import BLAZEPOSE_TO_COCO17
from lib.people.build import build_backend
from lib.people.detection_file import DetectionFileBackend
from lib.people.errors import PeopleError
from lib.people.onnx_backend import OnnxBackend, crop_box, decode_heatmap, decode_simcc, letterbox
from lib.people.tracking import track_people
from lib.people.types import Detection, box_from_keypoints, box_iou


def person_keypoints(cx: float, cy: float, conf: float = 0.9) -> np.ndarray:
    """(17, 3) a crude standing person centred at (cx, cy), 100 px tall."""
    offsets = np.linspace(-50, 50, 17)
    return np.stack([cx + 0.2 * offsets[::-1], cy + offsets, np.full(17, conf)], axis=1)


def coco_entry(frame: int, kp: np.ndarray, score: float = 0.9, **extra) -> dict:
    x1, y1 = kp[:, :2].min(0)
    x2, y2 = kp[:, :2].max(0)
    entry = {"image_id": frame, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
    return {**entry, "keypoints": kp.reshape(-1).tolist(), **extra}


def run_file(path, frames, **kwargs):
    backend = DetectionFileBackend(path, **kwargs)
    return [(f, backend(f, np.zeros((4, 4, 3), np.uint8))) for f in frames]


def test_file_backend_and_tracking_of_two_people(tmp_path):
    entries = []
    for f in range(20):
        entries.append(coco_entry(f + 1, person_keypoints(100 + 2 * f, 200)))  # walks right
        if f not in (7, 8):  # missed for two frames
            entries.append(coco_entry(f + 1, person_keypoints(400 - 2 * f, 210), score=0.8))
    entries.append({**coco_entry(5, person_keypoints(50, 50)), "category_id": 2})  # not a person
    entries.append(coco_entry(5, person_keypoints(700, 50), score=0.1))  # below min_score
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(entries))

    dets = run_file(path, range(20), frame_offset=1, min_score=0.5)
    tracks = track_people(dets, iou_threshold=0.3, max_gap=5)
    assert len(tracks) == 2
    left, right = tracks
    assert np.array_equal(left.frame_ids, np.arange(20)) and np.array_equal(right.frame_ids, np.arange(20))
    assert left.keypoints[:, :, 0].mean(axis=1) == pytest.approx(100 + 2 * np.arange(20))
    # the missed frames are interpolated, with confidence 0 and score 0
    assert right.keypoints[7:9, :, 0].mean(axis=1) == pytest.approx([386, 384])
    assert np.all(right.keypoints[7:9, :, 2] == 0) and np.all(right.scores[7:9] == 0)
    assert np.all(right.keypoints[6, :, 2] == pytest.approx(0.9))


def test_long_gap_splits_a_track_and_ids_are_kept(tmp_path):
    kp = person_keypoints(100, 100)
    dets = [(f, [Detection(box_from_keypoints(kp), 0.9, kp)]) for f in [*range(0, 5), *range(15, 20)]]
    tracks = track_people(dets, max_gap=3)
    assert [t.frame_ids.tolist() for t in tracks] == [list(range(5)), list(range(15, 20))]
    assert [t.track_id for t in tracks] == [0, 1]
    # a file's own track ids link detections even without any overlap
    far = [
        (f, [Detection(box_from_keypoints(person_keypoints(100 + 300 * (f % 2), 100)), 0.9, None, 7)])
        for f in range(6)
    ]
    (track,) = track_people(far)
    assert len(track) == 6 and track.keypoints is None


def test_file_backend_errors(tmp_path):
    with pytest.raises(PeopleError, match="not found"):
        DetectionFileBackend(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PeopleError, match="JSON"):
        DetectionFileBackend(bad)
    bad.write_text(json.dumps([{"image_id": 0, "score": 1.0}]))
    with pytest.raises(PeopleError, match="entry 0"):
        DetectionFileBackend(bad)
    with pytest.raises(PeopleError, match="DETECTION_FILE"):
        build_backend("file")
    with pytest.raises(PeopleError, match="unknown people backend"):
        build_backend("yolo")


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert box_iou(a, b)[0] == pytest.approx([1.0, 1 / 3, 0.0])


def test_onnx_backend_reports_missing_weights(tmp_path):
    with pytest.raises(PeopleError, match="detector weights not found"):
        OnnxBackend(tmp_path / "det.onnx", tmp_path / "pose.onnx")
    (tmp_path / "det.onnx").write_bytes(b"x")
    with pytest.raises(PeopleError, match="ONNX_POSE"):
        build_backend("onnx", onnx_detector=str(tmp_path / "det.onnx"), onnx_pose="")


def test_onnx_decoders_and_crops():
    simcc_x, simcc_y = np.zeros((17, 2 * 192)), np.zeros((17, 2 * 256))
    simcc_x[:, 100], simcc_y[:, 300] = 0.8, 0.6
    xy, conf = decode_simcc(simcc_x, simcc_y, (256, 192))
    assert np.allclose(xy, [50, 150]) and np.allclose(conf, 0.6)
    heat = np.zeros((17, 64, 48))
    heat[:, 10, 20] = 0.7
    xy, conf = decode_heatmap(heat, (256, 192))
    assert np.allclose(xy, [(20.5) * 4, (10.5) * 4]) and np.allclose(conf, 0.7)
    frame = np.zeros((100, 200, 3), np.uint8)
    boxed, scale = letterbox(frame, (64, 64))
    assert boxed.shape == (64, 64, 3) and scale == pytest.approx(0.32) and boxed[-1, -1, 0] == 114
    crop, warp = crop_box(frame, np.array([50.0, 20.0, 90.0, 80.0]), (256, 192))
    assert crop.shape == (256, 192, 3)
    centre = warp @ np.array([70.0, 50.0, 1.0])
    assert np.allclose(centre, [96, 128])  # the box centre lands in the crop centre


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_onnx_backend_runs_local_models(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def save(path, inputs_shape, outputs):
        nodes, outs = [], []
        for name, value in outputs:
            tensor = helper.make_tensor(
                name + "_v", TensorProto.FLOAT, value.shape, value.reshape(-1).tolist()
            )
            nodes.append(helper.make_node("Constant", [], [name], value=tensor))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, value.shape))
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, inputs_shape)], outs
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.save(model, str(path))

    save(
        tmp_path / "det.onnx",
        [1, 3, 64, 64],
        [("dets", np.array([[[8, 8, 24, 40, 0.9], [0, 0, 1, 1, 0.1]]], np.float32))],
    )
    heat = np.zeros((1, 17, 16, 12), np.float32)
    heat[0, :, 8, 6] = 0.9  # the crop centre
    save(tmp_path / "pose.onnx", [1, 3, 64, 48], [("heatmaps", heat)])
    backend = OnnxBackend(tmp_path / "det.onnx", tmp_path / "pose.onnx", min_score=0.5)
    (det,) = backend(0, np.zeros((128, 128, 3), np.uint8))
    assert np.allclose(det.box, [16, 16, 48, 80])  # letterbox scale 0.5 undone
    assert det.keypoints.shape == (17, 3)
    # heatmap cell (6, 8) -> crop (26, 34); crop scale 48 / (48 * 1.25) = 0.8 around the box centre (32, 48)
    assert np.allclose(det.keypoints[:, :2], [32 + 2 / 0.8, 48 + 2 / 0.8])


def test_blazepose_landmark_map_is_coco17():
    assert len(BLAZEPOSE_TO_COCO17) == 17 and len(set(BLAZEPOSE_TO_COCO17)) == 17


def test_backend_from_config(tmp_path):
    from demo import people_backend
    from lib.config import get_cfg

    path = tmp_path / "dets.json"
    path.write_text(json.dumps([coco_entry(1, person_keypoints(50, 50))]))
    cfg = get_cfg(
        opts=["DEMO.PEOPLE", "file", "DEMO.DETECTION_FILE", str(path), "DEMO.DETECTION_FRAME_OFFSET", "1"]
    )
    backend = people_backend(cfg)
    assert len(backend(0, np.zeros((4, 4, 3), np.uint8))) == 1
