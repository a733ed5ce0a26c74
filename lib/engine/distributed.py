"""Process setup: seeding, determinism, and torchrun's distributed environment (the device: lib/device.py)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from lib.device import resolve_device


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> DistEnv:
    """Join the process group when launched by torchrun (NCCL on GPU, Gloo on CPU; the environment
    variable PMCE_DIST_BACKEND overrides, e.g. 'gloo' for several processes on one GPU, which NCCL
    refuses)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_name, int(os.environ.get("LOCAL_RANK", "0")))
    if world_size > 1 and not dist.is_initialized():
        default = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=os.environ.get("PMCE_DIST_BACKEND", default))
    return DistEnv(rank=rank, world_size=world_size, device=device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # Bitwise-reproducible CPU training (resume tests rely on it); warn instead of failing on GPU ops
        # that have no deterministic implementation.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
