"""Every MODEL variant switch changes the computation as intended (tiny CPU models)."""

import pytest
import torch
import torch.nn.functional as F

from lib.config import get_cfg
from lib.models.build import build_model
from lib.models.coevo_block import CoevoBlock
from lib.models.decoder import conv1d_as_matmul
from lib.models.norms import NORM_LAYERS, AdaLN, Modulation, OfficialAdaLN, UnconditionedLayerNorm
from tests.test_model import random_coarse_mesh

TINY = [
    "MODEL.SEQ_LEN", "4", "MODEL.IMG_FEAT_DIM", "12",
    "MODEL.POSE_STREAM.DIM", "16", "MODEL.POSE_STREAM.DEPTH", "1", "MODEL.POSE_STREAM.HEADS", "2",
    "MODEL.IMAGE_STREAM.HIDDEN", "8", "MODEL.IMAGE_STREAM.LAYERS", "1",
    "MODEL.DECODER.JOINT_DIM", "8", "MODEL.DECODER.VERTEX_DIM", "8", "MODEL.DECODER.NUM_BLOCKS", "2",
    "MODEL.DECODER.JOINT_HEADS", "2", "MODEL.DECODER.VERTEX_HEADS", "2",
]  # fmt: skip
NUM_COARSE = 20


def build(*opts: str, coarse=None, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = get_cfg(opts=[*TINY, *opts])
    return build_model(cfg, coarse or random_coarse_mesh(NUM_COARSE, 17)).eval()


def inputs(batch: int = 2, frames: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, 19, 2, generator=g) * 2 - 1, torch.rand(batch, frames, 12, generator=g)


def block_inputs(model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run the model and return the (joints, vertices) each co-evolution block received."""
    seen = []
    hooks = [
        b.register_forward_pre_hook(lambda m, args: seen.append(args[:2]))
        for b in model.pose_mesh_coevo.blocks
    ]
    with torch.no_grad():
        out = model(*inputs())
    for hook in hooks:
        hook.remove()
    return seen, out


@pytest.mark.parametrize("mode", ["original", "chained"])
def test_decoder_joint_input(mode):
    model = build("MODEL.DECODER.JOINT_INPUT", mode)
    first_out = []
    model.pose_mesh_coevo.blocks[0].register_forward_hook(lambda m, a, out: first_out.append(out[0]))
    (joints1, _), (joints2, _) = block_inputs(model)[0]
    assert torch.equal(joints1, block_inputs(model)[1].pose3d)
    expected = joints1 if mode == "original" else first_out[0]
    assert torch.equal(joints2, expected)


@pytest.mark.parametrize("init", ["nearest_joint", "template", "zeros"])
def test_coarse_mesh_initialisation(init):
    coarse = random_coarse_mesh(NUM_COARSE, 17)
    model = build("MODEL.DECODER.INIT", init, coarse=coarse)
    [(joints, vertices), _], _ = block_inputs(model)
    expected = {
        "nearest_joint": joints[:, coarse.vertex_joint_map],
        "template": coarse.template.expand_as(vertices),
        "zeros": torch.zeros_like(vertices),
    }[init]
    assert torch.equal(vertices, expected)


def test_official_adaln_formula():
    torch.manual_seed(0)
    norm, x, cond = OfficialAdaLN(8, 5), torch.randn(2, 3, 8), torch.randn(2, 5)
    gamma, beta = norm.mlp_gamma(cond)[:, None], norm.mlp_beta(cond)[:, None]
    std = ((x - x.mean(-1, keepdim=True)) ** 2).sum(-1, keepdim=True).div(7).sqrt()  # unbiased
    expected = gamma * (x - x.mean(-1, keepdim=True)) / (std + 1e-6) + beta
    torch.testing.assert_close(norm(x, cond), expected)


def test_modern_adaln_is_layernorm_at_zero_modulation():
    norm, x, cond = AdaLN(8, 5), torch.randn(2, 3, 8), torch.randn(2, 5)
    for layer in (norm.mlp_gamma, norm.mlp_beta):
        torch.nn.init.zeros_(layer.weight), torch.nn.init.zeros_(layer.bias)
    torch.testing.assert_close(norm(x, cond), F.layer_norm(x, (8,), eps=1e-6))


def test_layernorm_variant_ignores_the_image_feature():
    norm, x = UnconditionedLayerNorm(8, 5), torch.randn(2, 3, 8)
    assert torch.equal(norm(x, torch.randn(2, 5)), norm(x, torch.randn(2, 5)))


@pytest.mark.parametrize("norm", sorted(NORM_LAYERS))
def test_norm_switch_selects_layer(norm):
    model = build("MODEL.DECODER.NORM", norm)
    block = model.pose_mesh_coevo.blocks[0]
    assert type(block.joint_SA_FFN.norm1) is NORM_LAYERS[norm]
    assert type(block.vertx_CA_FFN.normq) is NORM_LAYERS[norm]


@pytest.mark.parametrize(
    "interaction, joints_see_mesh, mesh_sees_joints",
    [
        ("both", True, True),
        ("pose_to_mesh", False, True),
        ("mesh_to_pose", True, False),
        ("none", False, False),
    ],
)
def test_interactions(interaction, joints_see_mesh, mesh_sees_joints):
    torch.manual_seed(0)
    block = CoevoBlock(num_joints=5, num_vertices=7, joint_dim=8, vertex_dim=8, joint_heads=2, vertex_heads=2,
                       norm=OfficialAdaLN, cond_dim=4, interaction=interaction).eval()  # fmt: skip
    joints, vertices, cond = torch.randn(1, 5, 3), torch.randn(1, 7, 3), torch.randn(1, 4)
    j0, v0 = block(joints, vertices, cond)
    j1, _ = block(joints, vertices + 1.0, cond)  # move the mesh: do the joints notice?
    _, v2 = block(
        joints + 1.0, vertices, cond
    )  # move the joints: do the vertices notice? (vertex residual aside)
    assert (not torch.allclose(j0, j1)) == joints_see_mesh
    assert (not torch.allclose(v0 + 0.0, v2)) == mesh_sees_joints
    assert (block.joint_CA_FFN is not None) == joints_see_mesh
    assert (block.vertx_CA_FFN is not None) == mesh_sees_joints


def test_image_feature_switches():
    pose2d, feats = inputs()
    other = feats.flip(0)
    no_encoder = build("MODEL.POSE_STREAM.USE_IMG_FEAT", "False")
    assert "pose_lifter.imgfeat_embed.weight" not in no_encoder.state_dict()
    with torch.no_grad():
        assert torch.equal(no_encoder(pose2d, feats).pose3d, no_encoder(pose2d, other).pose3d)
        assert not torch.equal(no_encoder(pose2d, feats).mesh, no_encoder(pose2d, other).mesh)
    neither = build("MODEL.POSE_STREAM.USE_IMG_FEAT", "False", "MODEL.DECODER.USE_IMG_FEAT", "False",
                    "MODEL.DECODER.NORM", "layernorm")  # fmt: skip
    keys = neither.state_dict().keys()
    assert not any("gru_cur" in k or "linear_cur" in k or "mlp_gamma" in k for k in keys)
    with torch.no_grad():
        assert torch.equal(neither(pose2d, feats).mesh, neither(pose2d, other).mesh)


def coarse_mesh_with_upsampling():
    """A random coarse mesh with random sparse (U1, U0) and their product (6890, V')."""
    coarse = random_coarse_mesh(NUM_COARSE, 17)
    g = torch.Generator().manual_seed(3)
    u1 = (
        torch.rand(30, NUM_COARSE, generator=g) * (torch.rand(30, NUM_COARSE, generator=g) > 0.8)
    ).to_sparse()
    u0 = (torch.rand(6890, 30, generator=g) * (torch.rand(6890, 30, generator=g) > 0.9)).to_sparse()
    coarse.upsample = (u1, u0)
    return coarse, u0.to_dense() @ u1.to_dense()


def test_fixed_matrix_upsampling():
    coarse, matrix = coarse_mesh_with_upsampling()
    decoder = build("MODEL.DECODER.UPSAMPLE", "matrix", coarse=coarse).pose_mesh_coevo
    assert "upsample_conv.weight" not in decoder.state_dict()
    vertices = torch.randn(2, NUM_COARSE, 3)
    expected = torch.einsum("vc,bcd->bvd", matrix, vertices)
    torch.testing.assert_close(decoder.upsample(vertices), expected)


def mesh_and_last_block_vertices(model) -> tuple[torch.Tensor, torch.Tensor]:
    seen = []
    hook = model.pose_mesh_coevo.blocks[-1].register_forward_hook(lambda m, a, out: seen.append(out[1]))
    with torch.no_grad():
        mesh = model(*inputs()).mesh
    hook.remove()
    return mesh, seen[0]


def test_output_init_upsampling_starts_as_the_upsampled_coarse_mesh():
    """OUTPUT_INIT upsampling: the learned Conv1d starts as U and the residual heads at zero, so the
    first mesh is U @ the last block's vertices; the official init gives a random map instead."""
    coarse, matrix = coarse_mesh_with_upsampling()
    for output_init in ("upsampling", "official"):
        model = build("MODEL.DECODER.OUTPUT_INIT", output_init, coarse=coarse)
        mesh, last_vertices = mesh_and_last_block_vertices(model)
        expected = torch.einsum("vc,bcd->bvd", matrix, last_vertices)
        assert torch.allclose(mesh, expected, atol=1e-5) == (output_init == "upsampling")


def test_zero_cond_init_starts_as_the_layernorm_decoder_and_still_learns():
    """COND_INIT zero: every AdaLN starts as plain LayerNorm (the mesh does not depend on the image
    feature until training moves the modulation), while its layers still receive gradients."""
    opts = ("MODEL.DECODER.NORM", "adaln", "MODEL.DECODER.OUTPUT_INIT", "upsampling")
    opts += ("MODEL.POSE_STREAM.USE_IMG_FEAT", "False")  # the feature reaches the mesh only via the decoder
    coarse, _ = coarse_mesh_with_upsampling()
    zero = build(*opts, "MODEL.DECODER.COND_INIT", "zero", coarse=coarse)
    pose2d, feat = inputs()
    out = zero(pose2d, feat)
    assert torch.equal(out.mesh, zero(pose2d, feat.flip(0)).mesh)
    default = build(*opts, coarse=coarse)
    assert not torch.allclose(default(pose2d, feat).mesh, default(pose2d, feat.flip(0)).mesh)
    (out.mesh.square().sum() + out.joints.square().sum()).backward()
    grads = [
        m.mlp_gamma.weight.grad
        for m in zero.pose_mesh_coevo.blocks[-1].modules()
        if isinstance(m, Modulation)
    ]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_sequence_length_and_target_index():
    model = build("MODEL.SEQ_LEN", "8", "MODEL.TARGET_INDEX", "2")
    assert model.pose_lifter.fusion.in_channels == 8
    _, feats = inputs(frames=8)
    decoder = model.pose_mesh_coevo
    cond = decoder.image_feature(feats)  # the GRU step by step, for the target frame alone
    torch.testing.assert_close(cond, decoder.gru_cur(feats.transpose(0, 1))[0][2], atol=1e-6, rtol=0)
    with torch.no_grad():
        assert model(inputs(frames=8)[0], feats).mesh.shape == (2, 6890, 3)


def parameters_without_gradient(*opts: str) -> set[str]:
    model = build(*opts, "MODEL.POSE_STREAM.DROP_PATH", "0.0", "MODEL.DECODER.DROP_PATH", "0.0").train()
    out = model(*inputs())
    loss = out.abs().mean() if isinstance(out, torch.Tensor) else sum(t.abs().mean() for t in out)
    loss.backward()
    return {name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0}


def test_every_parameter_receives_a_gradient():
    assert parameters_without_gradient("STAGE", "pose") == set()
    assert parameters_without_gradient("MODEL.DECODER.JOINT_INPUT", "chained") == set()


def test_official_joint_input_leaves_joint_branches_of_early_blocks_untrained():
    """Official quirk: joint outputs of all but the last block are discarded, so their joint-refinement
    parameters never receive a gradient (the vertex branch still reads their pre-update joint tokens)."""
    dead = parameters_without_gradient("MODEL.DECODER.JOINT_INPUT", "original")
    joint_only = (
        "j_Q_embed",
        "v2j_K_embed",
        "proj_v2j_dim",
        "joint_CA_FFN",
        "joint_SA_FFN",
        "proj_joint_feat2coor",
    )
    assert dead and all(name.startswith("pose_mesh_coevo.coevoblock1.") for name in dead)
    assert all(name.split(".")[2] in joint_only for name in dead)


@pytest.mark.parametrize("norm", ["screen", "root_scale", "window_root_scale"])
def test_pose_stream_input_normalisation(norm):
    """root_scale and window_root_scale make the output independent of where and how large the person is
    in the frame, screen (official) feeds the coordinates as they are; only window_root_scale sees the
    person's track within the window."""
    model = build("MODEL.POSE_STREAM.INPUT_NORM", norm)
    pose2d, feats = inputs()
    moved = pose2d * 0.3 + torch.tensor([0.4, -0.2])  # smaller, elsewhere in the frame
    track = torch.linspace(0, 0.5, pose2d.shape[1])[None, :, None, None] * torch.tensor([1.0, 0.0])
    with torch.no_grad():
        out = model(pose2d, feats).pose3d
        same_place = torch.allclose(out, model(moved, feats).pose3d, atol=1e-5)
        same_track = torch.allclose(out, model(pose2d + track, feats).pose3d, atol=1e-5)
    assert same_place == (norm != "screen")
    assert same_track == (norm == "root_scale")


def test_pose_stream_position_embedding_init():
    """POS_EMBED_STD 0 keeps the official zeros; > 0 draws them (truncated at 2 std) and leaves every
    other initial weight as the official construction order makes it."""
    official, drawn = build(), build("MODEL.POSE_STREAM.POS_EMBED_STD", "0.5")
    embeds = ("spatial_pos_embed", "temporal_pos_embed")
    for name, value in official.pose_lifter.named_parameters():
        other = dict(drawn.pose_lifter.named_parameters())[name]
        if name in embeds:
            assert not value.any()
            assert 0.2 < other.std() < 0.6 and other.abs().max() <= 1.0
        else:
            assert torch.equal(value, other), name


def test_conv_upsampler_as_matmul_equals_the_convolution():
    """The Conv1d upsampler runs as one GEMM (faster backward on CPU); values and gradients as conv1d."""
    conv = torch.nn.Conv1d(NUM_COARSE, 50, kernel_size=3, padding=1)
    x = torch.randn(4, NUM_COARSE, 3, requires_grad=True)
    ours = conv1d_as_matmul(x, conv)
    reference = conv(x)
    torch.testing.assert_close(ours, reference)
    (grad_ours,) = torch.autograd.grad(ours.square().sum(), conv.weight)
    (grad_ref,) = torch.autograd.grad(reference.square().sum(), conv.weight)
    torch.testing.assert_close(grad_ours, grad_ref)
