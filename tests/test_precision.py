"""bfloat16 inference (lib/models/precision.py) and CPU bfloat16 autocast training (tiny CPU models).

Tolerances: a tiny random PMCE's outputs are ~0.1-1 m; bfloat16 keeps 8 bits of mantissa in the layers
it covers, so outputs may move by ~1e-3 relative. We require a mean change below 1 mm and a maximum below
5 mm (measured on the trained synthetic model over its test split: mean 0.23 mm on the mesh, metrics
within 0.04 mm of float32), and float32 bit-identical to the model without the context.
"""

import numpy as np
import pytest
import torch

from lib.data.windows import make_windows
from lib.demo.inference import TrackInput, predict_tracks
from lib.engine.validate import batch_runner, window_frames
from lib.models.precision import inference_dtype, kept_float32, native_bf16, reduced_precision
from tests.test_model_variants import build, inputs

MEAN_TOL_M, MAX_TOL_M = 1e-3, 5e-3


def outputs(model, *args) -> torch.Tensor:
    with torch.no_grad():
        out = model(*args)
    return torch.cat([t.float().flatten(1) for t in ([out] if isinstance(out, torch.Tensor) else out)], 1)


def test_inference_dtype_choices():
    assert inference_dtype("float32", "cpu") == torch.float32
    assert inference_dtype("bfloat16", "cpu") == torch.bfloat16
    assert inference_dtype("auto", "cpu") == (torch.bfloat16 if native_bf16("cpu") else torch.float32)
    assert not native_bf16("meta")
    with pytest.raises(ValueError, match="precision must be one of"):
        inference_dtype("fp8", "cpu")


@pytest.mark.parametrize("stage", ["pose", "mesh"])
def test_bfloat16_inference_is_close_to_float32(stage):
    model = build("STAGE", stage, "MODEL.IMAGE_STREAM.LAYERS", "2")
    args = inputs(batch=3)
    reference = outputs(model, *args)
    with reduced_precision(model, torch.bfloat16):
        ours = outputs(model, *args)
        kept = kept_float32(model)
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.GRU)):
                expected = torch.float32 if module in kept else torch.bfloat16
                assert all(p.dtype == expected for p in module.parameters(recurse=False)), module
    diff = (ours - reference).abs()
    assert ours.dtype == torch.float32 and 0 < diff.mean() < MEAN_TOL_M and diff.max() < MAX_TOL_M
    assert torch.equal(outputs(model, *args), reference)  # float32 weights are back, exactly


def test_float32_leaves_the_model_untouched_and_weights_come_back_after_an_error():
    model = build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with reduced_precision(model, torch.float32):
        assert all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(RuntimeError, match="boom"), reduced_precision(model, torch.bfloat16):
        raise RuntimeError("boom")
    after = model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_coordinate_layers_and_decoder_blocks_stay_float32():
    model = build()
    kept = kept_float32(model)
    decoder, stream = model.pose_mesh_coevo, model.pose_lifter
    assert {stream.joint_embed, stream.fusion, decoder.upsample_conv, *decoder.blocks} <= kept
    assert not {stream.imgfeat_embed, decoder.gru_cur, decoder.linear_cur1} & kept


def test_cpu_bfloat16_autocast_training_step():
    """TRAIN.AMP bf16 on CPU: outputs stay float32 (coordinate layers), gradients are finite and point
    the way float32's do (a tiny random model: bfloat16 rounding is a large share of its small signals)."""
    model = build().train()
    args = inputs(batch=3)
    grads = []
    for amp in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            out = model(*args)
        assert all(t.dtype == torch.float32 for t in out)
        sum(t.square().mean() for t in out).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.isfinite(grads[1]).all()
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0.95


def test_predict_tracks_precision_and_shared_frames():
    model = build()
    rng = np.random.default_rng(0)
    tracks = [
        TrackInput(i, rng.uniform(-1, 1, (n, 19, 2)), rng.uniform(0, 1, (n, 12))) for i, n in ((0, 6), (1, 2))
    ]

    def run(**kwargs) -> np.ndarray:
        preds = predict_tracks(model, tracks, seq_len=4, batch_size=3, **kwargs)
        return np.concatenate([np.concatenate([p.vertices, p.joints, p.pose3d], 1) for p in preds])

    windows = run(precision="float32", share_frames=False)
    assert np.abs(run(precision="float32", share_frames=True) - windows).max() <= 1e-5
    diff = np.abs(run(precision="bfloat16", share_frames=True) - windows)
    assert diff.mean() < MEAN_TOL_M and diff.max() < MAX_TOL_M


class WindowDataset(torch.utils.data.Dataset):
    """The VideoDataset contract predict needs: ``windows.indices`` and items with their ``index``."""

    def __init__(self, pose: torch.Tensor, feats: torch.Tensor, indices: np.ndarray) -> None:
        self.pose, self.feats = pose, feats
        self.windows = type("Windows", (), {"indices": indices})()

    def __len__(self) -> int:
        return len(self.windows.indices)

    def __getitem__(self, index: int) -> dict:
        rows = torch.from_numpy(self.windows.indices[index])
        return {"pose2d": self.pose[rows], "img_feat": self.feats[rows], "index": index}


def test_evaluation_batches_share_frames_through_the_dataset_windows():
    model = build().eval()
    pose2d, feats = inputs(batch=1, frames=7)
    dataset = WindowDataset(pose2d[0], feats[0], make_windows(7, 4)[0])
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(7)), batch_size=3)
    assert window_frames(loader.dataset) is dataset.windows.indices
    assert window_frames(torch.utils.data.TensorDataset(pose2d)) is None
    cpu = torch.device("cpu")
    with torch.no_grad():
        for shared_out, batch in zip(
            map(batch_runner(model, loader, cpu, True), loader), loader, strict=True
        ):
            window_out = batch_runner(model, loader, cpu, False)(batch)
            assert (
                max((a - b).abs().max().item() for a, b in zip(shared_out, window_out, strict=True)) <= 1e-5
            )


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")


@needs_cuda
def test_cuda_bfloat16_inference_and_shared_frames():
    """On the GPU: bfloat16 within the CPU tolerances, shared frames equal to window by window."""
    from tests.test_shared_frames import max_diff, run_both, video_windows

    model = build("MODEL.IMAGE_STREAM.LAYERS", "2").cuda()
    args = [t.cuda() for t in inputs(batch=3)]
    reference = outputs(model, *args)
    with reduced_precision(model, inference_dtype("auto", "cuda")):
        diff = (outputs(model, *args) - reference).abs()
        assert diff.mean() < MEAN_TOL_M and diff.max() < MAX_TOL_M
    ours, theirs = run_both(model, video_windows((9, 3)).cuda(), batch=4)
    assert max_diff(ours, theirs) <= 1e-5


@needs_cuda
def test_cuda_bfloat16_autocast_training_step():
    model = build().cuda().train()
    args = [t.cuda() for t in inputs(batch=3)]
    with torch.autocast("cuda", torch.bfloat16):
        out = model(*args)
    sum(t.square().mean() for t in out).backward()
    assert all(t.dtype == torch.float32 for t in out)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_short_bfloat16_attention_written_out_long_in_float32():
    """CPU attention: short bfloat16 sequences as two GEMMs (float32 softmax), long ones cast to float32."""
    from lib.models.layers import SHORT_TOKENS, attention, attention_dtype, written_out_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 4, 2, 19, 8, generator=g).unbind(0)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert (written_out_attention(q, k, v) - fused).abs().max() < 1e-5
    assert torch.equal(attention(q, k, v), fused)  # float32 keeps the fused kernel
    low = attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert low.dtype == torch.bfloat16 and (low.float() - fused).abs().max() < 0.05
    x = torch.ones(2, 3, dtype=torch.bfloat16)
    assert attention_dtype(x, 19, SHORT_TOKENS).dtype == torch.bfloat16
    assert attention_dtype(x, SHORT_TOKENS + 1, 19).dtype == torch.float32
