"""Validation during training: predict every window of a loader and score it (lib/eval/scorer.py); render
one fixed window's mesh for TensorBoard.

Shapes: N windows (one target frame each), J joints, V vertices.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Subset, default_collate

from lib.engine.trainer import NONFINITE_FRAMES, unwrap
from lib.eval.mesh_view import compare_meshes
from lib.eval.scorer import Scorer
from lib.models.mirror import Mirror, window_runner
from lib.models.precision import inference_dtype, reduced_precision

TARGET_KEYS = ("mesh", "mesh_valid", "pose3d", "pose3d_valid", "pose3d_h36m", "pose3d_h36m_valid")
# Metadata of each window's target frame that the protocols use (lib/data/video_dataset.py).
META_KEYS = ("frame", "segment", "camera_id", "frame_valid")
PREVIEW_HEIGHT = 256  # pixels of the validation mesh image (kept small: it is rendered every validation)


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    precision: str = "float32",
    share_frames: bool = True,
    keep_float32: bool = True,
    mirror: Mirror | None = None,
) -> dict:
    """Run ``model`` over ``loader`` in order; concatenate on the CPU the predictions, the targets and,
    per window, its target frame's video id, frame number, segment, camera id and valid flag (N,).

    ``precision``: 'float32', 'bfloat16' or 'auto' (lib/models/precision.py). ``share_frames``: the
    per-frame parts of the network once per frame of the loader's windows (lib/models/shared_frames.py;
    the same outputs) where the loader's dataset says which frames each window reads. ``keep_float32``
    False: a bfloat16 run frees the float32 weights instead of restoring them (a model that is not
    trained or run in float32 afterwards: evaluation). ``mirror``: each window's prediction averaged
    with the mirrored window's (test-time flip augmentation, lib/models/mirror.py)."""
    model = unwrap(model).eval()  # the bare network: no gradients to synchronise
    run = batch_runner(model, loader, device, share_frames, mirror)
    parts: dict[str, list] = {"video": [], **{key: [] for key in META_KEYS}}
    with reduced_precision(model, inference_dtype(precision, device), restore=keep_float32):
        for batch in loader:
            preds = prediction_dict(run(batch))
            for key, value in [*preds.items(), *((k, batch[k]) for k in TARGET_KEYS if k in batch)]:
                parts.setdefault(key, []).append(value.float().cpu())
            parts["video"].extend(batch["video"])
            for key in META_KEYS:
                parts[key].append(batch[key])
    return {k: v if k == "video" else torch.cat(v) for k, v in parts.items()}


def batch_runner(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    share_frames: bool,
    mirror: Mirror | None = None,
) -> Callable[[dict], Tensor | tuple]:
    """batch -> the model's output: window by window, or with the per-frame parts shared when asked and
    possible (a model with the per-frame interface, a dataset that says which frames each window reads);
    averaged with the mirrored windows' prediction when ``mirror`` is given."""
    rows = window_frames(loader.dataset) if share_frames else None
    run = window_runner(model, rows is not None, mirror)

    def batch_output(batch: dict) -> Tensor | tuple:
        pose2d, feats = batch["pose2d"].to(device), batch["img_feat"].to(device)
        slots = None if rows is None else torch.from_numpy(rows[batch["index"].numpy()])
        return run(pose2d, feats, slots)

    return batch_output


def window_frames(dataset: torch.utils.data.Dataset) -> np.ndarray | None:
    """(W, T) the frame-table rows each window of ``dataset`` (a VideoDataset or a Subset of one; items
    carry their window's ``index``) reads; None for other datasets."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return getattr(getattr(dataset, "windows", None), "indices", None)


def nonfinite_frames(predictions: dict) -> Tensor:
    """(N,) bool: the frames of ``predict``'s output whose predictions hold NaN / inf."""
    preds = [v.flatten(1) for k, v in predictions.items() if k.startswith("pred_")]
    return ~torch.cat(preds, dim=1).isfinite().all(dim=1)


def select_frames(predictions: dict, keep: Tensor) -> dict:
    """The frames of ``predict``'s output where ``keep`` (N,) bool is True."""
    videos = [v for v, k in zip(predictions["video"], keep.tolist(), strict=True) if k]
    return {k: videos if k == "video" else v[keep] for k, v in predictions.items()}


def prediction_dict(output: Tensor | tuple) -> dict[str, Tensor]:
    """The model's output by name: 'pred_pose3d' (stage 1), or 'pred_mesh', 'pred_joints', 'pred_pose3d'."""
    if isinstance(output, Tensor):
        return {"pred_pose3d": output}
    return {f"pred_{k}": v for k, v in output._asdict().items()}


def make_validator(
    loader: torch.utils.data.DataLoader, device: torch.device, scorer: Scorer, dataset: str
) -> Callable[[nn.Module], dict[str, float]]:
    """model -> ``scorer``'s metrics of its predictions on ``loader``, the split of ``dataset`` (the
    training mode is restored after), with NONFINITE_FRAMES, the number of frames predicted as NaN / inf,
    when there are any."""

    def validate(model: nn.Module) -> dict[str, float]:
        was_training = model.training
        predictions = predict(model, loader, device)
        model.train(was_training)
        values = scorer.score(predictions, dataset)
        nonfinite = int(nonfinite_frames(predictions).sum())
        return {**values, NONFINITE_FRAMES: float(nonfinite)} if nonfinite else values

    return validate


def make_preview(
    dataset: torch.utils.data.Dataset, faces: Tensor, device: torch.device, index: int | None = None
) -> Callable[[nn.Module], np.ndarray]:
    """model -> (PREVIEW_HEIGHT, W, 3) uint8 RGB image of its mesh for one fixed window of ``dataset``
    (the middle one by default) next to the ground truth; the training mode is restored after."""
    item = default_collate([dataset[len(dataset) // 2 if index is None else index]])
    caption = f"{item['video'][0]} frame {int(item['frame'][0])}"
    faces_np = faces.cpu().numpy()

    @torch.no_grad()
    def preview(model: nn.Module) -> np.ndarray:
        was_training = model.training
        model.eval()
        mesh = prediction_dict(model(item["pose2d"].to(device), item["img_feat"].to(device)))["pred_mesh"]
        model.train(was_training)
        image = compare_meshes(mesh[0].float().cpu().numpy(), item["mesh"][0].numpy(), faces_np,
                               height=PREVIEW_HEIGHT, caption=caption)  # fmt: skip
        return np.ascontiguousarray(image[..., ::-1])  # OpenCV's BGR -> TensorBoard's RGB

    return preview
