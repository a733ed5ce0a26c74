"""bfloat16 inference: the weights of the bulk layers cast once, the coordinate layers kept in float32.

A plain ``torch.autocast`` around the forward is slower than float32 at batch 32 on CPU: it casts every
weight again at each call, runs the GRU's recurrent GEMMs through per-step casts, and sends the upsampler
down a batched-GEMM path. Here instead:

* every ``nn.Linear`` / ``nn.GRU`` is cast to bfloat16 once, on entry (and back on exit), except the layers
  a module lists in ``FLOAT32_LAYERS``: those whose input or output is a coordinate (joint / vertex
  embeddings, coordinate heads, the upsampler, the pose fusion), where bfloat16's 8-bit mantissa would be
  millimetres of error; they are a small share of the work;
* each layer computes in its weight's dtype (a forward pre-hook casts its input), so GEMMs and the
  attention kernels run in bfloat16 with float32 accumulation, while the residual streams, norms, the
  GRU's gate arithmetic and hidden state (lib/models/gru.py) stay float32 (bfloat16 + float32 promotes).

CPU: profitable with native bfloat16 dot products (AVX512-BF16 or AMX); elsewhere oneDNN emulates them and
float32 is faster. GPU: any card with native bfloat16 (Ampere and later).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

PRECISIONS = ("auto", "float32", "bfloat16")
_BULK_TYPES = (nn.Linear, nn.GRU)
_COMPUTE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)  # layers whose input is cast to their weight's dtype


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bfloat16 natively: CPUs with AVX512-BF16 or AMX, CUDA GPUs that
    report bfloat16 support without emulation."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def inference_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """'auto' (bfloat16 where native, else float32), 'float32' or 'bfloat16' -> the dtype to run in."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def float32_layers(model: nn.Module) -> set[nn.Module]:
    """The layers that stay float32: every module's ``FLOAT32_LAYERS`` attribute names (with all their
    sub-layers)."""
    keep: set[nn.Module] = set()
    for module in model.modules():
        for name in getattr(module, "FLOAT32_LAYERS", ()):
            layer = getattr(module, name, None)
            if isinstance(layer, nn.Module):
                keep.update(layer.modules())
    return keep


@contextmanager
def reduced_precision(model: nn.Module, dtype: torch.dtype) -> Iterator[nn.Module]:
    """Run ``model`` inside the block with its bulk layers' parameters in ``dtype`` (cast once, restored
    on exit, also after an error). float32 leaves the model untouched."""
    if dtype == torch.float32:
        yield model
        return
    keep = float32_layers(model)
    saved: list[tuple[nn.Parameter, torch.Tensor]] = []
    hooks = []
    try:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, _BULK_TYPES) and module not in keep:
                    for param in module.parameters(recurse=False):
                        saved.append((param, param.data))
                        param.data = param.data.to(dtype)
        for module in model.modules():
            if isinstance(module, _COMPUTE_TYPES):
                hooks.append(module.register_forward_pre_hook(_cast_input_to_weight))
        yield model
    finally:
        for hook in hooks:
            hook.remove()
        for param, data in saved:
            param.data = data


def _cast_input_to_weight(module: nn.Module, args: tuple) -> tuple:
    dtype = module.weight.dtype
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
