"""The embedded synthetic video dataset, written in the preprocessed 3DPW file format.

Each video shows one person with a random body shape (betas) and gender performing a procedural motion
(:mod:`lib.data.synthetic.motion`), filmed by a random perspective camera (:mod:`.cameras`). Per frame we
store what the real 3DPW files hold, in the same files and units, so the real 3DPW reader loads it:

* ``3DPW_latest_{split}.json``: COCO-style ``images`` (id, file_name, width, height, sequence, frame_idx,
  cam_param {focal, princpt}) and ``annotations`` (id, image_id, person_id, bbox, smpl_param {pose (72),
  shape (10), trans (3), gender}), SMPL parameters in the *camera* frame;
* ``3DPW_{split}_joint_coco_cam.json`` / ``_joint_h36m_cam.json``: COCO-19 / H36M-17 joints regressed from
  the camera-frame mesh, millimetres; ``3DPW_{split}_gt_joint_coco_img.json``: their COCO-19 projection
  (x, y, visible) in pixels; ``3DPW_{split}_joint_coco_img_noise.json``: detections (x, y, score) from
  the detector-noise model (:mod:`lib.data.noise`); all keyed ``[seq][str(img_idx)][str(pid)]``;
* ``vitpose_3dpw_{split}_output.json`` (test and validation): the detections as a ViTPose output list
  of {annotation_id, keypoints (17 x 3)};
* ``3DPW_{split}_img_feat.json``: ``"{seq}_{pid}_{img_idx}"`` -> 2048 silhouette features
  (:mod:`lib.data.silhouette`), not SPIN features;
* ``manifest.json``: the settings hash (to skip regeneration) and the sizes.

Visibility (the third GT 2D column) is 0 for joints outside the image (truncation), behind the body's own
surface (self-occlusion) or behind the video's occluder box.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from lib.data.noise import DetectionNoise, noise_rng, person_scale
from lib.data.silhouette import mask_features, silhouette_features, square_box
from lib.data.synthetic.cameras import (
    CameraTrack,
    parse_image_size,
    project,
    sample_camera,
    smpl_world_to_camera,
)
from lib.data.synthetic.masks import (
    MaskImperfections,
    cut_box,
    degrade_mask,
    facing_camera,
    occluded_by_surface,
    render_silhouette,
    to_crop,
)
from lib.data.synthetic.mocap import SmplMotion, real_motion_clips
from lib.data.synthetic.motion import sample_motion
from lib.data.synthetic.render_detect import Backgrounds, render_and_detect, sample_scene
from lib.io import staged_dir
from lib.keypoints import add_pelvis_neck_scored

SPLITS = ("train", "validation", "test")
# The shape code overwrites the first features: the top rows of the 32x32 occupancy grid, mostly the
# background above the head.
SHAPE_CODE_DIM = 160
GENERATOR_VERSION = 1  # bump when the generator's output changes for the same settings
PERSON_ID = 0  # one person per video


@dataclass(frozen=True)
class SyntheticSettings:
    """Everything that determines the dataset (besides the body model and the noise model)."""

    seed: int = 0
    num_sequences: tuple[int, int, int] = (16, 4, 6)  # train, validation, test
    seq_len_range: tuple[int, int] = (60, 120)
    fps: float = 30.0
    image_sizes: tuple[tuple[int, int], ...] = ((1920, 1080), (1080, 1920), (1000, 1000))
    fov_range: tuple[float, float] = (40.0, 70.0)
    fill_range: tuple[float, float] = (0.45, 0.9)
    moving_camera_prob: float = 0.3
    beta_std: float = 1.0
    beta_max: float = 2.5
    occlusion_margin: float = 0.12
    crop_size: int = 128
    crop_scale: float = 1.2
    mask: MaskImperfections = field(default_factory=MaskImperfections)
    occluder_prob: float = 0.3
    feat_decimals: int = 4
    shape_code_noise: float = -1.0  # >= 0: features carry an emulated backbone shape estimate (shape_code)
    acrobatics: float = 0.0  # share of lower-body actions that are flips, cartwheels, crawling, lying, kicks
    free_limbs: float = 0.0  # share of upper-body actions that move every limb freely through its range
    athletics: float = 0.0  # share of lower-body actions that are runs, spins, side kicks, get-ups, dances
    # 2D inputs and masks: 'noise' (the detection-noise model, fast) or 'blazepose' (render-and-detect)
    detector: str = "noise"
    background_video: str = ""  # 'blazepose': real footage the people are rendered over
    blazepose_dir: str = ""  # 'blazepose': the model files
    mask_max_side: int = 256  # 'blazepose': person masks are kept at most this large
    # 'procedural' (lib/data/synthetic/motion.py) or 'real': DeepMimic's motion capture (mocap.py), one
    # test video per clip and mirror, kept out of training
    motion_source: str = "procedural"
    mocap_dir: str = ""


def build_synthetic_settings(cfg) -> SyntheticSettings:
    """SyntheticSettings from DATA.SYNTHETIC."""
    s = cfg.DATA.SYNTHETIC
    if len(s.NUM_SEQUENCES) != 3 or min(s.NUM_SEQUENCES) < 0:
        raise ValueError(f"DATA.SYNTHETIC.NUM_SEQUENCES needs 3 counts >= 0, got {s.NUM_SEQUENCES}")
    low, high = s.SEQ_LEN_RANGE
    if not 2 <= low <= high:
        raise ValueError(
            f"DATA.SYNTHETIC.SEQ_LEN_RANGE must be [low, high] with 2 <= low <= high, got {low, high}"
        )
    if min(s.ACROBATICS, s.ATHLETICS) < 0 or s.ACROBATICS + s.ATHLETICS > 1:
        raise ValueError(
            "DATA.SYNTHETIC.ACROBATICS and ATHLETICS are shares of the actions: each >= 0, together <= 1, "
            f"got {s.ACROBATICS} and {s.ATHLETICS}"
        )
    return SyntheticSettings(
        seed=s.SEED,
        num_sequences=tuple(s.NUM_SEQUENCES),
        seq_len_range=(low, high),
        fps=s.FPS,
        image_sizes=tuple(parse_image_size(v) for v in s.IMAGE_SIZES),
        fov_range=tuple(s.FOV_RANGE),
        fill_range=tuple(s.FILL_RANGE),
        moving_camera_prob=s.MOVING_CAMERA_PROB,
        beta_std=s.BETA_STD,
        beta_max=s.BETA_MAX,
        occlusion_margin=s.OCCLUSION_MARGIN,
        crop_size=s.CROP_SIZE,
        crop_scale=s.CROP_SCALE,
        mask=MaskImperfections(
            blur=s.MASK_BLUR, holes=s.MASK_HOLES, hole_size=s.MASK_HOLE_SIZE, dilate=s.MASK_DILATE
        ),
        occluder_prob=s.OCCLUDER_PROB,
        feat_decimals=s.FEAT_DECIMALS,
        shape_code_noise=s.SHAPE_CODE_NOISE,
        acrobatics=s.ACROBATICS,
        free_limbs=s.FREE_LIMBS,
        athletics=s.ATHLETICS,
        detector=s.DETECTOR,
        background_video=s.BACKGROUND_VIDEO,
        blazepose_dir=cfg.DEMO.BLAZEPOSE_DIR,
    )


def dataset_variants(cfg) -> dict[str, tuple[SyntheticSettings, str]]:
    """The synthetic datasets a config makes, by the name of their DATA.*_LIST entry: (settings, folder).

    'synthetic' (train / validation / test, DATA.SYNTHETIC.DETECTOR's inputs), 'synthetic_rendered' (its
    test videos rendered and detected) and 'real_motion' (real_motion_settings)."""
    base, node = build_synthetic_settings(cfg), cfg.DATA.SYNTHETIC
    rendered = replace(base, detector="blazepose", num_sequences=(0, *base.num_sequences[1:]))
    return {
        "synthetic": (base, node.DIR),
        "synthetic_rendered": (rendered, node.RENDERED_DIR),
        "real_motion": (real_motion_settings(cfg), node.REAL_MOTION_DIR),
    }


def real_motion_settings(cfg) -> SyntheticSettings:
    """The real-motion test split's settings: DATA.SYNTHETIC's, with DeepMimic's clips as the motions
    (DATA.SYNTHETIC.MOCAP_DIR), rendered and detected (BlazePose), no occluder."""
    return replace(
        build_synthetic_settings(cfg),
        motion_source="real",
        mocap_dir=cfg.DATA.SYNTHETIC.MOCAP_DIR,
        detector="blazepose",
        occluder_prob=0.0,
        image_sizes=(parse_image_size(cfg.DATA.SYNTHETIC.REAL_MOTION_IMAGE_SIZE),),
    )


@dataclass
class Video:
    """One generated video of one person (T frames); 3D in the camera frame."""

    name: str
    width: int
    height: int
    focal: tuple[float, float]
    center: tuple[float, float]
    gender: str
    betas: np.ndarray  # (10,)
    pose: np.ndarray  # (T, 72) camera frame
    trans: np.ndarray  # (T, 3) camera frame
    joints_h36m: np.ndarray  # (T, 17, 3) mm
    joints_coco: np.ndarray  # (T, 19, 3) mm
    keypoints: np.ndarray  # (T, 19, 2) GT pixels
    visible: np.ndarray  # (T, 19) bool
    detections: np.ndarray  # (T, 19, 3) noisy pixels + score
    features: np.ndarray  # (T, 2048) float32
    moving_camera: bool = False
    actions: tuple = ()
    world: np.ndarray | None = None  # (T, 33, 3) BlazePose world landmarks (render-and-detect), NaN: missed


def sequence_name(split: str, index: int) -> str:
    return f"synthetic_{split}_{index:03d}"


def generate_video(
    body,
    settings: SyntheticSettings,
    noise: DetectionNoise,
    split: str,
    index: int,
    backgrounds=None,
    clips: Sequence[SmplMotion] = (),
) -> Video:
    """Video ``index`` of ``split``: a pure function of (settings, split, index), the body model and, with
    render-and-detect, the background footage (``clips``: the real motions, for motion_source 'real')."""
    rng = np.random.default_rng([settings.seed, SPLITS.index(split), index])
    name = sequence_name(split, index)
    if settings.motion_source == "real":
        num_frames, clip = len(clips[index].pose), clips[index]
        name = f"realmotion_{index:03d}_{clip.name}"
    else:
        num_frames = int(rng.integers(settings.seq_len_range[0], settings.seq_len_range[1] + 1))
    genders = [g for g in ("male", "female") if g in body.genders] or list(body.genders)
    gender = str(genders[rng.integers(len(genders))])
    betas = np.clip(rng.normal(0, settings.beta_std, 10), -settings.beta_max, settings.beta_max)
    if settings.motion_source == "real":
        pose_w, trans_w, actions = clip.pose, clip.transl, (clip.name,)
    else:
        motion = sample_motion(
            rng, num_frames, settings.fps, settings.acrobatics, settings.free_limbs, settings.athletics
        )
        pose_w, trans_w, actions = motion.pose, motion.trans, tuple(a for a, _, _ in motion.actions)
    shot = film(body, settings, rng, pose_w, trans_w, betas, gender)
    occluder = _sample_occluder(rng, shot.keypoints, settings.occluder_prob)
    faces = body.faces.cpu().numpy()
    visible, front = _visibility(shot, faces, occluder, settings.occlusion_margin)
    world = None
    if settings.detector == "blazepose":
        scene_rng = np.random.default_rng([settings.seed, SPLITS.index(split), index, 2])
        detections, features, world = _rendered_inputs(body, settings, shot, occluder, backgrounds, scene_rng)
    else:
        detections = _detect(noise, shot.keypoints, visible, noise_rng(settings.seed, 0, f"synthetic/{name}"))
        features = _silhouette_inputs(settings, shot, faces, front, detections, occluder, rng)
    if settings.shape_code_noise >= 0:
        code_rng = np.random.default_rng([settings.seed, SPLITS.index(split), index, 1])
        features[:, :SHAPE_CODE_DIM] = shape_code(
            betas, gender, num_frames, settings.shape_code_noise, code_rng
        )
    return _video_record(name, gender, betas, shot, visible, detections, features, actions, world)


def _video_record(name, gender, betas, shot: Shot, visible, detections, features, actions, world) -> Video:
    """The generated video's record (joints in mm, as the 3DPW files hold them)."""
    camera = shot.camera
    return Video(
        name=name,
        width=camera.width,
        height=camera.height,
        focal=camera.focal,
        center=camera.center,
        gender=gender,
        betas=betas,
        pose=shot.pose,
        trans=shot.trans,
        joints_h36m=shot.joints_h36m * 1000.0,
        joints_coco=shot.joints_coco * 1000.0,
        keypoints=shot.keypoints,
        visible=visible,
        detections=detections,
        features=features,
        moving_camera=camera.moving,
        actions=actions,
        world=world,
    )


@dataclass
class Shot:
    """A body's motion filmed by a sampled camera: everything in the camera frame."""

    camera: CameraTrack
    pose: np.ndarray  # (T, 72) camera frame
    trans: np.ndarray  # (T, 3)
    vertices: np.ndarray  # (T, V, 3) metres
    joints_h36m: np.ndarray  # (T, 17, 3) metres
    joints_coco: np.ndarray  # (T, 19, 3) metres
    keypoints: np.ndarray  # (T, 19, 2) pixels


def film(
    body, settings: SyntheticSettings, rng: np.random.Generator, pose_w, trans_w, betas, gender: str
) -> Shot:
    """Pose the body (world motion ``pose_w`` (T, 72), ``trans_w`` (T, 3)), sample a camera that keeps
    it in view and express everything in that camera's frame."""

    def run(pose, trans, joint_sets):
        n = len(pose)
        with torch.no_grad():
            out = body(
                torch.as_tensor(pose, dtype=torch.float32),
                torch.as_tensor(np.repeat(betas[None], n, 0), dtype=torch.float32),
                None if trans is None else torch.as_tensor(trans, dtype=torch.float32),
                gender=gender,
                joint_sets=joint_sets,
            )
        return out.vertices.double().numpy(), {k: v.double().numpy() for k, v in out.joints.items()}

    rest_vertices, rest_joints = run(np.zeros((1, 72)), None, ("smpl24",))
    root = rest_joints["smpl24"][0, 0]  # J0 of the shaped body
    body_height = float(np.ptp(rest_vertices[0, :, 1]))
    world_vertices, _ = run(pose_w, trans_w, ())
    ground = float(world_vertices[..., 1].min())
    camera = sample_camera(
        rng,
        root + trans_w,
        body_height,
        ground,
        settings.image_sizes,
        settings.fov_range,
        settings.fill_range,
        settings.moving_camera_prob,
    )
    pose_c, trans_c = smpl_world_to_camera(pose_w, trans_w, root, camera.rotation, camera.translation)
    vertices, joints = run(pose_c, trans_c, ("h36m17", "coco19"))
    keypoints = project(joints["coco19"], camera.focal, camera.center)  # (T, 19, 2)
    return Shot(camera, pose_c, trans_c, vertices, joints["h36m17"], joints["coco19"], keypoints)


def _visibility(shot: Shot, faces: np.ndarray, occluder, margin: float) -> tuple[np.ndarray, list]:
    """(T, 19) GT visibility (in the image, in front of the camera, not behind the occluder or the
    body's own surface) and each frame's front-facing faces."""
    keypoints, coco, camera = shot.keypoints, shot.joints_coco, shot.camera
    visible = camera.in_image(keypoints) & (coco[..., 2] > 0.05)
    if occluder is not None:
        x0, y0, x1, y1 = occluder
        inside = (keypoints[..., 0] >= x0) & (keypoints[..., 0] < x1)
        visible &= ~(inside & (keypoints[..., 1] >= y0) & (keypoints[..., 1] < y1))
    # The front-facing half of the closed surface: all the silhouette needs, and the first surface a
    # camera ray meets, so also enough to tell whether a joint inside the body is hidden.
    front = [facing_camera(v, faces) for v in shot.vertices]
    for t, v in enumerate(shot.vertices):
        visible[t] &= ~occluded_by_surface(coco[t], v, faces[front[t]], camera.focal, camera.center, margin)
    return visible, front


def _silhouette_inputs(
    settings: SyntheticSettings, shot: Shot, faces, front, detections, occluder, rng
) -> np.ndarray:
    """(T, 2048) features of the rendered, degraded silhouettes in the crops of the noisy detections."""
    camera = shot.camera
    dilate = rng.uniform(0, settings.mask.dilate)
    features = np.zeros((len(shot.vertices), 2048), np.float32)
    size = settings.crop_size
    for t, vertices in enumerate(shot.vertices):
        box = square_box(detections[t, :17, :2], settings.crop_scale)
        uv = to_crop(project(vertices, camera.focal, camera.center), box, size)
        mask = render_silhouette(uv, faces, size, front[t])
        if occluder is not None:
            corners = to_crop(np.asarray(occluder, dtype=float).reshape(2, 2), box, size)
            mask = cut_box(mask, corners.ravel())
        mask = degrade_mask(mask, rng, settings.mask, dilate)
        features[t] = silhouette_features(mask)
    return features


def _rendered_inputs(body, settings: SyntheticSettings, shot: Shot, occluder, backgrounds, rng):
    """(T, 19, 3) detections, (T, 2048) features and (T, 33, 3) world landmarks from BlazePose run on
    the rendered video (``render_detect``), the features from its masks as the demo computes them."""
    from lib.people.build import build_backend

    camera, faces = shot.camera, body.faces.cpu().numpy()
    weights = body.layers[next(iter(body.layers))].lbs_weights.cpu().numpy()
    scene = sample_scene(rng, backgrounds, weights, faces, camera.focal[0], camera.center,
                         (camera.width, camera.height), occluder)  # fmt: skip
    boxes = _person_boxes(shot, camera)

    def backend():
        return build_backend(
            "blazepose", blazepose_dir=settings.blazepose_dir, mask_max_side=settings.mask_max_side
        )

    found = render_and_detect(shot.vertices, faces, scene, backend, boxes)
    features = mask_features(
        found.masks, found.keypoints, camera.width, settings.crop_size, settings.crop_scale
    )
    return add_pelvis_neck_scored(found.keypoints), features, found.world


def _person_boxes(shot: Shot, camera: CameraTrack) -> np.ndarray:
    """(T, 4) x1 y1 x2 y2 pixel boxes of the projected body."""
    pixels = project(shot.vertices, camera.focal, camera.center)  # (T, V, 2)
    return np.concatenate([pixels.min(axis=1), pixels.max(axis=1)], axis=1)


def shape_code(
    betas: np.ndarray, gender: str, num_frames: int, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """(num_frames, SHAPE_CODE_DIM) emulated backbone shape estimate, >= 0 like the features it replaces.

    SPIN's features carry a shape estimate by construction (its regressor reads SMPL betas from them);
    silhouette features at this size carry almost none. This code stands in for it in a controlled
    experiment: betas 1-9 with per-frame Gaussian noise of std ``noise`` (beta 0, mostly height, is left
    out: no image shows it under the scale-depth ambiguity), each split into its positive and negative
    part, and the gender as two flags; the whole halved and tiled to SHAPE_CODE_DIM (so it is not
    drowned by the other ~1,900 features).
    """
    estimate = betas[None, 1:] + rng.normal(0.0, noise, (num_frames, len(betas) - 1))
    sex = np.tile([[gender == "male", gender == "female"]], (num_frames, 1)).astype(float)
    values = np.concatenate([np.maximum(estimate, 0), np.maximum(-estimate, 0), sex], axis=1) / 2
    repeats = -(-SHAPE_CODE_DIM // values.shape[1])
    return np.tile(values, (1, repeats))[:, :SHAPE_CODE_DIM]


def _sample_occluder(rng: np.random.Generator, keypoints: np.ndarray, prob: float):
    """An (x0, y0, x1, y1) pixel box in front of the person for the whole video (a pole or a table edge),
    or None."""
    if rng.random() >= prob:
        return None
    low, high = keypoints.reshape(-1, 2).min(0), keypoints.reshape(-1, 2).max(0)
    width, height = high - low
    if rng.random() < 0.5:  # vertical bar
        x0 = rng.uniform(low[0], high[0])
        bar = rng.uniform(0.08, 0.25) * max(width, 1.0)
        return (x0, low[1] - height, x0 + bar, high[1] + height)
    top = high[1] - rng.uniform(0.15, 0.4) * height  # lower part hidden
    return (low[0] - width, top, high[0] + width, high[1] + height)


def _detect(noise: DetectionNoise, keypoints: np.ndarray, visible: np.ndarray, rng: np.random.Generator):
    """(T, 19, 3) detections: noisy COCO-17 (x, y, score) + pelvis / neck from the noisy pairs."""
    clean = keypoints[:, :17]
    noisy, found = noise.apply(clean, person_scale(clean), rng)
    score = np.where(
        visible[:, :17], rng.uniform(0.7, 0.98, found.shape), rng.uniform(0.15, 0.5, found.shape)
    )
    score = np.where(found, score, rng.uniform(0.0, 0.1, found.shape))
    return add_pelvis_neck_scored(np.concatenate([noisy, score[..., None]], axis=-1))


# ------------------------------------------------------------------------------------------------
# Writing the 3DPW files
# ------------------------------------------------------------------------------------------------
def _r(array: np.ndarray, decimals: int) -> list:
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()


JOINT_FILES = {  # the per-frame joint files: key -> file name
    "coco_cam": "3DPW_{split}_joint_coco_cam.json",
    "h36m_cam": "3DPW_{split}_joint_h36m_cam.json",
    "coco_img": "3DPW_{split}_gt_joint_coco_img.json",
    "coco_noise": "3DPW_{split}_joint_coco_img_noise.json",
}


def write_split(out_dir: Path, split: str, generated: list[tuple[Video, list[str]]]) -> dict:
    """Write one split's 3DPW files into ``out_dir`` from ``_work``'s (video, JSON text of each frame's
    features) pairs; returns its sizes."""
    images, annotations, vitpose, features = [], [], [], {}
    joints = {key: {} for key in JOINT_FILES}
    for video, feature_rows in generated:
        for key, frames in _joint_entries(video).items():
            joints[key][video.name] = frames
        for t in range(len(video.pose)):
            image_id = len(images)  # one person per image: its annotation has the image's id
            images.append(_image_entry(video, t, image_id))
            annotations.append(_annotation_entry(video, t, image_id))
            vitpose.append({"annotation_id": image_id, "keypoints": _r(video.detections[t, :17], 3)})
            features[f"{video.name}_{PERSON_ID}_{t}"] = feature_rows[t]
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    files = {f"3DPW_latest_{split}.json": coco}
    files |= {name.format(split=split): joints[key] for key, name in JOINT_FILES.items()}
    if split != "train":
        files[f"vitpose_3dpw_{split}_output.json"] = vitpose
    if any(video.world is not None for video, _ in generated):
        files[f"blazepose_world_{split}.json"] = _world_landmarks(generated)
    for file_name, content in files.items():
        # json.dumps runs the C encoder; json.dump to a file streams through the pure-Python one.
        (out_dir / file_name).write_text(json.dumps(content, separators=(",", ":")))
    rows = (f"{json.dumps(key)}:{text}" for key, text in features.items())
    (out_dir / f"3DPW_{split}_img_feat.json").write_text("{" + ",".join(rows) + "}")
    return {"sequences": len(generated), "frames": len(images)}


def _image_entry(video: Video, t: int, image_id: int) -> dict:
    """Frame ``t``'s COCO-style image entry (``3DPW_latest_{split}.json``)."""
    return {
        "id": image_id,
        "file_name": f"image_{t:05d}.jpg",
        "width": video.width,
        "height": video.height,
        "sequence": video.name,
        "frame_idx": t,
        "cam_param": {"focal": list(video.focal), "princpt": list(video.center)},
    }


def _annotation_entry(video: Video, t: int, image_id: int) -> dict:
    """Frame ``t``'s person annotation: the box of its visible keypoints and the camera-frame SMPL
    parameters."""
    kp = video.keypoints[t][video.visible[t]] if video.visible[t].any() else video.keypoints[t]
    low, high = kp.min(0), kp.max(0)
    return {
        "id": image_id,
        "image_id": image_id,
        "person_id": PERSON_ID,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": _r([low[0], low[1], *(high - low)], 2),
        "smpl_param": {
            "pose": _r(video.pose[t], 6),
            "shape": _r(video.betas, 6),
            "trans": _r(video.trans[t], 6),
            "gender": video.gender,
        },
    }


def _joint_entries(video: Video) -> dict[str, dict]:
    """{JOINT_FILES key: {str(frame): {person id: rows}}} of one video: camera-frame joints (mm), the
    ground-truth 2D keypoints with their visibility and the detections."""
    pid = str(PERSON_ID)
    entries = {key: {} for key in JOINT_FILES}
    for t in range(len(video.pose)):
        gt2d = np.concatenate([video.keypoints[t], video.visible[t][:, None]], axis=1)
        rows = {
            "coco_cam": _r(video.joints_coco[t], 3),
            "h36m_cam": _r(video.joints_h36m[t], 3),
            "coco_img": _r(gt2d, 3),
            "coco_noise": _r(video.detections[t], 3),
        }
        for key, value in rows.items():
            entries[key][str(t)] = {pid: value}
    return entries


def _world_landmarks(generated: list[tuple[Video, list[str]]]) -> dict:
    """{sequence: {frame: (33, 3) metres or null where BlazePose missed the person}}: the baseline a user
    of BlazePose gets for free, scored against the same ground truth (lib/eval/)."""
    out = {}
    for video, _ in generated:
        frames = {}
        for t, world in enumerate(video.world):
            frames[str(t)] = _r(world, 4) if np.isfinite(world).all() else None
        out[video.name] = frames
    return out


# ------------------------------------------------------------------------------------------------
# The whole dataset
# ------------------------------------------------------------------------------------------------
def settings_hash(settings: SyntheticSettings, noise: DetectionNoise, body_files: list[str]) -> str:
    """SHA-1 over the generator version, the settings, the noise model and the body files' contents."""
    digest = hashlib.sha1()
    fields = asdict(settings)
    # datasets made before render-and-detect and real motion existed keep their hash
    if settings.detector == "noise":
        for key in ("detector", "background_video", "blazepose_dir", "mask_max_side"):
            fields.pop(key)
    if settings.motion_source == "procedural":
        for key in ("motion_source", "mocap_dir"):
            fields.pop(key)
    for key in ("acrobatics", "free_limbs", "athletics"):
        if fields[key] == 0:
            fields.pop(key)
    noise_fields = {k: v for k, v in asdict(noise).items() if v != () or k not in ("bias", "torso")}
    digest.update(json.dumps([GENERATOR_VERSION, fields, noise_fields], sort_keys=True).encode())
    for path in sorted(body_files):
        with open(path, "rb") as f:
            digest.update(hashlib.sha1(f.read()).digest())
    return digest.hexdigest()


def is_current(out_dir: str | os.PathLike, config_hash: str) -> bool:
    """True when ``out_dir`` holds a complete dataset generated with the same settings hash."""
    manifest = Path(out_dir) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("config_hash") == config_hash
    except json.JSONDecodeError:
        return False


_WORKER: dict = {}


def _work(task: tuple[str, int]) -> tuple[Video, list[str]]:
    """One video and the JSON text of each frame's rounded features: number formatting is most of the
    writing time, so it runs here, in the generating worker processes."""
    settings = _WORKER["settings"]
    if settings.detector == "blazepose" and "backgrounds" not in _WORKER:
        _WORKER["backgrounds"] = Backgrounds(settings.background_video)
    body, noise = _WORKER["body"], _WORKER["noise"]
    video = generate_video(body, settings, noise, *task, _WORKER.get("backgrounds"), _WORKER.get("clips", ()))
    rows = [json.dumps(_r(row, settings.feat_decimals), separators=(",", ":")) for row in video.features]
    return video, rows


def generate_dataset(
    body,
    settings: SyntheticSettings,
    noise: DetectionNoise,
    out_dir: str | os.PathLike,
    config_hash: str = "",
    workers: int = 1,
    log=print,
) -> dict:
    """Generate every split and write it to ``out_dir`` atomically (:func:`lib.io.staged_dir`: a failed
    run leaves the previous dataset as it was).

    Returns the manifest (also written as ``manifest.json``).
    """
    start = time.perf_counter()
    with staged_dir(out_dir) as stage:
        tasks, generated = _generate_videos(body, settings, noise, workers)
        splits = {}
        for split in SPLITS:
            chosen = [g for (s, _), g in zip(tasks, generated, strict=True) if s == split]
            splits[split] = write_split(stage, split, chosen)
            log(f"{split}: {splits[split]['sequences']} videos, {splits[split]['frames']} frames")
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "config_hash": config_hash,
            "settings": asdict(settings),
            "splits": splits,
            "image_features": "silhouette features (lib/data/silhouette.py), not SPIN",
            "seconds": round(time.perf_counter() - start, 1),
            "bytes": sum(p.stat().st_size for p in stage.iterdir()),
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _generate_videos(
    body, settings: SyntheticSettings, noise: DetectionNoise, workers: int
) -> tuple[list[tuple[str, int]], list[tuple[Video, list[str]]]]:
    """The (split, index) tasks and ``_work``'s output for each, in ``workers`` forked processes when
    there are several (the body, settings and noise reach them through ``_WORKER``, not pickled)."""
    tasks = [(split, i) for split, n in zip(SPLITS, settings.num_sequences, strict=True) for i in range(n)]
    _WORKER.update(body=body, settings=settings, noise=noise)
    try:
        if settings.motion_source == "real":  # retargeted once, before the workers fork
            _WORKER["clips"] = real_motion_clips(settings.mocap_dir, body)
            tasks = [("test", i) for i in range(len(_WORKER["clips"]))]
        if workers <= 1 or len(tasks) <= 1:
            return tasks, [_work(task) for task in tasks]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                return tasks, list(pool.map(_work, tasks))
        finally:
            torch.set_num_threads(threads)
    finally:
        _WORKER.clear()
