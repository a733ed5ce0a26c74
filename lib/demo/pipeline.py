"""The demo stages strung together, for ``demo.py``: built objects in, files out.

The caller builds the frame source, the people backend, the model, the image-feature function and the
mesh faces (and optionally an overlay renderer); :func:`run_demo` runs every stage, reports frames/s per
stage and writes the outputs through a staging folder, so a failure leaves no half-written files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lib.demo.camera import CameraFit, fit_camera
from lib.demo.errors import DemoError
from lib.demo.export import MeshAnimation, save_glb, save_npz, save_obj
from lib.demo.inference import TrackInput, TrackPrediction, predict_tracks, select_tracks
from lib.demo.keypoints import track_keypoints
from lib.demo.records import BodyFit, TrackResult
from lib.demo.stats import format_summary, summarize
from lib.demo.timing import StageTimer
from lib.demo.video import FrameSource, write_video
from lib.io import staged_dir, write_text_atomic
from lib.keypoints import add_pelvis_neck_scored
from lib.models.mirror import Mirror
from lib.people.tracking import track_people
from lib.people.types import PeopleBackend, Track

# features(tracks, source) -> one (N_i, D) float array per track: the image stream's input
FeatureFn = Callable[[Sequence[Track], FrameSource], Sequence[np.ndarray]]
# draw(frame_index, frame, people in that frame) -> the overlay frame
DrawFn = Callable[[int, np.ndarray, list["PersonFrame"]], np.ndarray]


# fit(vertices (N, V, 3)) -> the track's body fit
BodyFitFn = Callable[[np.ndarray], BodyFit]
# export(folder, name, fit, cam_t (N, 3), times (N,)) -> the files written (skinned .glb, .bvh)
RigExportFn = Callable[[Path, str, BodyFit, np.ndarray, np.ndarray], list[Path]]


@dataclass(frozen=True)
class DemoSettings:
    """How the stages run (built once from DEMO.* and the model's config by ``demo.py``)."""

    seq_len: int
    target_index: int | None = None
    pad_mode: str = "replicate"
    batch_size: int = 32
    min_track_len: int = 16
    iou_threshold: float = 0.3
    max_gap: int = 10
    focal: float = 0.0  # pixels; <= 0: the frame diagonal
    camera_sigma: float = 2.0  # frames
    show: str = "fitted"  # what the overlay and the animation show: 'fitted' body or 'raw' vertices
    save_objs: bool = False
    save_animation: bool = True
    precision: str = "auto"  # the network's: 'auto' (bfloat16 where native), 'float32', 'bfloat16'
    share_frames: bool = True  # per-frame network parts once per frame (same outputs)
    mirror: Mirror | None = None  # test-time flip augmentation (lib/models/mirror.py); None: off
    progress: bool | None = None  # progress bars: None shows them on a terminal only


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
    results: list[TrackResult]
    skipped: list[str]
    timer: StageTimer
    summary: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def tracks(self) -> list[Track]:
        return [r.track for r in self.results]

    @property
    def predictions(self) -> list[TrackPrediction]:
        return [r.prediction for r in self.results]

    @property
    def cameras(self) -> list[CameraFit]:
        return [r.camera for r in self.results]


def find_people(
    source: FrameSource, backend: PeopleBackend, settings: DemoSettings, timer: StageTimer
) -> list[Track]:
    """Run the backend over every frame and link its detections into tracks."""
    detections = []
    with timer.stage("people") as info:
        frames = progress(source, source.info.num_frames, "people", settings.progress)
        detections = [(frame_id, backend(frame_id, frame)) for frame_id, frame in frames]
        info["frames"] = len(detections)
    if not detections:
        raise DemoError(f"no frame could be read from {source.path}")
    return track_people(detections, iou_threshold=settings.iou_threshold, max_gap=settings.max_gap)


def progress(items: Iterable, total: int, stage: str, show: bool | None) -> Iterable:
    """``items`` with a progress bar on stderr (``show`` None: only on a terminal)."""
    return tqdm(items, total=total or None, desc=stage, unit="frame", disable=_no_bar(show), leave=False)


def _no_bar(show: bool | None) -> bool | None:
    return None if show is None else not show


def track_arrays(
    result: TrackResult, fps: float, size: tuple[int, int], regressors: Mapping[str, np.ndarray]
) -> dict:
    """The per-track ``.npz`` content. Vertices and joints are root-relative; add ``cam_t`` for the camera
    frame. Pixels are those of the upright frame; ``frame_ids`` index the original video. ``regressors``
    (joint set -> (J, V)) add ``joints_<set>`` regressed from the network's vertices; a body fit adds
    ``smpl_*`` (its parameters, vertices and per-frame error)."""
    track, pred, cam, fit = result.track, result.prediction, result.camera, result.fit
    extra_joints = {f"joints_{k}": np.einsum("jv,nvc->njc", r, pred.vertices) for k, r in regressors.items()}
    arrays = {
        "track_id": track.track_id,
        "frame_ids": track.frame_ids,  # (N,)
        "fps": fps,
        "image_size": np.array(size),  # (width, height)
        "boxes": track.boxes.astype(np.float32),  # (N, 4) x1 y1 x2 y2
        "scores": track.scores.astype(np.float32),  # (N,) 0 on interpolated frames
        "keypoints2d": add_pelvis_neck_scored(track.keypoints).astype(np.float32),  # (N, 19, 3) pixels + conf
        "joint_set": "coco19",
        "vertices": pred.vertices,  # (N, 6890, 3) metres, root-relative, camera axes (y down, z forward)
        "joints": pred.joints,  # (N, 19, 3)
        "pose3d": pred.pose3d,  # (N, 19, 3) pose-stream joints
        "cam_weak": cam.weak_perspective.astype(np.float32),  # (N, 3) [s, tx, ty]: px = s * X[:2] + t
        "cam_t": cam.translation.astype(np.float32),  # (N, 3) metres
        "focal": cam.focal,
        "center": cam.center,
        **{k: v.astype(np.float32) for k, v in extra_joints.items()},
    }
    if track.world is not None:
        arrays["blazepose_world"] = track.world.astype(np.float32)  # (N, 33, 3) metres; NaN: not detected
    if fit is not None:
        fields = ("pose", "betas", "transl", "vertices", "joints", "vertex_error_m")
        arrays |= {f"smpl_{k}": np.asarray(getattr(fit, k), np.float32) for k in fields}
    return arrays


def run_demo(
    source: FrameSource,
    backend: PeopleBackend,
    model: torch.nn.Module,
    features: FeatureFn,
    faces: np.ndarray,
    out_dir: str | Path,
    settings: DemoSettings,
    *,
    regressors: Mapping[str, np.ndarray] | None = None,
    fit_body: BodyFitFn | None = None,
    export_rig: RigExportFn | None = None,
    draw: DrawFn | None = None,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Every stage, then the outputs: ``track_NNN.npz``, with a body fit ``track_NNN.glb`` and
    ``track_NNN.bvh`` (``export_rig``), ``meshes/track_NNN/FFFFFF.obj`` (save_objs), ``animation.glb``
    (save_animation), ``overlay.mp4`` (when ``draw`` is given) and ``summary.json``. The output folder
    holds this run's files only: it is replaced as a whole once everything succeeded."""
    timer = StageTimer()
    info = source.info
    tracks = find_people(source, backend, settings, timer)
    results, skipped = predict_people(source, tracks, model, features, settings, timer, log)
    with timer.stage("camera", frames=sum(len(r.track) for r in results)):
        for r in results:
            r.camera = track_camera(r, info.width, info.height, settings)
    if fit_body is not None:
        with timer.stage("body fit", frames=sum(len(r.track) for r in results)):
            for r in results:
                r.fit = fit_body(r.prediction.vertices)
    result = DemoResult(results, skipped, timer)
    result.summary = summarize(results, settings.show, (info.width, info.height))
    with staged_dir(out_dir) as stage:
        write_outputs(stage, result, info, faces, settings, regressors or {}, export_rig)
        if draw is not None:
            people = _people_by_frame(results, settings.show)
            with timer.stage("video") as vinfo:
                frames = progress(source, info.num_frames, "video", settings.progress)
                vinfo["frames"] = write_video(
                    stage / "overlay.mp4",
                    frames,
                    info.fps,
                    lambda i, frame: draw(i, frame, people.get(i, [])),
                )
        result.summary["frames_per_second"] = timer.rates()
        write_text_atomic(stage / "summary.json", json.dumps(result.summary, indent=1) + "\n")
        result.files = sorted(Path(out_dir) / p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
    log(format_summary(result.summary))
    log("frames/s per stage (CPU unless the model is on a GPU):\n" + timer.report())
    return result


def predict_people(
    source: FrameSource,
    tracks: Sequence[Track],
    model: torch.nn.Module,
    features: FeatureFn,
    settings: DemoSettings,
    timer: StageTimer,
    log: Callable[[str], None],
) -> tuple[list[TrackResult], list[str]]:
    """The network's meshes for every track long enough (the others are reported and skipped)."""
    info = source.info
    with timer.stage("keypoints", frames=sum(len(t) for t in tracks)):
        inputs = [
            TrackInput(t.track_id, track_keypoints(t, info.width, info.height)[0], None) for t in tracks
        ]
    kept_inputs, skipped = select_tracks(inputs, settings.min_track_len)
    for message in skipped:
        log(message)
    kept_ids = {i.track_id for i in kept_inputs}
    tracks = [t for t in tracks if t.track_id in kept_ids]
    with timer.stage("features", frames=sum(len(t) for t in tracks)):
        feats = features(tracks, source)
    inputs = [
        TrackInput(i.track_id, i.pose2d, np.asarray(f)) for i, f in zip(kept_inputs, feats, strict=True)
    ]
    with timer.stage("inference", frames=sum(len(t) for t in tracks)):
        preds = predict_tracks(model, inputs, settings.seq_len, settings.target_index, settings.pad_mode,
                               settings.batch_size, settings.precision, settings.share_frames,
                               settings.mirror)  # fmt: skip
    return [TrackResult(t, p, None) for t, p in zip(tracks, preds, strict=True)], skipped


def track_camera(result: TrackResult, width: int, height: int, settings: DemoSettings) -> CameraFit:
    """The track's camera from its joints and 2D keypoints (COCO-19, weighted by confidence)."""
    kp = add_pelvis_neck_scored(result.track.keypoints)
    if not (kp[..., 2] > 0).any():
        raise DemoError(
            f"track {result.track.track_id}: every keypoint has confidence 0; no camera can be fitted"
        )
    joints = result.prediction.joints
    return fit_camera(joints, kp[..., :2], kp[..., 2], width, height, settings.focal, settings.camera_sigma)


def write_outputs(
    stage: Path,
    result: DemoResult,
    info,
    faces: np.ndarray,
    settings: DemoSettings,
    regressors: Mapping[str, np.ndarray],
    export_rig: RigExportFn | None,
) -> None:
    """The per-track files and the animation of everyone into the staging folder."""
    with result.timer.stage("export", frames=sum(len(r.track) for r in result.results)):
        meshes = []
        for r in result.results:
            name = f"track_{r.track.track_id:03d}"
            save_npz(stage / f"{name}.npz", track_arrays(r, info.fps, (info.width, info.height), regressors))
            times = (r.track.frame_ids - info.start) / info.fps
            if export_rig is not None and r.fit is not None:
                export_rig(stage, name, r.fit, r.camera.translation, times)
            verts_cam = r.shown(settings.show)[0] + r.camera.translation[:, None].astype(np.float32)
            meshes.append(MeshAnimation(name, verts_cam, times))
            if settings.save_objs:
                for frame_id, verts in zip(r.track.frame_ids, verts_cam, strict=True):
                    save_obj(stage / "meshes" / name / f"{frame_id:06d}.obj", verts, faces)
        if settings.save_animation:
            save_glb(stage / "animation.glb", meshes, faces)


def _people_by_frame(results: Sequence[TrackResult], show: str) -> dict[int, list[PersonFrame]]:
    people: dict[int, list[PersonFrame]] = {}
    for r in results:
        kp = add_pelvis_neck_scored(r.track.keypoints)
        vertices = r.shown(show)[0]
        cam = r.camera
        for k, frame_id in enumerate(r.track.frame_ids):
            verts = vertices[k] + cam.translation[k].astype(np.float32)
            person = PersonFrame(r.track.track_id, verts, kp[k], r.track.boxes[k], cam.focal, cam.center)
            people.setdefault(int(frame_id), []).append(person)
    return people
