"""The BlazePose people backend on rendered people: two generated bodies walking past each other over a
real background (a corner of the sample video's first frame, where nobody is yet)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lib.people.blazepose import BLAZEPOSE_TO_COCO17, ssd_anchor_centers
from lib.people.build import build_backend
from lib.people.errors import PeopleError
from lib.people.roi import region_from_axis, square_tiles
from lib.people.tracking import track_people
from lib.render import Camera, render_mesh

MODELS = Path("data/models/blazepose")
VIDEO = Path("data/demo/sports2d_demo.mp4")
needs_assets = pytest.mark.skipif(
    not (MODELS / "pose_landmark_full.tflite").is_file() or not VIDEO.is_file(),
    reason="BlazePose models or the sample video missing: run scripts/fetch_assets.py (make test does)",
)
SIZE = (480, 640)  # height, width
FRAMES = 36


def test_anchors_match_the_model_output_layout():
    anchors = ssd_anchor_centers()
    assert anchors.shape == (2254, 2)
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[1568], [0.5 / 14, 0.5 / 14])  # the stride-16 grid starts after 28 * 28 * 2
    assert np.allclose(anchors[-1], [6.5 / 7, 6.5 / 7])


def test_region_turns_the_body_upright():
    # hips at (100, 100), head direction to the right: the crop's up is the frame's +x
    region = region_from_axis(np.array([100.0, 100.0]), np.array([150.0, 100.0]), 1.25)
    assert region.side == pytest.approx(125.0) and region.angle == pytest.approx(np.pi / 2)
    top_middle = region.to_frame(np.array([128.0, 0.0]), 256)
    assert np.allclose(top_middle, [100 + 62.5, 100])
    assert np.allclose(region.to_frame(np.array([128.0, 128.0]), 256), [100, 100])


def test_tiles_cover_a_wide_frame():
    tiles = square_tiles(1768, 994)
    assert len(tiles) == 3 and tiles[0].side == 1768
    assert [t.center[0] for t in tiles[1:]] == pytest.approx([497, 1271])
    (whole,) = square_tiles(640, 600)
    assert whole.side == 640 and np.allclose(whole.center, [320, 300])


def test_missing_models_are_one_clear_error(tmp_path):
    with pytest.raises(PeopleError, match=r"pose_detection.tflite.*fetch_assets"):
        build_backend("blazepose", blazepose_dir=tmp_path)


def walking_pose(phase: float) -> np.ndarray:
    """(72,) SMPL axis-angle: arms down, legs and arms swinging with ``phase`` (radians)."""
    pose = np.zeros((24, 3))
    swing = 0.45 * np.sin(phase)
    pose[1, 0], pose[2, 0] = -swing, swing  # hips
    pose[4, 0], pose[5, 0] = 0.3 + 0.3 * np.sin(phase), 0.3 - 0.3 * np.sin(phase)  # knees
    pose[16, 2], pose[17, 2] = -1.2, 1.2  # shoulders: arms down
    pose[16, 1], pose[17, 1] = 0.4 * swing, 0.4 * swing
    return pose.reshape(-1)


def yaw(deg: float) -> np.ndarray:
    return np.array([0.0, np.deg2rad(deg), 0.0])


def two_walkers(body) -> tuple[list[np.ndarray], np.ndarray]:
    """FRAMES frames (BGR) of two bodies crossing, and (FRAMES, 2, 2) each body's pelvis in pixels."""
    cap = cv2.VideoCapture(str(VIDEO))
    ok, first = cap.read()
    assert ok
    background = cv2.resize(first[400:994, 1000:1768], SIZE[::-1], interpolation=cv2.INTER_AREA)
    camera = Camera(focal=620.0, center=(320.0, 240.0), rotation=np.diag([1.0, -1.0, -1.0]))
    camera = Camera(camera.focal, camera.center, camera.rotation, np.array([0.0, 0.0, 5.0]))
    t = np.linspace(0, 1, FRAMES)
    # A walks right in front (z = 0.6, nearer), B walks left behind it (z = -0.6)
    starts = {"A": (-1.6, 0.6, 60.0), "B": (1.6, -0.6, -60.0)}
    pose = np.stack([walking_pose(2 * np.pi * 1.5 * k) for k in t])
    frames, pelvis = [], np.zeros((FRAMES, 2, 2))
    meshes = []
    for p, (x0, z, turn) in enumerate(starts.values()):
        full = pose.copy()
        full[:, :3] = yaw(turn)
        with torch.no_grad():
            verts = body.vertices(
                torch.tensor(full).float(), torch.zeros(FRAMES, 10), None, "neutral"
            ).numpy()
        verts = verts - verts[:, :, 1:2].min(axis=1, keepdims=True) * np.array([0, 1, 0]) - [0, 0.9, 0]
        x = x0 * (1 - 2 * t)  # both cross the middle at half time
        verts = verts + np.stack([x, np.zeros(FRAMES), np.full(FRAMES, z)], axis=1)[:, None]
        meshes.append(verts)
        pelvis[:, p] = camera.project(verts.mean(axis=1))[0]
    faces = body.faces.cpu().numpy()
    both_faces = np.concatenate([faces, faces + meshes[0].shape[1]])
    for k in range(FRAMES):
        verts = np.concatenate([meshes[0][k], meshes[1][k]])
        frames.append(
            render_mesh(verts, both_faces, SIZE, camera, color=(90, 120, 170), background=background)
        )
    return frames, pelvis


@pytest.mark.slow
@needs_assets
def test_two_people_crossing_are_two_tracks_without_switches(synthetic_body_model):
    frames, pelvis = two_walkers(synthetic_body_model)
    backend = build_backend("blazepose", blazepose_dir=MODELS, detect_every=5, mask_max_side=160)
    detections = [(k, backend(k, frame)) for k, frame in enumerate(frames)]
    tracks = [t for t in track_people(detections, max_gap=10) if len(t) >= 8]
    assert len(tracks) == 2
    for track in tracks:
        detected = track.frame_ids[track.scores > 0]
        assert len(detected) >= 0.75 * FRAMES  # each body is found except while fully hidden
        hips = track.keypoints[:, [11, 12], :2].mean(axis=1)  # COCO hips
        dist = np.linalg.norm(hips[:, None] - pelvis[track.frame_ids], axis=2)  # (N, 2 bodies)
        apart = np.abs(pelvis[track.frame_ids, 0, 0] - pelvis[track.frame_ids, 1, 0]) > 80
        apart &= track.scores > 0  # detected frames (the tracker fills the others by interpolation)
        owner = dist[apart].argmin(axis=1)
        assert np.all(owner == owner[0])  # no detection of the other body under this identity
        assert np.median(dist[apart, owner[0]]) < 25  # pixels, at ~300 px body height
        assert track.masks is not None and track.masks[int(np.flatnonzero(track.scores > 0)[0])].max() > 200
        assert track.world is not None and track.world.shape == (len(track), 33, 3)
    assert {int(np.argmin(np.abs(t.keypoints[0, 11, 0] - pelvis[t.frame_ids[0], :, 0]))) for t in tracks} == {
        0,
        1,
    }
    assert len(BLAZEPOSE_TO_COCO17) == 17
