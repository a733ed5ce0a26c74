"""The demo stages strung together, for ``demo.py``: built objects in, files out.

The caller builds the frame source, the people backend, the model, the image-feature function and the
mesh faces (and optionally an overlay renderer); :func:`run_demo` runs every stage, reports frames/s per
stage and writes the outputs through a staging folder, so a failure leaves no half-written files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lib.demo.camera import CameraFit, fit_camera
from lib.demo.errors import DemoError
from lib.demo.export import MeshAnimation, save_glb, save_npz, save_obj, staged_dir
from lib.demo.inference import TrackInput, TrackPrediction, predict_tracks, select_tracks
from lib.demo.keypoints import add_pelvis_neck, track_keypoints
from lib.people.tracking import track_people
from lib.people.types import PeopleBackend, Track
from lib.demo.timing import StageTimer
from lib.demo.video import FrameSource, write_video

# features(tracks, source) -> one (N_i, D) float array per track: the image stream's input
FeatureFn = Callable[[Sequence[Track], FrameSource], Sequence[np.ndarray]]
# fit(vertices (N, V, 3)) -> named arrays of body-model parameters (saved as 'smpl_<name>' in the .npz)
BodyFitFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]
# draw(frame_index, frame, people in that frame) -> the overlay frame
DrawFn = Callable[[int, np.ndarray, list["PersonFrame"]], np.ndarray]


@dataclass(frozen=True)
class PersonFrame:
    """One person in one frame, for overlay renderers."""

    track_id: int
    vertices: np.ndarray  # (V, 3) camera frame, metres (root-relative mesh + translation)
    keypoints: np.ndarray  # (19, 3) pixels + confidence
    box: np.ndarray  # (4,) x1, y1, x2, y2
    focal: float
    center: np.ndarray  # (2,)


@dataclass
class DemoResult:
    tracks: list[Track]
    predictions: list[TrackPrediction]
    cameras: list[CameraFit]
    skipped: list[str]
    timer: StageTimer
    body_fits: list[Mapping[str, np.ndarray]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def find_people(
    source: FrameSource, backend: PeopleBackend, iou_threshold: float, max_gap: int, timer: StageTimer
) -> list[Track]:
    """Run the backend over every frame and link its detections into tracks."""
    detections = []
    with timer.stage("people") as info:
        for frame_id, frame in source:
            detections.append((frame_id, backend(frame_id, frame)))
        info["frames"] = len(detections)
    if not detections:
        raise DemoError(f"no frame could be read from {source.path}")
    return track_people(detections, iou_threshold=iou_threshold, max_gap=max_gap)


def track_arrays(
    track: Track,
    pred: TrackPrediction,
    cam: CameraFit,
    fps: float,
    size: tuple[int, int],
    regressors: Mapping[str, np.ndarray],
    body_fit: Mapping[str, np.ndarray],
) -> dict:
    """The per-track ``.npz`` content. Vertices and joints are root-relative; add ``cam_t`` for the camera
    frame. Pixels are those of the upright frame; ``frame_ids`` index the original video. ``regressors``
    (joint set -> (J, V)) add ``joints_<set>`` regressed from the vertices; ``body_fit`` adds ``smpl_*``."""
    extra_joints = {f"joints_{k}": np.einsum("jv,nvc->njc", r, pred.vertices) for k, r in regressors.items()}
    return {
        "track_id": track.track_id,
        "frame_ids": track.frame_ids,  # (N,)
        "fps": fps,
        "image_size": np.array(size),  # (width, height)
        "boxes": track.boxes.astype(np.float32),  # (N, 4) x1 y1 x2 y2
        "scores": track.scores.astype(np.float32),  # (N,) 0 on interpolated frames
        "keypoints2d": add_pelvis_neck(track.keypoints).astype(np.float32),  # (N, 19, 3) pixels + conf
        "joint_set": "coco19",
        "vertices": pred.vertices,  # (N, 6890, 3) metres, root-relative, camera axes (y down, z forward)
        "joints": pred.joints,  # (N, 19, 3)
        "pose3d": pred.pose3d,  # (N, 19, 3) pose-stream joints
        "cam_weak": cam.weak_perspective.astype(np.float32),  # (N, 3) [s, tx, ty]: px = s * X[:2] + t
        "cam_t": cam.translation.astype(np.float32),  # (N, 3) metres
        "focal": cam.focal,
        "center": cam.center,
        **{k: v.astype(np.float32) for k, v in extra_joints.items()},
        **{f"smpl_{k}": v for k, v in body_fit.items()},
    }


def run_demo(
    source: FrameSource,
    backend: PeopleBackend,
    model: torch.nn.Module,
    features: FeatureFn,
    faces: np.ndarray,
    out_dir: str | Path,
    *,
    seq_len: int,
    target_index: int | None = None,
    pad_mode: str = "replicate",
    batch_size: int = 32,
    min_track_len: int = 16,
    iou_threshold: float = 0.3,
    max_gap: int = 10,
    focal: float = 0.0,
    smooth_sigma: float = 2.0,
    save_objs: bool = False,
    save_animation: bool = True,
    regressors: Mapping[str, np.ndarray] | None = None,
    fit_body: BodyFitFn | None = None,
    draw: DrawFn | None = None,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Every stage, then the outputs: ``track_NNN.npz``, ``meshes/track_NNN/FFFFFF.obj`` (save_objs),
    ``animation.glb`` (save_animation) and ``overlay.mp4`` (when ``draw`` is given). ``fit_body`` (when
    given) fits body-model parameters to each track's meshes."""
    timer = StageTimer()
    info = source.info
    tracks = find_people(source, backend, iou_threshold, max_gap, timer)
    with timer.stage("keypoints", frames=sum(len(t) for t in tracks)):
        pose2d = [track_keypoints(t, info.width, info.height) for t in tracks]
    inputs = [
        TrackInput(t.track_id, p, np.zeros((len(t), 0))) for t, (p, _) in zip(tracks, pose2d, strict=True)
    ]
    kept_inputs, skipped = select_tracks(inputs, min_track_len)
    for message in skipped:
        log(message)
    kept_ids = {t.track_id for t in kept_inputs}
    tracks = [t for t in tracks if t.track_id in kept_ids]
    confs = [c for t, (_, c) in zip(inputs, pose2d, strict=True) if t.track_id in kept_ids]
    with timer.stage("features", frames=sum(len(t) for t in tracks)):
        feats = features(tracks, source)
    inputs = [
        TrackInput(t.track_id, i.pose2d, np.asarray(f))
        for t, i, f in zip(tracks, kept_inputs, feats, strict=True)
    ]
    with timer.stage("inference", frames=sum(len(t) for t in tracks)):
        preds = predict_tracks(model, inputs, seq_len, target_index, pad_mode, batch_size)
    cams = []
    with timer.stage("camera", frames=sum(len(t) for t in tracks)):
        for track, pred, conf in zip(tracks, preds, confs, strict=True):
            kp = add_pelvis_neck(track.keypoints)[..., :2]
            if not (conf > 0).any():
                raise DemoError(
                    f"track {track.track_id}: every keypoint has confidence 0; no camera can be fitted"
                )
            cams.append(fit_camera(pred.joints, kp, conf, info.width, info.height, focal, smooth_sigma))
    body_fits: list[Mapping[str, np.ndarray]] = [{} for _ in tracks]
    if fit_body is not None:
        with timer.stage("smpl fit", frames=sum(len(t) for t in tracks)):
            body_fits = [fit_body(pred.vertices) for pred in preds]
    result = DemoResult(tracks, preds, cams, skipped, timer, body_fits)
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as stage:
        with timer.stage("export", frames=sum(len(t) for t in tracks)):
            meshes = []
            for track, pred, cam, fit in zip(tracks, preds, cams, body_fits, strict=True):
                name = f"track_{track.track_id:03d}"
                size = (info.width, info.height)
                arrays = track_arrays(track, pred, cam, info.fps, size, regressors or {}, fit)
                save_npz(stage / f"{name}.npz", arrays)
                verts_cam = pred.vertices + cam.translation[:, None].astype(np.float32)
                meshes.append(MeshAnimation(name, verts_cam, (track.frame_ids - info.start) / info.fps))
                if save_objs:
                    for frame_id, verts in zip(track.frame_ids, verts_cam, strict=True):
                        save_obj(stage / "meshes" / name / f"{frame_id:06d}.obj", verts, faces)
            if save_animation:
                save_glb(stage / "animation.glb", meshes, faces)
        if draw is not None:
            people = _people_by_frame(tracks, preds, cams)
            with timer.stage("video") as vinfo:
                vinfo["frames"] = write_video(
                    stage / "overlay.mp4",
                    source,
                    info.fps,
                    lambda i, frame: draw(i, frame, people.get(i, [])),
                )
        result.files = sorted(out_dir / p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
    log("frames/s per stage (CPU unless the model is on a GPU):\n" + timer.report())
    return result


def _people_by_frame(
    tracks: Sequence[Track], preds: Sequence[TrackPrediction], cams: Sequence[CameraFit]
) -> dict[int, list[PersonFrame]]:
    people: dict[int, list[PersonFrame]] = {}
    for track, pred, cam in zip(tracks, preds, cams, strict=True):
        kp = add_pelvis_neck(track.keypoints)
        for k, frame_id in enumerate(track.frame_ids):
            verts = pred.vertices[k] + cam.translation[k].astype(np.float32)
            person = PersonFrame(track.track_id, verts, kp[k], track.boxes[k], cam.focal, cam.center)
            people.setdefault(int(frame_id), []).append(person)
    return people
