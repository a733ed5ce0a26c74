"""Demo exports read back: npz, obj, the animated glb (own reader, and pygltflib when installed)."""

import numpy as np
import pytest

from lib.demo.export import (
    CAMERA_TO_GLTF,
    MeshAnimation,
    read_accessor,
    read_glb,
    save_glb,
    save_npz,
    save_obj,
)
from lib.io import atomic_path, staged_dir

FACES = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])  # a tetrahedron


def tetra_frames(n: int, shift: float = 0.0) -> np.ndarray:
    """(n, 4, 3) a tetrahedron moving along x and growing."""
    base = np.array([[0, 0, 3], [0.1, 0, 3], [0, 0.1, 3], [0, 0, 3.1]], dtype=np.float32)
    t = np.arange(n, dtype=np.float32)[:, None, None]
    return base * (1 + 0.1 * t) + np.array([0.05, 0, 0], dtype=np.float32) * t + shift


def test_npz_round_trip(tmp_path):
    arrays = {"vertices": np.random.rand(3, 5, 3).astype(np.float32), "frame_ids": np.arange(3), "fps": 29.97}
    save_npz(tmp_path / "track_000.npz", arrays)
    with np.load(tmp_path / "track_000.npz") as data:
        assert np.array_equal(data["vertices"], arrays["vertices"]) and float(data["fps"]) == 29.97
        assert np.array_equal(data["frame_ids"], [0, 1, 2])
    assert [p.name for p in tmp_path.iterdir()] == ["track_000.npz"]
    assert (tmp_path / "track_000.npz").stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_obj_round_trip(tmp_path):
    verts = tetra_frames(1)[0]
    save_obj(tmp_path / "m.obj", verts, FACES)
    lines = (tmp_path / "m.obj").read_text().splitlines()
    v = np.array([[float(x) for x in line.split()[1:]] for line in lines if line.startswith("v ")])
    f = np.array([[int(x) for x in line.split()[1:]] for line in lines if line.startswith("f ")])
    assert np.allclose(v, verts, atol=1e-6) and np.array_equal(f - 1, FACES)


def test_glb_animation_reproduces_every_frame(tmp_path):
    a, b = tetra_frames(6), tetra_frames(3, shift=1.0)
    fps = 30.0
    meshes = [
        MeshAnimation("track_000", a, np.arange(6) / fps),
        MeshAnimation("track_001", b, np.arange(2, 5) / fps),  # appears at frame 2
    ]
    path = tmp_path / "scene.glb"
    save_glb(path, meshes, FACES)
    doc, binary = read_glb(path)
    assert doc["asset"]["version"] == "2.0" and len(doc["nodes"]) == 2
    assert np.array_equal(read_accessor(doc, binary, 0).reshape(-1, 3), FACES)
    channels = doc["animations"][0]["channels"]
    samplers = doc["animations"][0]["samplers"]
    for node, (mesh, source) in enumerate(zip(doc["meshes"], meshes, strict=True)):
        prim = mesh["primitives"][0]
        base = read_accessor(doc, binary, prim["attributes"]["POSITION"])
        targets = [read_accessor(doc, binary, t["POSITION"]) for t in prim["targets"]]
        weights_channel = next(c for c in channels if c["target"] == {"node": node, "path": "weights"})
        sampler = samplers[weights_channel["sampler"]]
        times = read_accessor(doc, binary, sampler["input"])
        weights = read_accessor(doc, binary, sampler["output"]).reshape(len(times), len(targets))
        assert np.allclose(times, source.times)
        for k in range(len(times)):  # the shape shown at key k is frame k, in glTF axes
            shape = base + sum(w * t for w, t in zip(weights[k], targets, strict=True))
            assert np.allclose(shape, source.vertices[k] * CAMERA_TO_GLTF, atol=1e-6)
        accessor = doc["accessors"][prim["attributes"]["POSITION"]]
        assert np.allclose(accessor["min"], base.min(0)) and np.allclose(accessor["max"], base.max(0))
    scale_channel = next(c for c in channels if c["target"] == {"node": 1, "path": "scale"})
    sampler = samplers[scale_channel["sampler"]]
    assert sampler["interpolation"] == "STEP"
    assert np.allclose(read_accessor(doc, binary, sampler["input"]), [0, 2 / fps, 5 / fps, 6 / fps])
    assert np.allclose(read_accessor(doc, binary, sampler["output"])[:, 0], [0, 1, 0, 0])


def test_glb_loads_in_pygltflib(tmp_path):
    import pygltflib

    save_glb(
        tmp_path / "scene.glb", [MeshAnimation("track_000", tetra_frames(4), np.arange(4) / 25.0)], FACES
    )
    gltf = pygltflib.GLTF2().load(str(tmp_path / "scene.glb"))
    assert len(gltf.meshes) == 1 and len(gltf.meshes[0].primitives[0].targets) == 4
    assert gltf.animations[0].channels[0].target.path == "weights"
    assert gltf.buffers[0].byteLength == len(gltf.binary_blob())


def test_atomic_output_and_staged_dir_leave_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.npz") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []

    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_dir(out) as stage:
        save_npz(stage / "track_000.npz", {"x": np.zeros(2)})
        raise RuntimeError("later stage failed")
    assert list(tmp_path.iterdir()) == []  # neither the output folder nor the staging folder

    out.mkdir()
    (out / "track_001.npz").write_text("a previous run's output")
    with staged_dir(out) as stage:
        save_npz(stage / "track_000.npz", {"x": np.zeros(2)})
        (stage / "meshes").mkdir()
        save_obj(stage / "meshes" / "000000.obj", tetra_frames(1)[0], FACES)
    assert sorted(p.name for p in out.iterdir()) == ["meshes", "track_000.npz"]  # one run's outputs only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
