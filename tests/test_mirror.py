"""Test-time flip augmentation (lib/models/mirror.py) and the silhouette features' mirror image."""

import cv2
import numpy as np
import pytest
import torch

from lib.config import get_cfg
from lib.constants import flip_permutation
from lib.data.silhouette import mirror_silhouette_features, silhouette_features
from lib.engine.build import build_mirror
from lib.models.mirror import (
    Mirror,
    MirrorError,
    VertexMirror,
    mirror_points,
    vertex_mirror,
    window_runner,
)
from tests.test_model_variants import build
from tests.test_shared_frames import flat, frames, video_windows


def blob_mask(seed: int) -> np.ndarray:
    """(128, 128) uint8 mask of four random ellipses."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((128, 128), np.uint8)
    for _ in range(4):
        centre = tuple(int(v) for v in rng.integers(20, 108, 2))
        axes = tuple(int(v) for v in rng.integers(5, 40, 2))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


@pytest.mark.parametrize("seed", range(4))
def test_mirrored_features_equal_the_mirrored_masks_features(seed):
    mask = blob_mask(seed)
    plain, flipped = silhouette_features(mask), silhouette_features(np.ascontiguousarray(mask[:, ::-1]))
    mirrored = mirror_silhouette_features(torch.from_numpy(plain)[None])[0].numpy()
    assert np.abs(plain - flipped).mean() > 0.05  # the mask is not symmetric itself
    assert np.abs(mirrored - flipped).max() < 2e-3  # the contour's Fourier magnitudes: resampling only
    twice = mirror_silhouette_features(torch.from_numpy(mirrored))
    assert torch.allclose(twice, torch.from_numpy(plain), atol=1e-6)
    assert not mirror_silhouette_features(torch.zeros(2048)).any()  # an empty mask stays empty


def sphere(longitude_offset: float = 0.0, stretch_x: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A UV sphere (radius 0.3 m, 24 x 12) and its faces; offset 0 gives vertices symmetric in x."""
    lon = (torch.arange(24) + 0.5 + longitude_offset) * 2 * torch.pi / 24
    lat = torch.linspace(-1.4, 1.4, 12)
    grid_lat, grid_lon = torch.meshgrid(lat, lon, indexing="ij")
    ring = torch.stack(
        [stretch_x * grid_lat.cos() * grid_lon.cos(), grid_lat.sin(), grid_lat.cos() * grid_lon.sin()], -1
    )
    verts = 0.3 * ring.reshape(-1, 3)
    faces = []
    for i in range(11):
        for j in range(24):
            a, b, c, d = i * 24 + j, i * 24 + (j + 1) % 24, (i + 1) * 24 + j, (i + 1) * 24 + (j + 1) % 24
            faces += [(a, b, c), (b, d, c)]
    return verts, torch.tensor(faces)


def test_vertex_mirror_of_symmetric_and_asymmetric_templates():
    verts, faces = sphere()
    exact = vertex_mirror(verts, faces)
    assert torch.allclose(exact(verts), verts, atol=1e-6)  # each vertex lands on its mirror vertex
    assert torch.allclose(exact(exact(verts * 1.3)), verts * 1.3, atol=1e-6)
    shape_only, faces = sphere(longitude_offset=0.3)  # symmetric surface, vertices not mirrored
    approx = vertex_mirror(shape_only, faces)
    error = (approx(shape_only) - shape_only).norm(dim=-1)
    assert 1e-4 < error.max() < 0.01
    verts, faces = sphere(stretch_x=1.3)
    with pytest.raises(MirrorError, match=r"not left-right symmetric.*EVAL\.FLIP_TEST / DEMO\.FLIP_TEST"):
        vertex_mirror(verts + torch.tensor([0.05, 0.0, 0.0]), faces)  # off-centre: 100 mm from its mirror


def tiny_mirror(model) -> Mirror:
    vertices = model(*(t[None, :4] for t in frames(4))).mesh.shape[1]
    index = torch.arange(vertices)[:, None].expand(vertices, 3)
    weights = torch.tensor([1.0, 0.0, 0.0]).expand(vertices, 3)
    return Mirror(
        torch.tensor(flip_permutation("coco19")), VertexMirror(index, weights), lambda f: f.flip(-1)
    )


def test_flip_averaged_prediction_is_mirror_symmetric_and_shares_frames():
    """The averaged prediction of the mirrored video is the mirror image of the video's (joints exactly),
    and sharing per-frame parts does not change it."""
    model = build("MODEL.IMAGE_STREAM.LAYERS", "2")
    mirror = tiny_mirror(model)
    windows = video_windows((6, 3))
    pose, feat = frames(int(windows.max()) + 1)
    with torch.no_grad():
        plain = window_runner(model, False, mirror)(pose[windows], feat[windows], windows)
        shared = window_runner(model, True, mirror)(pose[windows], feat[windows], windows)
        flipped = window_runner(model, False, mirror)(*mirror.inputs(pose[windows], feat[windows]), windows)
        single = window_runner(model, False)(pose[windows], feat[windows], windows)
    assert (flat(plain) - flat(shared)).abs().max() <= 1e-5
    assert (flat(plain) - flat(single)).abs().max() > 1e-3  # the mirrored half does count
    for key in ("joints", "pose3d"):
        assert torch.allclose(
            mirror_points(getattr(flipped, key), mirror.joints), getattr(plain, key), atol=1e-5
        )


def test_build_mirror_switch_and_features():
    cfg = get_cfg("configs/tiny.yaml", ["STAGE", "pose"])
    assert build_mirror(cfg, None, "silhouette", False) is None
    assert build_mirror(cfg, None, "spin", True) is None  # SPIN features cannot be mirrored: no flip test


def test_a_shape_code_in_the_first_rows_is_kept():
    features = torch.from_numpy(silhouette_features(blob_mask(0)))
    features[:160] = torch.arange(160.0)  # an emulated shape estimate (DATA.SYNTHETIC.SHAPE_CODE_NOISE)
    mirrored = mirror_silhouette_features(features, keep=160)
    assert torch.equal(mirrored[:160], features[:160])
    # rows 5-31 of the grid never read rows 0-4
    assert torch.equal(mirrored[160:], mirror_silhouette_features(features)[160:])
    with pytest.raises(ValueError, match="whole rows"):
        mirror_silhouette_features(features, keep=100)


def test_dataset_kinds():
    from lib.data.build import image_features, training_source

    kinds = [image_features(n) for n in ("synthetic", "real_motion", "3dpw")]
    assert kinds == ["silhouette", "silhouette", "spin"]
    sources = [training_source(n) for n in ("synthetic_rendered", "real_motion", "h36m")]
    assert sources == ["synthetic", "synthetic", "h36m"]
