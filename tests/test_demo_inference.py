"""PMCE over every frame of every track: windows, padding, batching, track selection."""

import numpy as np
import pytest
import torch

from lib.config import get_cfg
from lib.demo.errors import DemoError
from lib.demo.inference import TrackInput, predict_tracks, select_tracks
from lib.models.build import build_model
from lib.models.pmce import PMCEOutput
from tests.test_model import random_coarse_mesh
from tests.test_model_variants import NUM_COARSE, TINY


class TargetEcho(torch.nn.Module):
    """Returns the x of joint 0 at the window's middle frame and the window itself, so tests can see
    which frames each prediction was made from."""

    def __init__(self, seq_len: int) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.dummy = torch.nn.Parameter(torch.zeros(()))
        self.windows: list[torch.Tensor] = []

    def forward(self, pose2d, img_feat):
        b, t = pose2d.shape[:2]
        assert t == self.seq_len and img_feat.shape[:2] == (b, t)
        self.windows.append(pose2d[:, :, 0, 0].clone())
        mid = pose2d[:, t // 2, :, 0]  # (B, J)
        mesh = mid[:, :1, None].expand(b, 5, 3)
        joints = torch.stack([mid, mid, mid], dim=-1)
        return PMCEOutput(mesh=mesh, joints=joints, pose3d=joints + img_feat[:, t // 2, :1, None])


def track_input(track_id: int, n: int, j: int = 19, d: int = 3) -> TrackInput:
    frames = np.arange(n, dtype=np.float32) + 100 * track_id
    pose2d = np.broadcast_to(frames[:, None, None], (n, j, 2)).copy()
    return TrackInput(track_id, pose2d, np.ones((n, d), np.float32))


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_every_frame_is_predicted_from_its_own_padded_window(batch_size):
    model = TargetEcho(seq_len=8)
    tracks = [track_input(0, 20), track_input(1, 3), track_input(2, 1)]  # two shorter than T
    preds = predict_tracks(model, tracks, seq_len=8, batch_size=batch_size)
    assert [p.track_id for p in preds] == [0, 1, 2]
    for track, pred in zip(tracks, preds, strict=True):
        n = len(track.pose2d)
        assert pred.vertices.shape == (n, 5, 3) and pred.joints.shape == (n, 19, 3)
        assert np.array_equal(pred.vertices[:, 0, 0], track.pose2d[:, 0, 0])  # frame k from window k
        assert np.allclose(pred.pose3d, pred.joints + 1)
    windows = torch.cat(model.windows).numpy()
    assert len(windows) == 24 and all(len(w) == min(len(w), batch_size) for w in model.windows)
    assert np.array_equal(windows[0], [0, 0, 0, 0, 0, 1, 2, 3])  # replicate padding at the start
    assert np.array_equal(windows[21], [100, 100, 100, 100, 101, 102, 102, 102])  # never crosses tracks
    assert np.array_equal(windows[23], [200] * 8)


def test_reflect_padding():
    model = TargetEcho(seq_len=5)
    predict_tracks(model, [track_input(0, 6)], seq_len=5, pad_mode="reflect")
    assert np.array_equal(model.windows[0][0].numpy(), [2, 1, 0, 1, 2])


def test_track_selection_messages_and_errors():
    tracks = [track_input(0, 20), track_input(1, 5)]
    keep, skipped = select_tracks(tracks, min_len=10)
    assert [t.track_id for t in keep] == [0]
    assert skipped == ["track 1: 5 frames < DEMO.MIN_TRACK_LEN = 10, skipped"]
    with pytest.raises(DemoError, match="no person found"):
        select_tracks([], min_len=10)
    with pytest.raises(
        DemoError, match=r"every track is shorter than DEMO.MIN_TRACK_LEN = 30 .* longest has 20"
    ):
        select_tracks(tracks, min_len=30)


def test_real_tiny_pmce_predicts_meshes_in_metres():
    torch.manual_seed(0)
    cfg = get_cfg(opts=TINY)
    model = build_model(cfg, random_coarse_mesh(NUM_COARSE, 17))
    tracks = [TrackInput(0, np.random.default_rng(0).uniform(-1, 1, (7, 19, 2)), np.zeros((7, 12)))]
    (pred,) = predict_tracks(model, tracks, seq_len=cfg.MODEL.SEQ_LEN, batch_size=3)
    assert pred.vertices.shape == (7, 6890, 3) and pred.joints.shape == (7, 19, 3)
    assert pred.vertices.dtype == np.float32 and np.isfinite(pred.vertices).all()
    assert not model.training
