"""The demo stages end to end on a synthetic video with a detection file and a stand-in model."""

import json

import cv2
import numpy as np
import pytest
import torch

from lib.demo.errors import DemoError
from lib.demo.export import read_glb
from lib.demo.pipeline import DemoSettings, run_demo
from lib.demo.video import FrameSource, write_video
from lib.models.pmce import PMCEOutput
from lib.people.detection_file import DetectionFileBackend
from tests.test_people import coco_entry, person_keypoints

W, H, N = 160, 120, 24
FACES = np.array([[0, 1, 2], [0, 2, 3]])


class FlatLifter(torch.nn.Module):
    """'Predicts' joints = the target frame's normalised 2D pose at depth 0 and a 4-vertex mesh."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, pose2d, img_feat):
        t = pose2d.shape[1] // 2
        joints = torch.cat([pose2d[:, t], torch.zeros_like(pose2d[:, t, :, :1])], dim=-1)  # (B, J, 3)
        return PMCEOutput(mesh=joints[:, :4], joints=joints, pose3d=joints)


def zero_features(tracks, source):
    return [np.zeros((len(t), 8), np.float32) for t in tracks]


@pytest.fixture
def scene(tmp_path):
    """A video of two stick people; person 1 is only in 5 frames."""
    entries, frames = [], []
    for f in range(N):
        frame = np.zeros((H, W, 3), np.uint8)
        people = [person_keypoints(40 + f, 60)[:, :] * [1, 0.5, 1] + [0, 30, 0]]
        if f < 5:
            people.append(person_keypoints(130, 60) * [1, 0.5, 1] + [0, 30, 0])
        for kp in people:
            for x, y, _ in kp:
                cv2.circle(frame, (int(x), int(y)), 2, (255, 255, 255), -1)
            entries.append(coco_entry(f, kp))
        frames.append((f, frame))
    video = tmp_path / "people.mp4"
    write_video(video, frames, 30.0)
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(entries))
    return video, dets


def test_run_demo_writes_every_output(scene, tmp_path):
    video, dets = scene
    drawn = []

    def draw(index, frame, people):
        drawn.append((index, [p.track_id for p in people]))
        return frame

    messages = []
    out = tmp_path / "out"
    result = run_demo(
        FrameSource(video),
        DetectionFileBackend(dets),
        FlatLifter(),
        zero_features,
        FACES,
        out,
        DemoSettings(seq_len=8, min_track_len=10, save_objs=True),
        draw=draw,
        log=messages.append,
    )
    assert messages[0] == "track 1: 5 frames < DEMO.MIN_TRACK_LEN = 10, skipped"
    assert messages[1].startswith("per track") and "track 0: frames 0-" in messages[1]
    assert "inference" in messages[-1] and "frames/s" in messages[-1]
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted(
        ["track_000.npz", "animation.glb", "overlay.mp4", "summary.json"]
        + [f"meshes/track_000/{f:06d}.obj" for f in range(N)]
    )
    assert sorted(result.files) == sorted(out / n for n in names)
    with np.load(out / "track_000.npz") as data:
        assert np.array_equal(data["frame_ids"], np.arange(N)) and float(data["fps"]) == 30.0
        assert data["vertices"].shape == (N, 4, 3) and data["keypoints2d"].shape == (N, 19, 3)
        # joints are the normalised keypoints, so the fitted camera maps them back: s = W / 2, t = centre
        assert np.allclose(data["cam_weak"], [W / 2, W / 2, H / 2], rtol=1e-4)
        assert np.allclose(data["cam_t"][:, :2], 0, atol=1e-4)
        assert np.allclose(data["cam_t"][:, 2], np.hypot(W, H) / (W / 2), rtol=1e-4)
    doc, _ = read_glb(out / "animation.glb")
    assert [m["name"] for m in doc["meshes"]] == ["track_000"]
    assert [i for i, _ in drawn] == list(range(N)) and all(ids == [0] for _, ids in drawn)
    assert len(list(FrameSource(out / "overlay.mp4"))) == N
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    summary = json.loads((out / "summary.json").read_text())
    assert [t["track_id"] for t in summary["tracks"]] == [0] and summary["tracks"][0]["shown"] == "raw"
    assert summary["frames_per_second"]["people"] > 0
    # a second run into the same folder replaces the first run's outputs as a whole
    run_demo(FrameSource(video), DetectionFileBackend(dets), FlatLifter(), zero_features, FACES, out,
             DemoSettings(seq_len=8, min_track_len=10, save_animation=False), log=lambda m: None)  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "track_000.npz"]


def test_failures_leave_no_outputs(scene, tmp_path):
    video, dets = scene
    out = tmp_path / "out"
    common = dict(settings=DemoSettings(seq_len=8), log=lambda m: None)
    with pytest.raises(DemoError, match="every track is shorter"):
        run_demo(FrameSource(video), DetectionFileBackend(dets), FlatLifter(), zero_features, FACES, out,
                 DemoSettings(seq_len=8, min_track_len=100), log=lambda m: None)  # fmt: skip
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    with pytest.raises(DemoError, match="no person found"):
        run_demo(
            FrameSource(video), DetectionFileBackend(empty), FlatLifter(), zero_features, FACES, out, **common
        )

    def broken_draw(index, frame, people):
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        run_demo(FrameSource(video), DetectionFileBackend(dets), FlatLifter(), zero_features, FACES, out,
                 draw=broken_draw, **common)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dets.json", "none.json", "people.mp4"]
