"""bfloat16 inference: the weights of the bulk layers cast once, the sensitive layers kept in float32.

A plain ``torch.autocast`` around the forward is slower than float32 at batch 32 on CPU: it casts every
weight again at each call, runs the GRU's recurrent GEMMs through per-step casts, sends the upsampler down
a batched-GEMM path and the attention through bfloat16 kernels that are slower than float32 ones. Here:

* every ``nn.Linear`` / ``nn.GRU`` is cast to bfloat16 once, on entry (and back on exit), except the layers
  a module lists in ``float32_layers``: the coordinate layers (joint / vertex embeddings, coordinate
  heads, the pose fusion, the upsampler: bfloat16's 8-bit mantissa is millimetres on metres) and the
  co-evolution blocks (lib/models/decoder.py says why);
* each layer computes in its weight's dtype (a forward pre-hook casts its input), so the pose stream's
  GEMMs, the GRU's and the vertex-residual heads run in bfloat16 with float32 accumulation, while the
  residual streams, norms, attention (lib/models/layers.py) and the GRU's gate arithmetic and hidden
  state (lib/models/gru.py) stay float32 (bfloat16 + float32 promotes to float32).

CPU: profitable with native bfloat16 dot products (AVX512-BF16 or AMX), where a bfloat16 GEMM runs ~2x
as fast as float32; elsewhere oneDNN emulates them and float32 is faster. GPU: any card with native
bfloat16 (Ampere and later).
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


def kept_float32(model: nn.Module) -> set[nn.Module]:
    """The layers that stay float32: those every module names in its ``float32_layers`` attribute, with
    all their sub-layers."""
    keep: set[nn.Module] = set()
    for module in model.modules():
        for name in getattr(module, "float32_layers", ()):
            layer = getattr(module, name, None)
            if isinstance(layer, nn.Module):
                keep.update(layer.modules())
    return keep


@contextmanager
def reduced_precision(model: nn.Module, dtype: torch.dtype, restore: bool = True) -> Iterator[nn.Module]:
    """Run ``model`` inside the block with its bulk layers' parameters in ``dtype``, cast once on entry.

    ``restore``: the float32 parameters come back on exit (also after an error). False frees them on
    entry instead (the bulk layers' memory shrinks from 4 to 2 bytes a weight rather than growing to 6),
    for a model used only in the block (evaluation, the demo): it keeps ``dtype`` weights afterwards and
    can only run in a later ``reduced_precision`` block. float32 leaves the model untouched."""
    if dtype == torch.float32:
        yield model
        return
    keep = kept_float32(model)
    saved: list[tuple[nn.Parameter, torch.Tensor]] = []
    hooks = []
    try:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, _BULK_TYPES) and module not in keep:
                    for param in module.parameters(recurse=False):
                        if restore:
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
