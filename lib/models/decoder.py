"""Image-feature stream + co-evolution decoder + mesh upsampler (paper sections 3.1-3.2).

Called ``pose_mesh_coevo`` in the official checkpoints; its attribute names follow them.
Shapes: B batch, T frames, J joints, V' coarse vertices, V full vertices, D image-feature size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lib.models import gru
from lib.models.coevo_block import CoevoBlock
from lib.models.layers import in_float32
from lib.models.norms import NORM_LAYERS, Modulation

JOINT_INPUTS = ("original", "chained")
INITS = ("nearest_joint", "template", "zeros")
UPSAMPLERS = ("conv", "matrix")
OUTPUT_INITS = ("official", "upsampling")
COND_INITS = ("default", "zero")


class MeshDecoder(nn.Module):
    """Mid-frame 3D joints + image-feature sequence -> refined joints and the full mesh.

    The coarse mesh is handed in by the caller (see ``lib.body.coarse_mesh.CoarseMesh``):
    ``coarse_template`` (V', 3) metres, ``vertex_joint_map`` (V',) the joint each coarse vertex starts at,
    and ``upsample_matrix`` (V, V') sparse, needed by the fixed-matrix upsampler and by
    ``output_init="upsampling"``.
    """

    def __init__(
        self,
        *,
        num_joints: int,
        coarse_template: torch.Tensor,
        vertex_joint_map: torch.Tensor,
        num_vertices: int = 6890,
        upsample_matrix: torch.Tensor | None = None,
        target_index: int = 8,
        img_feat_dim: int = 2048,
        gru_hidden: int = 1024,
        gru_layers: int = 2,
        joint_dim: int = 64,
        vertex_dim: int = 64,
        num_blocks: int = 3,
        joint_heads: int = 8,
        vertex_heads: int = 2,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.2,
        norm: str = "adaln_official",
        interaction: str = "both",
        joint_input: str = "original",
        init: str = "nearest_joint",
        upsample: str = "conv",
        output_init: str = "official",
        cond_init: str = "default",
        use_img_feat: bool = True,
    ) -> None:
        super().__init__()
        _check_choice("joint_input", joint_input, JOINT_INPUTS)
        _check_choice("init", init, INITS)
        _check_choice("upsample", upsample, UPSAMPLERS)
        _check_choice("output_init", output_init, OUTPUT_INITS)
        _check_choice("norm", norm, tuple(NORM_LAYERS))
        _check_choice("cond_init", cond_init, COND_INITS)
        if cond_init == "zero" and norm == "adaln_official":
            raise ValueError(
                "cond_init='zero' does not fit norm='adaln_official' (a zero gamma erases its output)"
            )
        if not use_img_feat and norm != "layernorm":
            raise ValueError(
                "a decoder without image features needs norm='layernorm' (nothing to condition on)"
            )
        num_coarse = coarse_template.shape[0]
        if vertex_joint_map.shape != (num_coarse,) or int(vertex_joint_map.max()) >= num_joints:
            raise ValueError(
                f"vertex_joint_map must have shape ({num_coarse},) with indices < {num_joints}, got shape "
                f"{tuple(vertex_joint_map.shape)} and max {int(vertex_joint_map.max())}"
            )
        self.joint_input, self.init, self.target_index = joint_input, init, target_index
        self.register_buffer("init_vertices", coarse_template.float().clone())  # in official checkpoints
        self.register_buffer("vertex_joint_map", vertex_joint_map.long().clone(), persistent=False)
        block_args = dict(
            num_joints=num_joints, num_vertices=num_coarse, joint_dim=joint_dim, vertex_dim=vertex_dim,
            joint_heads=joint_heads, vertex_heads=vertex_heads, mlp_ratio=mlp_ratio, drop_path=drop_path,
            norm=NORM_LAYERS[norm], cond_dim=2 * gru_hidden, interaction=interaction,
        )  # fmt: skip
        # Numbered attributes (not ModuleLists) keep the official checkpoint keys.
        self.num_blocks = num_blocks
        for i in range(1, num_blocks + 1):
            self.add_module(f"coevoblock{i}", CoevoBlock(**block_args))
        self._build_upsampler(upsample, num_coarse, num_vertices, upsample_matrix)
        self.gru_cur = (
            nn.GRU(img_feat_dim, gru_hidden, num_layers=gru_layers, bidirectional=True)
            if use_img_feat
            else None
        )
        # One linear head per coordinate (x, y, z): an image-driven residual added to the upsampled mesh.
        self.use_img_feat = use_img_feat
        if use_img_feat:
            for axis in range(1, 4):
                self.add_module(f"linear_cur{axis}", nn.Linear(2 * gru_hidden, num_vertices))
        if output_init == "upsampling":
            self._start_as_upsampling(upsample_matrix)
        if cond_init == "zero":
            self._start_unconditioned()

    @property
    def float32_layers(self) -> tuple[str, ...]:
        """Layers kept float32 under bfloat16 inference: the upsampler (coordinates in and out) and the
        co-evolution blocks: their features set the vertex displacements, and bfloat16 there moved the
        trained synthetic model's vertices by 0.9 mm on average (0.23 mm without), for ~5 % of the time."""
        return ("upsample_conv", *(f"coevoblock{i}" for i in range(1, self.num_blocks + 1)))

    @property
    def blocks(self) -> list[CoevoBlock]:
        return [getattr(self, f"coevoblock{i}") for i in range(1, self.num_blocks + 1)]

    def vertex_residual(self, cond: torch.Tensor) -> torch.Tensor:
        """cond: (B, 2 * hidden) -> per-vertex offsets (B, V, 3)."""
        hidden = F.relu(cond)
        heads = [getattr(self, f"linear_cur{axis}") for axis in range(1, 4)]
        # In the weights' dtype (bfloat16 inference halves their 170 MB of reads; the offsets are small),
        # but never autocast: re-casting 42M weights every training step costs more than it saves.
        with torch.autocast(hidden.device.type, enabled=False):
            return torch.stack([head(hidden).float() for head in heads], dim=-1)

    def _build_upsampler(
        self, kind: str, num_coarse: int, num_vertices: int, matrix: torch.Tensor | None
    ) -> None:
        if kind == "conv":
            # Official: vertices are channels and the kernel slides over the xyz axis.
            self.upsample_conv = nn.Conv1d(num_coarse, num_vertices, kernel_size=3, padding=1)
            return
        if matrix is None or tuple(matrix.shape) != (num_vertices, num_coarse):
            shape = None if matrix is None else tuple(matrix.shape)
            raise ValueError(f"upsample='matrix' needs a ({num_vertices}, {num_coarse}) matrix, got {shape}")
        self.upsample_conv = None
        self.register_buffer("upsample_matrix", matrix.float().coalesce(), persistent=False)

    @torch.no_grad()
    def _start_as_upsampling(self, matrix: torch.Tensor | None) -> None:
        """The learned upsampler's centre tap := U (V, V'), other taps and biases 0; residual heads 0."""
        if self.upsample_conv is not None:
            if matrix is None or tuple(matrix.shape) != tuple(self.upsample_conv.weight.shape[:2]):
                raise ValueError("output_init='upsampling' needs the (V, V') upsampling matrix")
            self.upsample_conv.weight.zero_()
            self.upsample_conv.weight[:, :, 1] = matrix.to_dense()
            self.upsample_conv.bias.zero_()
        if self.use_img_feat:
            for axis in range(1, 4):
                _zero(getattr(self, f"linear_cur{axis}"))

    @torch.no_grad()
    def _start_unconditioned(self) -> None:
        """Every AdaLN's scale and shift layers := 0: the decoder starts as its LayerNorm twin and the
        image conditioning grows from zero (DiT's adaLN-Zero), instead of starting as random modulation."""
        for module in self.modules():
            if isinstance(module, Modulation):
                _zero(module.mlp_gamma)
                _zero(module.mlp_beta)

    def image_gates(self, img_feat: torch.Tensor) -> torch.Tensor | None:
        """img_feat: (..., D) -> the GRU's first-layer input projections (..., K, G), or None.

        Per frame: overlapping windows can share them (``image_feature_from_gates``)."""
        return None if self.gru_cur is None else gru.input_gates(self.gru_cur, img_feat)

    def image_feature_from_gates(self, gates: torch.Tensor | None) -> torch.Tensor | None:
        """gates: (B, T, K, G) of each window's frames -> the bi-GRU output at the target frame
        (B, 2 * hidden), float32; None without image features."""
        if gates is None:
            return None
        return gru.target_output(self.gru_cur, gates.transpose(0, 1), self.target_index)

    def image_feature(self, img_feat: torch.Tensor) -> torch.Tensor | None:
        """img_feat: (B, T, D) -> the bi-GRU output at the target frame (B, 2 * hidden), or None.

        Computed step by step (lib/models/gru.py) for the target frame alone: the same values as
        ``gru_cur(img_feat.transpose(0, 1))[0][target_index]``, for about 3/4 of the work."""
        return self.image_feature_from_gates(self.image_gates(img_feat))

    def initial_vertices(self, joints: torch.Tensor) -> torch.Tensor:
        """joints: (B, J, 3) -> coarse vertices (B, V', 3) to start from (paper Table 9)."""
        if self.init == "nearest_joint":
            return joints[:, self.vertex_joint_map]
        template = self.init_vertices.expand(joints.shape[0], -1, -1)
        return template if self.init == "template" else torch.zeros_like(template)

    def upsample(self, vertices: torch.Tensor) -> torch.Tensor:
        """vertices: (B, V', 3) -> (B, V, 3)."""
        if self.upsample_conv is not None:
            return in_float32(lambda x: conv1d_as_matmul(x, self.upsample_conv), vertices)
        b, n, _ = vertices.shape
        flat = vertices.transpose(0, 1).reshape(n, b * 3)  # (V', B*3)
        return torch.sparse.mm(self.upsample_matrix, flat).reshape(-1, b, 3).transpose(0, 1)

    def forward(self, joints: torch.Tensor, img_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """joints: (B, J, 3) metres, img_feat: (B, T, D) -> refined joints (B, J, 3), mesh (B, V, 3)."""
        return self.forward_cond(joints, self.image_feature(img_feat))

    def forward_cond(
        self, joints: torch.Tensor, cond: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` from the image feature ``cond`` (B, 2 * hidden) (``image_feature``)."""
        block_joints, vertices = joints, self.initial_vertices(joints)
        chained = self.joint_input == "chained"
        for i, block in enumerate(self.blocks):
            # Official: every block is fed the original joints and only the vertices are chained, so
            # only the last block's joint branch counts (the others are skipped: same outputs).
            last = i == self.num_blocks - 1
            refined, vertices = block(block_joints, vertices, cond, need_joints=chained or last)
            block_joints = refined if chained else joints
        mesh = self.upsample(vertices)
        if self.use_img_feat:
            mesh = mesh + self.vertex_residual(cond)
        return refined, mesh


def conv1d_as_matmul(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """``conv(x)`` for a kernel-3, padding-1 Conv1d over a length-3 axis, as one matrix product.

    x: (B, C_in, 3) -> (B, C_out, 3). The same weights and result; for the upsampler's shape (6890 output
    channels, 431 input channels, length 3) the oneDNN convolution's backward pass is ~3x slower than
    the GEMM on CPU (fwd + bwd at batch 16: 118 vs 39 ms).
    """
    b, _, length = x.shape
    windows = F.pad(x, (1, 1)).unfold(2, 3, 1)  # (B, C_in, 3 positions, 3 taps)
    # One 2-D GEMM: a 3-D strided input would become a batched GEMM over copies of the weight under
    # autocast (~1 s at batch 32 on CPU).
    windows = windows.transpose(1, 2).reshape(b * length, -1)  # (B * 3, C_in * 3)
    weight = conv.weight.reshape(conv.out_channels, -1)  # (C_out, C_in * 3), same (channel, tap) order
    # The weight as the left operand, read once in its stored order: at batch 1 (3 rows) twice as fast as
    # x @ W^T (7.4 -> 3.6 ms on one thread), at batch 32 1.4x.
    out = weight @ windows.T if conv.bias is None else torch.addmm(conv.bias[:, None], weight, windows.T)
    return out.view(-1, b, length).permute(1, 0, 2)  # (C_out, B * 3) -> (B, C_out, 3)


def _zero(layer: nn.Linear) -> None:
    """Weight and bias := 0 (callers hold torch.no_grad)."""
    layer.weight.zero_()
    layer.bias.zero_()


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
