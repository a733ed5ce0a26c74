#!/usr/bin/env python
"""Evaluate a checkpoint (ours or an official ``*.pth.tar``) on the test split of DATA.TEST_LIST.

    python eval.py --cfg configs/<experiment>.yaml [--checkpoint PATH] [KEY VALUE ...]

EVAL.PROTOCOL chooses both the frames and the metrics (lib/eval/selection.py, lib/eval/protocols.py):
'full' (default) predicts every frame of every test video (windows padded at the video ends, all
Human3.6M cameras, the camera-4 figure also reported); 'official' reproduces the official code (its
window set, Human3.6M camera 4 only). Metrics are in mm (ACCEL in mm/frame^2).
Writes to OUTPUT_DIR/EXPERIMENT/eval/<timestamp>/: config.yaml, metrics.json, predictions_<dataset>.npz
(every frame's prediction and target, see lib/eval/predictions.py), per_sequence.csv, report.md,
plots/*.png and tensorboard/ (lib/eval/report.py), and prints a table; with EVAL.MEAN_BASELINE it also
scores a trivial predictor (the mean training target) for reference.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import torch

from lib.cli import UserError, make_parser, run_main
from lib.config import ConfigError, check_model_config, get_cfg
from lib.data.build import dataset_root, image_features, training_source
from lib.device import resolve_device
from lib.engine import build as B
from lib.engine.distributed import DistEnv
from lib.engine.run_dir import check_output_dir, experiment_dir, reporting_disk_full, staged_run_dir
from lib.engine.trainer import weights_finite
from lib.engine.validate import nonfinite_frames, predict, select_frames
from lib.eval.body_fit import fit_videos
from lib.eval.detector_baseline import load_world_landmarks, world_landmark_baseline
from lib.eval.predictions import save_predictions, scored_rows
from lib.eval.protocols import regress
from lib.eval.report import METRIC_ORDER, EvalReport
from lib.eval.scorer import Scorer
from lib.eval.selection import camera_figures, selection_note
from lib.io import write_text_atomic
from lib.models.build import build_model
from lib.models.mirror import Mirror
from lib.models.precision import inference_dtype
from lib.models.weights import load_model_weights


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", metavar="PATH", help="weights to evaluate (default: EVAL.CHECKPOINT)")
    args = parser.parse_args(argv)
    cfg = get_cfg(args.cfg, args.opts)
    checkpoint = args.checkpoint or cfg.EVAL.CHECKPOINT
    if not checkpoint:
        raise UserError("no checkpoint to evaluate: pass --checkpoint PATH or set EVAL.CHECKPOINT")
    if not cfg.DATA.TEST_LIST:
        raise ConfigError("DATA.TEST_LIST is empty: name the datasets to evaluate, e.g. [synthetic]")
    check_output_dir(cfg, group="eval")  # before any data is loaded
    env = DistEnv(rank=0, world_size=1, device=resolve_device(cfg.DEVICE))
    assets = B.build_body_assets(cfg)
    scorer = B.build_scorer(cfg, assets)
    model = load_checked_model(cfg, checkpoint, assets).to(env.device).eval()
    # one mirror per kind of image features (the vertex mirror map is built once)
    kinds = {image_features(name) for name in cfg.DATA.TEST_LIST}
    mirrors = {kind: B.build_mirror(cfg, assets, kind, cfg.EVAL.FLIP_TEST) for kind in kinds}
    results = {}
    # The results folder appears, with eval/latest moved onto it, only once every dataset is scored and
    # written: a failure at any dataset leaves neither a folder nor partial files.
    with (
        reporting_disk_full(experiment_dir(cfg, "eval"), EVAL_DISK_ADVICE),
        staged_run_dir(cfg, group="eval") as run,
    ):
        report = EvalReport(run.path, cfg.EVAL.PROTOCOL, str(checkpoint), assets.faces.cpu().numpy())
        for name in cfg.DATA.TEST_LIST:
            results[name], record = evaluate_dataset(
                cfg, name, model, assets, scorer, env, mirrors[image_features(name)]
            )
            save_predictions(run.path / f"predictions_{name}.npz", record, vertices=cfg.EVAL.SAVE_VERTICES)
            report.add(name, results[name], record)
        summary = {"checkpoint": str(checkpoint), "protocol": cfg.EVAL.PROTOCOL, "results": results}
        write_text_atomic(run.path / "metrics.json", json.dumps(summary, indent=2))
        report.write()
    print(format_table(summary))
    print(f"wrote {run.path}: metrics.json, report.md, per_sequence.csv, predictions_*.npz, plots/")
    return 0


EVAL_DISK_ADVICE = "nothing was kept: free space there or choose another OUTPUT_DIR, then evaluate again"


def load_checked_model(cfg, checkpoint: str, assets: B.BodyAssets) -> torch.nn.Module:
    """The network with the checkpoint's weights, which must fit the config's MODEL keys and be finite."""
    model = build_model(cfg, assets.coarse_mesh)
    check_model_config(cfg, load_model_weights(model, checkpoint), str(checkpoint))
    if not weights_finite(model):
        raise UserError(f"{checkpoint}: the weights hold NaN / inf (a diverged run?); nothing was evaluated")
    return model


def evaluate_dataset(
    cfg, name: str, model, assets: B.BodyAssets, scorer: Scorer, env: DistEnv, mirror: Mirror | None = None
) -> tuple[dict, dict]:
    """metrics.json's entry of one dataset, and its predictions record (``mirror``: flip test)."""
    protocol = cfg.EVAL.PROTOCOL
    loader = B.build_test_loader(cfg, name, assets)
    start = time.perf_counter()
    e = cfg.EVAL
    predictions = predict(model, loader, env.device, e.PRECISION, e.SHARE_FRAMES, False, mirror)
    seconds = time.perf_counter() - start
    check_predictions_finite(predictions, name)
    record = scorer.record(predictions, name)
    scored = scored_rows(record)
    result = {
        "selection": selection_note(name, protocol),
        "frames": len(scored),
        "frames_predicted": len(predictions["video"]),
        "frames_per_s": len(predictions["video"]) / seconds,
        "precision": str(inference_dtype(cfg.EVAL.PRECISION, env.device)).removeprefix("torch."),
        "flip_test": mirror is not None,
        "metrics": scorer.score(predictions, name),
    }
    for key, camera in camera_figures(name, protocol).items():
        subset = select_frames(predictions, predictions["camera_id"] == camera)
        frames = int((record["camera_id"][scored] == camera).sum())
        result[key] = {"frames": frames, "metrics": scorer.score(subset, name)}
    world = load_world_landmarks(dataset_root(cfg, name))
    if world is not None and "pred_mesh" in predictions:
        result["blazepose_world"] = world_baseline(predictions, assets, world)
    if cfg.EVAL.FIT_BODY and "pred_mesh" in predictions:
        d = cfg.DEMO
        fitted = fit_videos(predictions["video"], predictions["frame"].numpy(), predictions["pred_mesh"],
                            assets.body_model, d.SMPL_FIT_ITERS, d.POSE_SMOOTH_SIGMA)  # fmt: skip
        fitted = {**predictions, "pred_mesh": fitted}
        result["fitted_body"] = {"frames": len(scored), "metrics": scorer.score(fitted, name)}
        if world is not None:
            result["fitted_body"]["blazepose_world"] = world_baseline(fitted, assets, world)
    if cfg.EVAL.MEAN_BASELINE:
        means = mean_training_targets(cfg, name, assets, env)
        trivial = {**predictions, **{key: mean.expand_as(predictions[key]) for key, mean in means.items()}}
        result["mean_baseline"] = scorer.score(trivial, name)
    return result, record


def world_baseline(predictions: dict, assets: B.BodyAssets, world: dict) -> dict:
    """The predicted meshes and BlazePose's world landmarks scored on the same frames (COCO-17 joints)."""
    coco = assets.regressors["coco17"]
    pred, gt = (regress(coco, predictions[k]).numpy() for k in ("pred_mesh", "mesh"))
    return world_landmark_baseline(predictions["video"], predictions["frame"].numpy(), pred, gt, world)


def check_predictions_finite(predictions: dict, name: str) -> None:
    """UserError naming how many frames (and the first one) were predicted as NaN / inf."""
    bad = nonfinite_frames(predictions)
    if bad.any():
        first = int(bad.nonzero()[0, 0])
        video, frame = predictions["video"][first], int(predictions["frame"][first])
        raise UserError(
            f"the checkpoint predicts NaN / inf for {int(bad.sum())} of {len(bad)} {name} test frames "
            f"(first: video {video!r}, frame {frame}): the weights overflow on them; nothing was scored"
        )


def mean_training_targets(cfg, name: str, assets: B.BodyAssets, env: DistEnv) -> dict[str, torch.Tensor]:
    """The trivial predictor: mean root-relative mesh and pose over the training windows of ``name`` (of
    the synthetic dataset for its test-only splits)."""
    loader = B.build_loader(cfg, "train", [training_source(name)], assets, env)
    loader.sampler.set_epoch(0)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for batch in loader:
        for target in ("mesh", "pose3d"):
            sums[f"pred_{target}"] = sums.get(f"pred_{target}", 0) + batch[target].sum(0)
        count += batch["pose3d"].shape[0]
    return {key: (total / count)[None] for key, total in sums.items()}


def format_world_baseline(name: str, scores: dict, label: str = "PMCE", width: int = 14) -> str:
    """PMCE vs BlazePose's world landmarks on the frames BlazePose found (and the ground truth's own)."""
    sources = [scores[k] for k in ("model", "blazepose_world", "ground_truth")]

    def row(key: str, count: int) -> str:
        return " / ".join(f"{s[key]:.1f}" for s in sources[:count])

    return (
        f"{name:<{width}}vs BlazePose world landmarks, {scores['frames']} frames "
        f"({label} / BlazePose / truth): "
        f"limb PA-MPJPE {row('limb_pa_mpjpe', 2)}, bone-length std {row('bone_length_std', 3)}, "
        f"acceleration {row('acceleration', 3)}"
    )


def format_table(report: dict) -> str:
    lines = [f"protocol: {report['protocol']}    checkpoint: {report['checkpoint']}"]
    width = max([14, *(len(name) + 2 for name in report["results"])])  # the dataset column
    metrics = "".join(f"{m:>10}" for m in METRIC_ORDER)
    header = f"{'dataset':<{width}}{'predictor':<16}{metrics}{'frames':>9}"
    lines += [header, "-" * len(header)]
    for name, result in report["results"].items():
        rows = [("PMCE", result["metrics"], result["frames"])]
        rows += [(f"PMCE, {key.replace('_', ' ')}", result[key]["metrics"], result[key]["frames"])
                 for key in camera_figures(name, report["protocol"])]  # fmt: skip
        if "fitted_body" in result:
            rows.append(("PMCE + SMPL fit", result["fitted_body"]["metrics"], result["frames"]))
        if "mean_baseline" in result:
            rows.append(("mean target", result["mean_baseline"], result["frames"]))
        for predictor, metrics, frames in rows:
            values = "".join(f"{metrics[m]:>10.1f}" if m in metrics else f"{'-':>10}" for m in METRIC_ORDER)
            lines.append(f"{name:<{width}}{predictor:<16}{values}{frames:>9}")
        for label, scores in (("PMCE", result), ("PMCE + SMPL fit", result.get("fitted_body", {}))):
            if scores.get("blazepose_world", {}).get("frames"):
                lines.append(format_world_baseline(name, scores["blazepose_world"], label, width))
    speeds = ", ".join(
        f"{name} {r['frames_per_s']:.0f} frames/s ({r.get('precision', 'float32')}"
        f"{', flip test' if r.get('flip_test') else ''})"
        for name, r in report["results"].items()
    )
    lines.append(f"mm; ACCEL in mm/frame^2. Inference: {speeds}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_main(main))
