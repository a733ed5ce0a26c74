"""The image stream's bidirectional GRU computed step by step, for the one frame the decoder reads.

``nn.GRU`` returns the output of every frame, but PMCE uses only the target frame's. Written out, the
last layer needs its forward direction up to the target and its backward direction down to it, about
half the work; and the first layer's input projection depends on one frame only, so a caller running
many overlapping windows can compute it once per frame (``input_gates``) and hand it in.

nn.GRU's equations and weight layout (gates r, z, n stacked in rows of ``weight_ih`` / ``weight_hh``):
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h,  h_0 = 0.
Shapes: T frames, B windows, N frames, D input size, H hidden size, G = 3 H gate pre-activations,
K directions (2: forward, backward). Gates are combined in float32 whatever the weights' dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _weights(gru: nn.GRU, kind: str, layer: int, direction: int) -> tuple[Tensor, Tensor | None]:
    suffix = f"l{layer}" + ("_reverse" if direction else "")
    bias = getattr(gru, f"bias_{kind}_{suffix}") if gru.bias else None
    return getattr(gru, f"weight_{kind}_{suffix}"), bias


def _directions(gru: nn.GRU) -> range:
    return range(2 if gru.bidirectional else 1)


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x @ weight^T + bias in the weight's dtype (bfloat16 weights: a bfloat16 GEMM)."""
    return F.linear(x.to(weight.dtype), weight, bias)


def input_gates(gru: nn.GRU, x: Tensor, layer: int = 0) -> Tensor:
    """x: (..., D) -> the input projections W_i x + b_i of ``layer``, (..., K, G)."""
    return torch.stack([_linear(x, *_weights(gru, "ih", layer, d)) for d in _directions(gru)], dim=-2)


def _cell(gates_x: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
    """One step: gates_x, gates_h (B, G), h (B, H) float32 -> h' (B, H) float32."""
    hidden = h.shape[-1]
    rz = torch.sigmoid(gates_x[:, : 2 * hidden] + gates_h[:, : 2 * hidden])  # one kernel for r and z
    n = torch.tanh(gates_x[:, 2 * hidden :] + rz[:, :hidden] * gates_h[:, 2 * hidden :])
    return torch.lerp(n, h, rz[:, hidden:])  # (1 - z) n + z h


def _run_direction(gru: nn.GRU, gates_x: Tensor, layer: int, direction: int) -> list[Tensor]:
    """gates_x: (S, B, G) input projections in the order the direction visits its frames -> h after
    each step, S x (B, H) float32."""
    w_hh, b_hh = _weights(gru, "hh", layer, direction)
    batch, hidden = gates_x.shape[1], gru.hidden_size
    h = gates_x.new_zeros((batch, hidden), dtype=torch.float32)
    outputs = []
    for step in range(gates_x.shape[0]):
        if step == 0:  # h_0 = 0: W_h h_0 + b_h is the bias alone (exactly), no GEMM needed
            gates_h = h.new_zeros((batch, 3 * hidden)) if b_hh is None else b_hh.float().expand(batch, -1)
        else:
            gates_h = _linear(h, w_hh, b_hh).float()
        h = _cell(gates_x[step].float(), gates_h, h)
        outputs.append(h)
    return outputs


def target_output(gru: nn.GRU, gates: Tensor, target: int) -> Tensor:
    """The GRU's output at frame ``target``, from the first layer's input projections.

    gates: (T, B, K, G), ``input_gates`` of each window's frames (sequence first) -> (B, K * H) float32,
    equal to ``gru(x)[0][target]`` for h_0 = 0.
    """
    frames = gates.shape[0]
    if gru.batch_first or not 0 <= target < frames:
        raise ValueError(f"needs a sequence-first GRU and 0 <= target < {frames}, got {target}")
    sequence = None  # the previous layer's output, (T, B, K * H)
    for layer in range(gru.num_layers):
        last = layer == gru.num_layers - 1
        # The last layer runs forward up to the target and backward down to it; the others run whole.
        spans = [
            torch.arange(target + 1 if last else frames, device=gates.device),
            torch.arange(frames - 1, target - 1 if last else -1, -1, device=gates.device),
        ]
        outputs = []
        for d in _directions(gru):
            if sequence is None:
                gates_x = gates[spans[d], :, d]
            else:  # this layer's input projection, only for the frames it runs over
                gates_x = _linear(sequence[spans[d]], *_weights(gru, "ih", layer, d))
            outputs.append(_run_direction(gru, gates_x, layer, d))
        if last:  # the target frame is the last step of every direction
            return torch.cat([out[-1] for out in outputs], dim=-1)
        # (T, B, K * H) in frame order (the backward direction visited the frames last to first)
        sequence = torch.cat([torch.stack(out if d == 0 else out[::-1]) for d, out in enumerate(outputs)], -1)
    raise AssertionError("unreachable: a GRU has at least one layer")
