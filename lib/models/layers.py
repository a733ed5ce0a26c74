"""Transformer building blocks shared by the pose stream and the co-evolution decoder.

Shapes: B batch, N tokens, C channels, H heads.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def in_float32(layer: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
    """``layer(*inputs)`` in float32, also under autocast or with bfloat16 inputs: for the layers whose
    input or output is a coordinate (bfloat16's 8-bit mantissa is millimetres on metres). Their weights
    stay float32 under lib/models/precision.py (listed in the modules' float32_layers)."""
    with torch.autocast(inputs[0].device.type, enabled=False):
        return layer(*(x.float() for x in inputs))


# Sequences up to this many tokens (queries and keys) attend in bfloat16 on CPU, written out as two batched
# GEMMs: PyTorch's fused CPU kernel is slow for such short sequences in bfloat16 (forward ~2.5x, training
# ~4x slower than the written-out form on 19 joints or 16 frames). Longer ones are cast to float32 for it.
SHORT_TOKENS = 64


def attention_dtype(x: torch.Tensor, query_tokens: int, key_tokens: int) -> torch.Tensor:
    """A projection's output (q, k, v or the fused qkv) in the dtype attention runs in: float32 for
    bfloat16 on CPU unless both token counts are short (``SHORT_TOKENS``), where PyTorch's fused kernel
    is faster in float32 than in bfloat16 and more accurate. Cast before splitting the heads: a strided
    cast afterwards costs as much as the attention."""
    short = max(query_tokens, key_tokens) <= SHORT_TOKENS
    return x.float() if x.dtype == torch.bfloat16 and x.device.type == "cpu" and not short else x


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over (B, H, N, d) tensors, in the inputs' dtype (CPU autocast, which
    would recast float32 inputs to bfloat16, is off here: see ``attention_dtype``)."""
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v)
    with torch.autocast("cpu", enabled=False):
        if q.dtype == torch.bfloat16:  # short sequences only (attention_dtype)
            return written_out_attention(q, k, v)
        return F.scaled_dot_product_attention(q, k, v)


def written_out_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``attention`` as two batched GEMMs in the inputs' dtype, the softmax in float32."""
    scores = (q @ k.transpose(-2, -1)).float() * q.shape[-1] ** -0.5
    return scores.softmax(dim=-1).to(v.dtype) @ v


class DropPath(nn.Module):
    """Stochastic depth: zero a whole residual branch per sample with probability ``p`` (training only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """Linear -> GELU -> Linear, the transformer feed-forward branch."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, H, N, C / H)."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, C / H) -> (B, N, C)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection; scale = head_dim ** -0.5."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C) -> (B, N, C)."""
        b, n, c = x.shape
        qkv = attention_dtype(self.qkv(x), n, n).view(b, n, 3, self.heads, c // self.heads)
        # (B, H, N, C / H); unbind: indexing's backward zero-fills 3x
        out = attention(*qkv.permute(2, 0, 3, 1, 4).unbind(0))
        return self.proj(merge_heads(out))


class CrossAttention(nn.Module):
    """Multi-head attention of query tokens over another token set.

    Queries have width ``dim``; keys and values may come with other widths and are projected to ``dim``.
    """

    def __init__(
        self, dim: int, heads: int, key_dim: int | None = None, value_dim: int | None = None
    ) -> None:
        super().__init__()
        self.heads = heads
        self.wq = nn.Linear(dim, dim)
        self.wk = nn.Linear(key_dim or dim, dim)
        self.wv = nn.Linear(value_dim or dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (B, Nq, C), k: (B, Nk, Ck), v: (B, Nk, Cv) -> (B, Nq, C)."""
        q, k, v = (
            split_heads(attention_dtype(w(t), q.shape[1], k.shape[1]), self.heads)
            for w, t in ((self.wq, q), (self.wk, k), (self.wv, v))
        )
        return self.proj(merge_heads(attention(q, k, v)))


class TransformerBlock(nn.Module):
    """Pre-norm ViT block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C) -> (B, N, C)."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
