"""Demo outputs: per-track ``.npz``, per-frame ``.obj`` and an animated glTF binary (``.glb``).

Every file is written atomically (a temporary file in the same folder, renamed when complete); the
pipeline writes them into :func:`lib.io.staged_dir`, so a failed run leaves no half-written outputs.

The ``.glb`` holds one mesh per track whose per-frame shapes are morph targets, played by a weight
animation (one key per frame; Blender imports them as shape keys with keyframes, three.js / glTF viewers
play them directly). It is written with numpy + struct only.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib.io import atomic_path

# glTF constants
_FLOAT, _UINT32, _UINT16, _UINT8 = 5126, 5125, 5123, 5121
_COMPONENT_TYPES = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint32): _UINT32}
_COMPONENT_TYPES |= {np.dtype(np.uint16): _UINT16, np.dtype(np.uint8): _UINT8}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_GLB_MAGIC, _GLB_JSON, _GLB_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
# Camera frame (x right, y down, z forward) -> glTF (x right, y up, z towards the viewer).
CAMERA_TO_GLTF = np.array([1.0, -1.0, -1.0], dtype=np.float32)


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray | float | int | str]) -> None:
    """``np.savez`` (uncompressed) of ``arrays``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def save_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Wavefront OBJ of one mesh. vertices: (V, 3); faces: (F, 3) 0-based vertex indices."""
    vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"expected vertices (V, 3) and faces (F, 3), got {vertices.shape}, {faces.shape}")
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"f {a} {b} {c}" for a, b, c in faces + 1]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class MeshAnimation:
    """One animated mesh of the scene: a person's track."""

    name: str
    vertices: np.ndarray  # (N, V, 3) camera frame (x right, y down, z forward), metres
    times: np.ndarray  # (N,) seconds, increasing (frame id / fps)


def save_glb(path: str | Path, meshes: Sequence[MeshAnimation], faces: np.ndarray) -> None:
    """One ``.glb`` scene with every track as a node whose mesh is animated through morph targets.

    Frame ``k`` of a track is morph target ``k`` (its offset from frame 0, the base shape); the
    animation sets target ``k``'s weight to 1 at ``times[k]`` and interpolates linearly in between. A
    node is scaled to 0 (hidden) outside its track's time span. Coordinates are converted to glTF's
    y-up convention (:data:`CAMERA_TO_GLTF`). faces: (F, 3) 0-based, shared by every mesh.
    """
    if not meshes:
        raise ValueError("no meshes to export")
    gltf = _GltfBuilder()
    faces = np.asarray(faces, dtype=np.uint32).reshape(-1)
    indices = gltf.accessor(faces, "SCALAR", _ELEMENT_ARRAY_BUFFER, with_bounds=False)
    end_time = max(float(m.times[-1]) for m in meshes)
    channels, samplers, nodes = [], [], []
    for mesh in meshes:
        verts = np.asarray(mesh.vertices, dtype=np.float32) * CAMERA_TO_GLTF  # (N, V, 3)
        times = np.asarray(mesh.times, dtype=np.float32)
        n = len(verts)
        if verts.ndim != 3 or verts.shape[2] != 3 or times.shape != (n,) or n == 0:
            raise ValueError(f"{mesh.name}: expected vertices (N, V, 3) and times (N,), got {verts.shape}")
        if n > 1 and np.any(np.diff(times) <= 0):
            raise ValueError(f"{mesh.name}: times must increase")
        base = gltf.accessor(verts[0], "VEC3", _ARRAY_BUFFER)
        targets = [{"POSITION": gltf.accessor(v - verts[0], "VEC3", _ARRAY_BUFFER)} for v in verts]
        weights = np.eye(n, dtype=np.float32)  # (N keys, N targets): key k shows frame k
        gltf.json["meshes"].append(
            {
                "name": mesh.name,
                "primitives": [{"attributes": {"POSITION": base}, "indices": indices, "targets": targets}],
                "weights": weights[0].tolist(),
                "extras": {"targetNames": [f"frame_{k:06d}" for k in range(n)]},
            }
        )
        node = len(gltf.json["nodes"])
        gltf.json["nodes"].append({"name": mesh.name, "mesh": len(gltf.json["meshes"]) - 1})
        nodes.append(node)
        key_times = gltf.accessor(times, "SCALAR", None)
        samplers.append(
            {"input": key_times, "output": gltf.accessor(weights, "SCALAR", None), "interpolation": "LINEAR"}
        )
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": "weights"}})
        # visibility: scale 0 before the first and after the last frame of the track
        dt = float(times[1] - times[0]) if n > 1 else 1.0 / 30.0
        vis_t = [0.0, float(times[0]), float(times[-1]) + dt, max(end_time, float(times[-1])) + dt]
        vis_s = [[0.0] * 3, [1.0] * 3, [0.0] * 3, [0.0] * 3]
        if times[0] <= 0:
            vis_t, vis_s = vis_t[1:], vis_s[1:]
        vis_t_acc = gltf.accessor(np.asarray(vis_t, dtype=np.float32), "SCALAR", None)
        vis_s_acc = gltf.accessor(np.asarray(vis_s, dtype=np.float32), "VEC3", None, with_bounds=False)
        samplers.append({"input": vis_t_acc, "output": vis_s_acc, "interpolation": "STEP"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": "scale"}})
    gltf.json["scenes"] = [{"nodes": nodes}]
    gltf.json["scene"] = 0
    gltf.json["animations"] = [{"name": "pmce", "channels": channels, "samplers": samplers}]
    with atomic_path(path) as tmp:
        tmp.write_bytes(gltf.to_glb())


class _GltfBuilder:
    """Accumulates one binary buffer and the JSON that describes it."""

    def __init__(self, generator: str = "pmce lib/demo/export.py") -> None:
        self.json: dict = {
            "asset": {"version": "2.0", "generator": generator},
            "buffers": [],
            "bufferViews": [],
            "accessors": [],
            "meshes": [],
            "nodes": [],
        }
        self._chunks: list[bytes] = []
        self._size = 0

    def accessor(self, data: np.ndarray, kind: str, target: int | None, with_bounds: bool = True) -> int:
        """Append ``data`` (float32, uint32, uint16 or uint8) as a bufferView + accessor; returns the
        accessor index. Bounds are required for POSITION and animation inputs; kept for every float
        accessor. MAT4 data is expected column-major, as glTF stores it."""
        data = np.ascontiguousarray(data)
        width = _WIDTHS[kind]
        if data.dtype not in _COMPONENT_TYPES:
            raise TypeError(f"unsupported accessor dtype {data.dtype}")
        blob = data.tobytes()
        view = {"buffer": 0, "byteOffset": self._size, "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        blob += b"\0" * (-len(blob) % 4)  # every view starts 4-byte aligned (uint8 / uint16 data)
        self._chunks.append(blob)
        self._size += len(blob)
        self.json["bufferViews"].append(view)
        accessor = {
            "bufferView": len(self.json["bufferViews"]) - 1,
            "componentType": _COMPONENT_TYPES[data.dtype],
            "count": data.size // width,
            "type": kind,
        }
        if with_bounds and data.dtype == np.float32:
            flat = data.reshape(-1, width)
            accessor["min"] = flat.min(axis=0).tolist()
            accessor["max"] = flat.max(axis=0).tolist()
        self.json["accessors"].append(accessor)
        return len(self.json["accessors"]) - 1

    def to_glb(self) -> bytes:
        binary = b"".join(self._chunks)
        binary += b"\0" * (-len(binary) % 4)
        self.json["buffers"] = [{"byteLength": len(binary)}]
        text = json.dumps(self.json, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(binary)
        return b"".join(
            [
                struct.pack("<III", _GLB_MAGIC, 2, total),
                struct.pack("<II", len(text), _GLB_JSON),
                text,
                struct.pack("<II", len(binary), _GLB_BIN),
                binary,
            ]
        )


def read_glb(path: str | Path) -> tuple[dict, bytes]:
    """(JSON, binary chunk) of a ``.glb``; enough to check exports without a glTF library."""
    data = Path(path).read_bytes()
    magic, version, total = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC or version != 2 or total != len(data):
        raise ValueError(f"{path} is not a glTF 2.0 binary")
    json_len, json_type = struct.unpack_from("<II", data, 12)
    if json_type != _GLB_JSON:
        raise ValueError(f"{path}: the first chunk is not JSON")
    doc = json.loads(data[20 : 20 + json_len])
    bin_len, bin_type = struct.unpack_from("<II", data, 20 + json_len)
    if bin_type != _GLB_BIN:
        raise ValueError(f"{path}: the second chunk is not BIN")
    start = 28 + json_len
    return doc, data[start : start + bin_len]


def read_accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    """Accessor ``index`` of a glTF read by :func:`read_glb`, as an (count,) or (count, k) array."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {code: dtype for dtype, code in _COMPONENT_TYPES.items()}[acc["componentType"]]
    width = _WIDTHS[acc["type"]]
    offset = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    values = np.frombuffer(binary, dtype=dtype, count=acc["count"] * width, offset=offset)
    return values if width == 1 else values.reshape(-1, width)
