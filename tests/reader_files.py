"""Tiny dataset files in the official formats, a small linear body model and joint regressors."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import torch

from lib.config import get_cfg
from lib.constants import NUM_VERTICES

FEAT_DIM = 2048


class LinearBody:
    """A real (tiny) linear body: template + betas @ shape_dirs + pose @ pose_dirs + transl, in metres."""

    def __init__(self, seed: int = 0, identity: str = "linear-test-body-v1") -> None:
        gen = torch.Generator().manual_seed(seed)
        self.template = torch.randn(NUM_VERTICES, 3, generator=gen) * 0.3
        self.shape_dirs = torch.randn(10, NUM_VERTICES * 3, generator=gen) * 0.01
        self.pose_dirs = torch.randn(72, NUM_VERTICES * 3, generator=gen) * 0.01
        self.identity = identity
        self.calls = 0

    def vertices(self, pose, betas, transl, gender: str):
        self.calls += 1
        offset = {"neutral": 0.0, "male": 0.01, "female": -0.01}[gender]
        verts = (
            self.template
            + offset
            + ((betas @ self.shape_dirs) + (pose @ self.pose_dirs)).view(-1, NUM_VERTICES, 3)
        )
        return verts + transl[:, None]

    def numpy(self, pose, betas, transl, gender: str = "neutral") -> np.ndarray:
        return body_vertices(self, pose, betas, transl, gender)


def body_vertices(body, pose, betas, transl, gender: str = "neutral") -> np.ndarray:
    """(6890, 3) vertices of one parameter set through any body model with ``vertices`` (the data code's
    VertexModel protocol): LinearBody or the generated SMPL body."""
    as_t = lambda a: torch.as_tensor(np.asarray(a, np.float32))[None]  # noqa: E731
    with torch.no_grad():
        return body.vertices(as_t(pose), as_t(betas), as_t(transl), gender)[0].numpy()


def regressor(seed: int, joints: int = 17) -> torch.Tensor:
    """(J, 6890): each joint the mean of 20 random vertices."""
    rng = np.random.default_rng(seed)
    out = np.zeros((joints, NUM_VERTICES), np.float32)
    for j in range(joints):
        out[j, rng.choice(NUM_VERTICES, 20, replace=False)] = 1 / 20
    return torch.from_numpy(out)


def regressors() -> dict[str, torch.Tensor]:
    return {"h36m17": regressor(1), "coco17": regressor(2)}


def cfg(tmp_path: Path, *opts: str):
    return get_cfg(
        opts=[
            "MODEL.SEQ_LEN", "4", "DATA.CACHE_DIR", str(tmp_path / "cache"),
            "DATA.PW3D_DIR", str(tmp_path / "pw3d"), "DATA.H36M_DIR", str(tmp_path / "h36m"),
            "DATA.MPII3D_DIR", str(tmp_path / "mpii3d"), "DATA.COCO_DIR", str(tmp_path / "coco"),
            "DATA.MPII_DIR", str(tmp_path / "mpii"), "DATA.DETECTOR", "gt", *opts,
        ]
    )  # fmt: skip


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _smpl(rng, gender=None) -> dict:
    param = {"pose": (rng.normal(size=72) * 0.1).tolist(), "shape": rng.normal(size=10).tolist()}
    param["trans"] = [0.1, 0.2, 4.0]
    if gender:
        param["gender"] = gender
    return param


# ------------------------------------------------------------------------------------------------------
# 3DPW: two sequences; person 0 of 'courtyard' misses frame 3 (a gap)
# ------------------------------------------------------------------------------------------------------
PW3D_FRAMES = {("courtyard", 0): [0, 1, 2, 4, 5, 6], ("outdoors", 1): [0, 1, 2]}
PW3D_SIZE = {"courtyard": (1080, 1920), "outdoors": (1920, 1080)}


def write_pw3d(root: Path, split_file: str = "test", seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    images, anns, coco_cam, gt_img, h36m_cam, feats, vitpose = [], [], {}, {}, {}, {}, []
    truth = {}
    for (seq, pid), frames in PW3D_FRAMES.items():
        w, h = PW3D_SIZE[seq]
        for f in frames:
            image_id = len(images) + 100
            images.append(
                {"id": image_id, "file_name": f"image_{f:05d}.jpg", "width": w, "height": h, "sequence": seq}
            )
            aid = len(anns) + 1000
            smpl = _smpl(rng, "male" if pid == 0 else "female")
            anns.append({"id": aid, "image_id": image_id, "person_id": pid, "smpl_param": smpl})
            j2d = rng.uniform(100, 900, size=(19, 2))
            c3d, h3d = rng.normal(size=(19, 3)) * 300 + 4000, rng.normal(size=(17, 3)) * 300 + 4000
            for table, value in ((coco_cam, c3d), (gt_img, j2d), (h36m_cam, h3d)):
                table.setdefault(seq, {}).setdefault(str(f), {})[str(pid)] = value.tolist()
            feats[f"{seq}_{pid}_{f}"] = rng.normal(size=FEAT_DIM).round(3).tolist()
            det = np.concatenate([rng.uniform(100, 900, (17, 2)), np.full((17, 1), 0.9)], axis=1)
            vitpose.append({"annotation_id": aid, "keypoints": det.reshape(-1).tolist(), "score": 0.9})
            truth[(seq, pid, f)] = {
                "j2d": j2d,
                "c3d": c3d,
                "h3d": h3d,
                "smpl": smpl,
                "det": det,
                "size": (w, h),
            }
    write_json(root / f"3DPW_latest_{split_file}.json", {"images": images, "annotations": anns})
    write_json(root / f"3DPW_{split_file}_joint_coco_cam.json", coco_cam)
    write_json(root / f"3DPW_{split_file}_gt_joint_coco_img.json", gt_img)
    write_json(root / f"3DPW_{split_file}_joint_h36m_cam.json", h36m_cam)
    write_json(root / f"3DPW_{split_file}_img_feat.json", feats)
    if split_file == "test":
        write_json(root / "vitpose_3dpw_test_output.json", vitpose)
    return truth


# ------------------------------------------------------------------------------------------------------
# Human3.6M: subject 9, action 2, subaction 1, filmed by ``cameras`` (1-4 as the files number them), source
# frames 0..frames-1 (every 2nd kept); frame 4's fit is far from the GT joints, frame 6 has no fit
# ------------------------------------------------------------------------------------------------------
H36M_CAMERAS = {
    1: {"R": [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], "t": [100.0, -200.0, 5000.0]},
    4: {"R": [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], "t": [-50.0, 100.0, 5500.0]},
}


def h36m_image_name(camera: int, frame: int) -> str:
    video = f"s_09_act_02_subact_01_ca_{camera:02d}"
    return f"{video}/{video}_{frame + 1:06d}.jpg"


def write_h36m(
    root: Path, body, reg: torch.Tensor, seed: int = 0, cameras: tuple[int, ...] = (1,), frames: int = 10
) -> dict:
    """Files of one test subject; ``body`` is any body model with ``vertices`` and ``reg`` its H36M-17
    regressor, so that the GT joints agree with the fits (the 25 mm fit check). Also the COCO-setting
    NeuralAnnot files: COCO-19 camera joints (mm) and noisy COCO-19 2D, ``[act][subact][cam][frame]``."""
    rng = np.random.default_rng(seed)
    ann_dir = root / "annotations"
    images, anns, world, fits, cpn, truth, coco_cam, coco_noise = [], [], {}, {}, {}, {}, {}, {}
    for f in range(frames):
        smpl = _smpl(rng)
        smpl["shape"] = (np.asarray(smpl["shape"]) * 0.5).tolist()
        verts_world = body_vertices(body, smpl["pose"], smpl["shape"], smpl["trans"])
        joints_world = reg.numpy() @ verts_world * 1000.0  # mm, consistent with the fit
        if f == 4:
            joints_world = joints_world + rng.normal(size=joints_world.shape) * 100  # fit far from GT
        world.setdefault("2", {}).setdefault("1", {})[str(f)] = joints_world.tolist()
        if f != 6:
            fits.setdefault("2", {}).setdefault("1", {})[str(f)] = smpl
        for cam in cameras:
            name = h36m_image_name(cam, f)
            images.append(
                {"id": len(images), "file_name": name, "width": 1000, "height": 1002, "subject": 9,
                 "action_idx": 2, "subaction_idx": 1, "frame_idx": f, "cam_idx": cam}
            )  # fmt: skip
            anns.append({"id": 50 + len(anns), "image_id": images[-1]["id"], "bbox": [0, 0, 100, 100]})
            cpn[name] = rng.uniform(0, 1000, (17, 2)).tolist()
            _nest(coco_cam, (2, 1, cam, f), (rng.normal(size=(19, 3)) * 300 + 5000).tolist())
            _nest(coco_noise, (2, 1, cam, f), rng.uniform(0, 1000, (19, 3)).tolist())
        truth[f] = {
            "joints_world": joints_world / 1000.0,
            "verts_world": verts_world,
            "cpn": np.array(cpn[h36m_image_name(cameras[0], f)]),
            "coco_cam": np.array(coco_cam["2"]["1"][str(cameras[0])][str(f)]) / 1000.0,
            "coco_noise": np.array(coco_noise["2"]["1"][str(cameras[0])][str(f)]),
        }
    write_json(ann_dir / "Human36M_subject9_data.json", {"images": images, "annotations": anns})
    cams = {str(c): {**H36M_CAMERAS[c], "f": [1145.0, 1144.0], "c": [512.0, 515.0]} for c in cameras}
    write_json(ann_dir / "Human36M_subject9_camera.json", cams)
    write_json(ann_dir / "Human36M_subject9_joint_3d.json", world)
    write_json(ann_dir / "Human36M_subject9_SMPL_NeuralAnnot.json", fits)
    write_json(ann_dir / "Human36M_subject9_joint_coco_cam_3d_neuralannot.json", coco_cam)
    write_json(ann_dir / "Human36M_subject9_joint_coco_img_noise_neuralannot.json", coco_noise)
    write_json(root / "Human36M_test_cpn_joint_2d.json", cpn)
    order = rng.permutation(len(images))  # the feature DB's own order and path prefix
    joblib.dump(
        {"features": rng.normal(size=(len(images), FEAT_DIM)).astype(np.float32)[order],
         "img_name": np.array([f"images/{images[i]['file_name']}" for i in order])},
        root / "h36m_test_imgfeat_db_concat.pt",
    )  # fmt: skip
    first = H36M_CAMERAS[cameras[0]]
    return {"truth": truth, "R": np.array(first["R"]), "t": np.array(first["t"]) / 1000.0, "order": order}


# ------------------------------------------------------------------------------------------------------
# MPI-INF-3DHP test, TCMR's mpii3d_val_scale12_db.pt: sequence -> kept image numbers (0-based; a missing one
# is a frame TCMR removed, which starts a new '_seg'), and the frames whose valid_i is 0
# ------------------------------------------------------------------------------------------------------
MPII3D_TEST_FRAMES = {1: tuple(range(5)), 5: tuple(range(4))}  # TS1 2048x2048, TS5 1920x1080


def mpii3d_test_image(sequence: int, frame: int) -> str:
    return f"data/mpii_3d/mpi_inf_3dhp_test_set/TS{sequence}/imageSequence/img_{frame + 1:06d}.jpg"


def write_mpii3d_test(
    root: Path,
    seed: int = 0,
    frames: dict[int, tuple[int, ...]] = MPII3D_TEST_FRAMES,
    invalid: tuple[tuple[int, int], ...] = ((1, 2),),
) -> dict:
    rng = np.random.default_rng(seed)
    rows = [(ts, f) for ts, kept in frames.items() for f in kept]
    segments = {ts: np.cumsum(np.diff(kept, prepend=kept[0]) > 1) for ts, kept in frames.items()}
    vid_names = [f"subj{ts}_seg{s}" for ts, kept in frames.items() for s in segments[ts]]
    names = [mpii3d_test_image(ts, f) for ts, f in rows]
    n = len(rows)
    joints2d = np.concatenate([rng.uniform(0, 1000, (n, 49, 2)), np.ones((n, 49, 1))], axis=-1).astype(
        np.float32
    )
    db = {
        "vid_name": np.array(vid_names), "frame_id": np.array([f"img_{f + 1:06d}" for _, f in rows]),
        "img_name": np.array(names), "joints2D": joints2d,
        "joints3D": rng.normal(size=(n, 49, 3)).astype(np.float32), "bbox": np.zeros((n, 4), np.float32),
        "features": rng.normal(size=(n, FEAT_DIM)).astype(np.float32),
        "valid_i": np.array([[float(row not in invalid)] for row in rows]),  # (N, 1), as read from the .mat
    }  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    joblib.dump(db, root / "mpii3d_val_scale12_db.pt")
    dets = [
        {"image_name": name, "keypoints": rng.uniform(0, 1000, (17, 3)).reshape(-1).tolist(), "score": 1.0}
        for name in names
    ]
    write_json(root / "vitpose_mpii3d_val_output.json", dets)
    return db


MPII3D_TRAIN_OFF = (1, 2)  # (subject, frame) whose noisy 2D is 200 px off the truth: no targets
MPII3D_TRAIN_SHIFT = {"near": 5.0, "off": 200.0}  # x shift of the noisy 2D, pixels (person ~2000 px)


def write_mpii3d_train(root: Path, seed: int = 0) -> dict:
    """Two subjects x one sequence x one camera, 4 frames each; features named as the official DB; the
    joint files keyed ``[subject][seq][cam][frame]`` as the official reader reads them. Returns the
    written joint arrays by (subject, frame)."""
    rng = np.random.default_rng(seed)
    images, anns, fits, cams, feat_names, truth = [], [], {}, {}, [], {}
    files = {name: {} for name in ("coco_cam", "gt_img", "h36m_cam", "noise_img")}
    for s in (1, 2):
        cams.setdefault(str(s), {}).setdefault("1", {})["0"] = {
            "focal": [1500.0, 1500.0], "princpt": [1024.0, 1024.0], "R": np.eye(3).tolist(),
            "t": [0.0, 0.0, 0.0], "img_shape": [2048, 2048],
        }  # fmt: skip
        for f in range(4):
            image_id = len(images)
            images.append(
                {"id": image_id, "file_name": f"S{s}/Seq1/imageFrames/video_0/frame_{f:06d}.jpg",
                 "width": 2048, "height": 2048, "subject_idx": s, "seq_idx": 1, "cam_idx": 0, "frame_idx": f}
            )  # fmt: skip
            anns.append({"id": 500 + image_id, "image_id": image_id})
            fits.setdefault(str(s), {}).setdefault("1", {})[str(f)] = _smpl(rng)
            gt = rng.uniform(0, 2048, (19, 2))
            shift = MPII3D_TRAIN_SHIFT["off" if (s, f) == MPII3D_TRAIN_OFF else "near"]
            truth[(s, f)] = {
                "coco_cam": rng.normal(size=(19, 3)) * 300, "gt_img": gt,
                "h36m_cam": rng.normal(size=(17, 3)) * 300,
                "noise_img": np.concatenate([gt + np.array([shift, 0.0]), np.ones((19, 1))], axis=1),
            }  # fmt: skip
            for name, tree in files.items():
                _nest(tree, (s, 1, 0, f), truth[(s, f)][name].tolist())
            feat_names.append(f"data/mpii_3d/S{s}/Seq1/video_0/{f:06d}.jpg")
    write_json(root / "MPI-INF-3DHP.json", {"images": images, "annotations": anns})
    write_json(root / "MPI-INF-3DHP_SMPL_NeuralAnnot.json", fits)
    write_json(root / "MPI-INF-3DHP_camera.json", cams)
    write_json(root / "MPII3D_train_joint_coco_cam.json", files["coco_cam"])
    write_json(root / "MPII3D_train_gt_joint_coco_img.json", files["gt_img"])
    write_json(root / "MPII3D_train_joint_h36m_cam.json", files["h36m_cam"])
    write_json(root / "MPII3D_train_joint_coco_img_noise.json", files["noise_img"])
    features = rng.normal(size=(len(feat_names), FEAT_DIM)).astype(np.float32)
    joblib.dump({"features": features, "img_name": np.array(feat_names)}, root / "mpii3d_train_scale12_db.pt")
    return truth


def _nest(tree: dict, keys: tuple, value) -> None:
    """``tree[str(k0)][str(k1)]... = value``, creating the levels."""
    for key in keys[:-1]:
        tree = tree.setdefault(str(key), {})
    tree[str(keys[-1])] = value


# ------------------------------------------------------------------------------------------------------
# COCO and MPII: static images
# ------------------------------------------------------------------------------------------------------
COCO_SHIFT = {16: 30.0}  # annotations whose keypoints are this far (pixels, x) from their fit's projection
COCO_CAMERA = {"s": 600.0, "t": [320.0, 240.0]}  # weak perspective: pixels = s * metres + t


def coco_fit_2d(body, reg: torch.Tensor, smpl_param: dict) -> np.ndarray:
    """(17, 2) pixels: the fit's COCO-17 joints (untranslated body, extreme shapes reset) projected."""
    shape = np.asarray(smpl_param["shape"])
    shape = np.zeros(10) if np.abs(shape).max() > 3 else shape
    joints = reg.numpy() @ body_vertices(body, smpl_param["pose"], shape, np.zeros(3))
    return joints[:, :2] * COCO_CAMERA["s"] + np.asarray(COCO_CAMERA["t"])


def write_coco(root: Path, body, reg: torch.Tensor, seed: int = 0) -> tuple[dict, dict]:
    """Annotations 10-16 and their SMPLify fits: 11 has an unlabelled joint, 12 is a crowd, 13 has a
    zero-width box, 14 has no fit, 10's fit has an extreme shape, and the keypoints are the fit's projection
    (through ``body`` and its COCO-17 regressor ``reg``) 1 px off, or ``COCO_SHIFT`` off."""
    rng = np.random.default_rng(seed)
    ann_dir = root / "annotations"
    images = [
        {"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg", "width": 640, "height": 480} for i in range(3)
    ]
    anns, fits = [], {}
    for aid in range(10, 17):
        param = {
            "pose": (rng.normal(size=72) * 0.1).tolist(),
            "shape": rng.normal(size=10).clip(-2, 2).tolist(),
        }
        if aid == 10:
            param["shape"][4] = 3.5  # beyond |beta| = 3: the official reader uses the mean shape
        xy = coco_fit_2d(body, reg, param) + np.array([COCO_SHIFT.get(aid, 1.0), 0.0])
        kps = np.concatenate([xy, np.full((17, 1), 2.0)], axis=1)
        if aid == 11:
            kps[3] = 0  # an unlabelled joint
        anns.append({"id": aid, "image_id": aid % 3, "keypoints": kps.reshape(-1).tolist(),
                     "num_keypoints": 17, "iscrowd": int(aid == 12),
                     "bbox": [10, 10, 0 if aid == 13 else 50, 80]})  # fmt: skip
        if aid != 14:
            fits[str(aid)] = {"smpl_param": param, "cam_param": COCO_CAMERA}
    write_json(ann_dir / "person_keypoints_train2014.json", {"images": images, "annotations": anns})
    write_json(ann_dir / "coco_smplify_train.json", fits)
    aids = np.array([a["id"] for a in anns])
    joblib.dump(
        {"features": rng.normal(size=(len(aids), FEAT_DIM)).astype(np.float32), "aid": aids,
         "img_name": np.array([images[a % 3]["file_name"] for a in aids])},
        ann_dir / "coco_train_db.pt",
    )  # fmt: skip
    return {str(a["id"]): a for a in anns}, fits


def write_mpii(root: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    images = [{"id": i, "file_name": f"{i:09d}.jpg", "width": 1280, "height": 720} for i in range(2)]
    anns = [
        {"id": 20 + i, "image_id": i % 2, "keypoints": [0.0] * 48, "bbox": [0, 0, 10, 10]} for i in range(4)
    ]
    fits = {
        str(a["id"]): {
            "smpl_param": _smpl(rng),
            "cam_param": {"focal": [1000.0, 1000.0], "princpt": [640.0, 360.0]},
        }
        for a in anns[:3]
    }  # annotation 23 has no fit
    write_json(root / "train.json", {"images": images, "annotations": anns})
    write_json(root / "MPII_train_SMPL_NeuralAnnot.json", fits)
    aids = np.array([a["id"] for a in anns])
    joblib.dump(
        {
            "features": rng.normal(size=(4, FEAT_DIM)).astype(np.float32),
            "aid": aids,
            "img_name": aids.astype(str),
        },
        root / "mpii_train_db.pt",
    )
    return fits
