"""Which torch device a run uses (``DEVICE`` in the config).

Training, evaluation and the demo all resolve ``DEVICE`` the same way; this lives on the ground floor so
that the demo and the image-feature backbones need not import the training engine for it.
"""

from __future__ import annotations

import torch

from lib.errors import UserError


class DeviceError(UserError, RuntimeError):
    """The config asks for a device this machine does not have."""


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> this process's GPU when CUDA is available, else the CPU; otherwise the named device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"DEVICE {name!r} was asked for but CUDA is not available: use DEVICE cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device
