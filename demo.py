#!/usr/bin/env python
"""Run PMCE on a video or an image folder: meshes, SMPL parameters, a camera and an overlay video.

    python demo.py --video PATH [--cfg FILE] [--checkpoint FILE] [--out DIR] [KEY VALUE ...]

Without ``--cfg`` the configuration saved in the checkpoint is used (our checkpoints carry one; an
official ``mesh_vis.pth.tar`` needs ``--cfg configs/demo_official.yaml``). DEMO.* keys choose the people
backend, the image features and the outputs (see lib/config.py). Writes ``track_NNN.npz``,
``animation.glb`` and ``overlay.mp4`` (and optionally per-frame ``.obj``) to ``--out``
(default: output/demo/<video name>/).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from lib.cli import UserError, make_parser, run_main
from lib.config import check_model_config, get_cfg, get_cfg_from_text, target_index
from lib.device import resolve_device
from lib.engine import build as B
from lib.engine.run_dir import check_writable_dir, reporting_disk_full
from lib.models.build import build_model
from lib.models.weights import extract_state_dict, load_weights, read_checkpoint

REGRESSED_JOINT_SETS = ("h36m17", "smpl24")
DEMO_DISK_ADVICE = "nothing was kept (--out is as it was): free space there or pass another --out, then rerun"
# What a demo run writes into its output folder (anything else there makes the run refuse the folder).
DEMO_OUTPUT = re.compile(r"track_\d{3}\.(npz|glb|bvh)|animation\.glb|overlay\.mp4|summary\.json|meshes")


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--video", required=True, metavar="PATH", help="video file or folder of images")
    parser.add_argument("--checkpoint", metavar="FILE", help="mesh-stage weights (default: DEMO.CHECKPOINT)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: output/demo/<video name>)")
    parser.add_argument(
        "--focal", type=float, metavar="PIXELS", help="the camera's focal length (default: DEMO.FOCAL_LENGTH)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    opts = [*args.opts, *(["DEMO.FOCAL_LENGTH", str(args.focal)] if args.focal is not None else [])]
    cfg, checkpoint, weights = demo_config(args.cfg, args.checkpoint, opts)
    if cfg.STAGE != "mesh":
        raise UserError(f"the demo needs a mesh-stage model; the config has STAGE {cfg.STAGE!r}")
    out_dir = Path(args.out) if args.out else Path(cfg.OUTPUT_DIR) / "demo" / Path(args.video).stem
    check_output_dir(out_dir)
    print(f"model: {checkpoint} (experiment {cfg.EXPERIMENT})")
    with reporting_disk_full(out_dir, DEMO_DISK_ADVICE):
        result = run(cfg, checkpoint, weights, args.video, out_dir)
    for path in result.files:
        if path.parent == out_dir:
            print(f"wrote {path}")
    seconds = time.perf_counter() - start
    frames = result.timer.stages["people"][1]
    print(f"demo finished in {seconds:.1f} s ({frames / seconds:.1f} frames/s end to end, {frames} frames)")
    return 0


def demo_config(cfg_path: str | None, checkpoint: str | None, opts: Sequence[str]):
    """The config (from ``--cfg``, else the one saved in the checkpoint), the checkpoint path and its
    network weights (the file is read once)."""
    cfg = get_cfg(cfg_path, opts)
    checkpoint = checkpoint or cfg.DEMO.CHECKPOINT
    if not checkpoint:
        raise UserError("no model to run: pass --checkpoint FILE, e.g. output/synthetic_mesh/latest/best.pth")
    contents = read_checkpoint(checkpoint)
    weights = extract_state_dict(contents, source=str(checkpoint))
    saved = contents.get("config")
    if cfg_path is not None:
        check_model_config(cfg, saved, str(checkpoint))
        return cfg, checkpoint, weights
    if not isinstance(saved, str):
        raise UserError(
            f"{checkpoint} carries no config (an official checkpoint?): pass --cfg, e.g. "
            "configs/demo_official.yaml for mesh_vis.pth.tar"
        )
    # The model's settings come from training; the DEMO.* settings of that time do not apply.
    cfg = get_cfg_from_text(saved, opts, source=f"config saved in {checkpoint}", ignore=["DEMO"])
    return cfg, checkpoint, weights


def run(cfg, checkpoint: str, weights: Mapping[str, torch.Tensor], video: str, out_dir: Path):
    """Build every stage from the config and run the pipeline (imports stay inside: fast ``--help``)."""
    from lib.demo.features import build_feature_fn
    from lib.demo.overlay import OverlayRenderer
    from lib.demo.pipeline import DemoSettings, run_demo
    from lib.demo.video import build_frame_source

    d = cfg.DEMO
    source = build_frame_source(cfg, video)  # checks the input before the model is built
    assets = B.build_body_assets(cfg)
    model = build_model(cfg, assets.coarse_mesh)
    load_weights(model, weights, source=str(checkpoint))
    model.to(resolve_device(cfg.DEVICE)).eval()
    faces = assets.faces.cpu().numpy()
    regressors = {name: assets.regressors[name].cpu().numpy() for name in REGRESSED_JOINT_SETS}
    settings = DemoSettings(
        seq_len=cfg.MODEL.SEQ_LEN,
        target_index=target_index(cfg),
        pad_mode=d.PAD_MODE,
        batch_size=d.BATCH_SIZE,
        min_track_len=d.MIN_TRACK_LEN,
        iou_threshold=d.TRACK_IOU,
        max_gap=d.TRACK_MAX_GAP,
        focal=d.FOCAL_LENGTH,
        camera_sigma=d.CAMERA_SMOOTH_SIGMA,
        show=d.SHOW,
        save_objs=d.SAVE_OBJ,
        save_animation=d.SAVE_GLB,
        precision=cfg.EVAL.PRECISION,  # inference settings are shared with evaluation
        share_frames=cfg.EVAL.SHARE_FRAMES,
        mirror=B.build_mirror(cfg, assets, d.FEATURES, d.FLIP_TEST),
    )
    body = assets.body_model
    backend = people_backend(cfg)
    try:
        return run_demo(
            source,
            backend,
            model,
            build_feature_fn(cfg),
            faces,
            out_dir,
            settings,
            regressors=regressors,
            fit_body=body_fitter(body, d.SMPL_FIT_ITERS, d.POSE_SMOOTH_SIGMA) if d.FIT_SMPL else None,
            export_rig=rig_exporter(body) if d.FIT_SMPL and d.SAVE_RIG else None,
            draw=OverlayRenderer(faces, d.OVERLAY_MAX_SIDE, d.SIDE_VIEW) if d.SAVE_VIDEO else None,
        )
    finally:
        getattr(backend, "close", lambda: None)()


def check_output_dir(out_dir: Path) -> None:
    """The output folder is replaced as a whole by each run: refuse one that holds anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; pass a folder (it is created if missing)")
    check_writable_dir(out_dir.parent, f"--out {out_dir}")  # the run is staged next to it, then moved
    if out_dir.is_dir():
        foreign = [p.name for p in out_dir.iterdir() if not DEMO_OUTPUT.fullmatch(p.name)]
        if foreign:
            raise UserError(
                f"--out {out_dir} holds files the demo did not write ({', '.join(sorted(foreign)[:3])}); "
                "each run replaces its output folder, so pass a new or empty folder"
            )


def people_backend(cfg):
    """The backend named by ``DEMO.PEOPLE`` with its DEMO.* settings (masks when the image features are
    silhouettes)."""
    from lib.people.build import build_backend

    d = cfg.DEMO
    return build_backend(
        d.PEOPLE,
        blazepose_dir=d.BLAZEPOSE_DIR,
        detect_every=d.DETECT_EVERY,
        reacquire_frames=d.TRACK_MAX_GAP,
        detection_file=d.DETECTION_FILE,
        frame_offset=d.DETECTION_FRAME_OFFSET,
        onnx_detector=d.ONNX_DETECTOR,
        onnx_pose=d.ONNX_POSE,
        min_score=d.MIN_SCORE,
        mask_max_side=d.MASK_MAX_SIDE if d.FEATURES == "silhouette" else 0,
        threads=d.PEOPLE_THREADS,
    )


def body_fitter(body, iters: int, smooth_sigma: float):
    """fit(vertices (N, V, 3)) -> the track's BodyFit (neutral body): SMPL pose and one shape fitted to
    the network's meshes, the joint rotations and the translation filtered over time (``smooth_sigma``
    frames), and the body and joints of the filtered parameters."""
    from lib.body.fit import fit_smpl_smoothed, one_torch_thread
    from lib.demo.records import BodyFit

    def fit(vertices: np.ndarray) -> BodyFit:
        with one_torch_thread(), torch.no_grad():
            smpl = fit_smpl_smoothed(body, vertices, iters, smooth_sigma)
            joints = body.joints(torch.from_numpy(smpl.vertices), "coco19").numpy()
        return BodyFit(smpl.pose, smpl.betas, smpl.transl, smpl.vertices, joints, smpl.vertex_error_m)

    return fit


def rig_exporter(body):
    """export(folder, name, fit, cam_t, times) -> ``name.glb`` (skinned) and ``name.bvh`` of the fit."""
    from lib.demo.rig_export import rig_from_smpl, save_bvh, save_skinned_glb

    def export(folder: Path, name: str, fit, cam_t: np.ndarray, times: np.ndarray) -> list[Path]:
        rig = rig_from_smpl(body, fit.pose, fit.betas, fit.transl, cam_t, times, name=name)
        return [save_skinned_glb(folder / f"{name}.glb", rig), save_bvh(folder / f"{name}.bvh", rig)]

    return export


if __name__ == "__main__":
    sys.exit(run_main(main))
