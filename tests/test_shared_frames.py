"""Per-frame parts computed once per frame (lib/models/shared_frames.py) give the window-by-window outputs;
so do the step-by-step GRU and the skipped joint branches (tiny CPU models)."""

import numpy as np
import pytest
import torch

from lib.data.windows import make_windows
from lib.models import gru
from lib.models.pmce import PMCEOutput
from lib.models.shared_frames import SharedFrames, supports_shared_frames
from tests.test_model_variants import build

TOL = 1e-5


def video_windows(lengths: tuple[int, ...], seq_len: int = 4) -> torch.Tensor:
    """(W, T) frame rows of padded windows over consecutive videos of ``lengths`` frames (one per frame)."""
    starts = np.cumsum((0, *lengths))
    return torch.from_numpy(
        np.concatenate([make_windows(n, seq_len)[0] + s for n, s in zip(lengths, starts, strict=False)])
    )


def frames(n: int, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 19, 2, generator=g) * 2 - 1, torch.rand(n, 12, generator=g)


def run_both(model, windows: torch.Tensor, batch: int, noise: float = 0.0):
    """Window-by-window and shared-frame outputs over all windows, ``batch`` windows a call."""
    pose, feat = (t.to(windows.device) for t in frames(int(windows.max()) + 1))
    shared, ours, theirs = SharedFrames(model), [], []
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for b in range(0, len(windows), batch):
            rows = windows[b : b + batch]
            jitter = torch.randn(pose[rows].shape, generator=g).to(windows.device)
            pose2d = pose[rows] + noise * jitter  # per-window noise
            theirs.append(model(pose2d, feat[rows]))
            ours.append(shared(pose2d, feat[rows], rows))
    return ours, theirs


def flat(out) -> torch.Tensor:
    """A model output (a tensor or PMCEOutput) as (B, everything)."""
    return torch.cat([t.flatten(1) for t in ([out] if isinstance(out, torch.Tensor) else out)], dim=1)


def max_diff(ours, theirs) -> float:
    return max((flat(o) - flat(t)).abs().max().item() for o, t in zip(ours, theirs, strict=True))


@pytest.mark.parametrize("batch", [3, 64])  # 3: the cache carries frames over to the next batch
@pytest.mark.parametrize("norm", ["screen", "root_scale"])
def test_shared_frames_equal_window_by_window(batch, norm):
    model = build("MODEL.POSE_STREAM.INPUT_NORM", norm, "MODEL.IMAGE_STREAM.LAYERS", "2")
    ours, theirs = run_both(model, video_windows((7, 2, 4)), batch)
    assert all(isinstance(o, PMCEOutput) for o in ours)
    assert max_diff(ours, theirs) <= TOL


def test_per_window_poses_share_the_image_parts_only():
    """Synthetic per-window noise: the same frame id carries other 2D poses in every window."""
    model = build()
    ours, theirs = run_both(model, video_windows((10,)), batch=4, noise=0.05)
    assert max_diff(ours, theirs) <= TOL


def test_shared_frames_pose_stream_and_fallback():
    model = build("STAGE", "pose")
    assert supports_shared_frames(model) and not supports_shared_frames(torch.nn.Linear(2, 2))
    ours, theirs = run_both(model, video_windows((7, 3)), batch=5)
    assert max_diff(ours, theirs) <= TOL


def test_frame_parts_are_computed_once_per_frame():
    model = build()
    calls = []
    original = model.frame_parts
    model.frame_parts = lambda pose, feat: calls.append(len(feat)) or original(pose, feat)
    run_both(model, video_windows((12,)), batch=5)
    assert sum(calls) == 12  # every frame once, though it is in 4 windows (and batches overlap)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_step_by_step_gru_equals_nn_gru(layers, bidirectional):
    torch.manual_seed(0)
    module = torch.nn.GRU(12, 7, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(6, 3, 12)
    with torch.no_grad():
        reference = module(x)[0]
        for target in range(6):
            ours = gru.target_output(module, gru.input_gates(module, x), target)
            torch.testing.assert_close(ours, reference[target], atol=1e-6, rtol=0)


def test_skipped_joint_branches_change_nothing():
    """Only the last block's joints are output (official JOINT_INPUT 'original'): the others are skipped."""
    model = build("MODEL.DECODER.NUM_BLOCKS", "3")
    block = model.pose_mesh_coevo.blocks[0]
    joints, vertices, cond = torch.randn(2, 19, 3), torch.randn(2, 20, 3), torch.randn(2, 16)
    with torch.no_grad():
        full = block(joints, vertices, cond)
        skipped = block(joints, vertices, cond, need_joints=False)
    assert skipped[0] is None and torch.equal(skipped[1], full[1])
