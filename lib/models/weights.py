"""Reading network weights from checkpoints: ours and the official ``*.pth.tar`` files.

Loading is strict: a checkpoint that does not fit raises ``CheckpointMismatchError`` listing every
missing, unexpected and mis-shaped key instead of silently loading part of it.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lib.errors import UserError

# Where a checkpoint keeps its network weights: ours ('model'), the official ones ('model_state_dict').
STATE_DICT_KEYS = ("model", "model_state_dict", "state_dict")
# Wrappers that prefix every key: DataParallel / DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_MAX_LISTED = 10


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file cannot be read or holds no network weights."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint's weights do not fit the network built from the config."""


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file on the CPU without executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    # Official checkpoints store the MultiStepLR milestones as a collections.Counter.
    with torch.serialization.safe_globals([collections.Counter]):
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated file, not a torch file, unexpected pickled objects
            raise CheckpointError(f"cannot read checkpoint {path}: {_unreadable(path, err)}") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    return checkpoint


def _unreadable(path: Path, err: Exception) -> str:
    """What is wrong with a file torch.load refused, on one line."""
    refused = [line.strip() for line in str(err).splitlines() if "WeightsUnpickler error:" in line]
    if refused:  # a pickled object other than tensors and plain containers: never run
        detail = refused[0].split("WeightsUnpickler error:", 1)[1].split(". Please use")[0].strip()
        return (
            f"it holds Python objects other than tensors and plain containers ({detail}); such files are "
            "refused unread (they could run code): load the weights alone as a state dict"
        )
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (
        f"the file ({path.stat().st_size} bytes) is truncated, corrupt or not a PyTorch checkpoint "
        f"({first.split('. This is an internal miniz error')[0]}); use a complete checkpoint, e.g. a run's "
        "last.pth or best.pth"
    )


def extract_state_dict(checkpoint: Mapping, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The network weights of a checkpoint dictionary, with wrapper prefixes removed."""
    for key in STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            state = checkpoint[key]
            break
    else:
        if not checkpoint or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            raise CheckpointError(
                f"{source} has no network weights: expected one of the entries {STATE_DICT_KEYS} "
                f"or a plain state dict; found entries {sorted(checkpoint)[:_MAX_LISTED]}"
            )
        state = checkpoint
    return {_strip_wrappers(key): value for key, value in state.items()}


def select_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Entries under ``prefix`` (e.g. 'pose_lifter.') with the prefix removed; all entries if none has it."""
    selected = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    return selected or dict(state)


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strictly load ``state`` into ``model``; raise ``CheckpointMismatchError`` describing any misfit."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    if missing or unexpected or misshaped:
        parts = [f"{source} does not fit the network built from the config"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if items:
                listed = "\n    ".join(items[:_MAX_LISTED])
                more = f"\n    ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
                parts.append(f"  {len(items)} {title} keys:\n    {listed}{more}")
        parts.append("  Check MODEL.INPUT_JOINT_SET, MODEL.SEQ_LEN and the MODEL.DECODER variant switches.")
        raise CheckpointMismatchError("\n".join(parts))
    model.load_state_dict(state, strict=True)


def load_model_weights(model: nn.Module, path: str | os.PathLike, prefix: str = "") -> str | None:
    """Load a checkpoint file into ``model``; ``prefix`` selects a sub-network (e.g. 'pose_lifter.').

    Works with our checkpoints and with the official ``pose_*.pth.tar`` / ``mesh_*.pth.tar`` files.
    Returns the config text saved in the checkpoint (ours), or None (official ones).
    """
    checkpoint = read_checkpoint(path)
    state = extract_state_dict(checkpoint, source=str(path))
    if prefix:
        state = select_prefix(state, prefix)
    load_weights(model, state, source=str(path))
    saved = checkpoint.get("config")
    return saved if isinstance(saved, str) else None


def _strip_wrappers(key: str) -> str:
    for prefix in WRAPPER_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key
