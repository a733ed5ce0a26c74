"""The people backend a config names, built with its settings."""

from __future__ import annotations

from pathlib import Path

from lib.people.errors import PeopleError
from lib.people.types import PeopleBackend

BACKENDS = ("blazepose", "file", "onnx")


def build_backend(
    name: str,
    *,
    blazepose_dir: str | Path = "data/models/blazepose",
    detect_every: int = 5,
    reacquire_frames: int = 10,
    detection_file: str = "",
    frame_offset: int = 0,
    onnx_detector: str = "",
    onnx_pose: str = "",
    min_score: float = 0.5,
    mask_max_side: int = 0,
    threads: int = 1,
) -> PeopleBackend:
    """The backend called ``name`` (one of :data:`BACKENDS`); errors are PeopleErrors.
    ``mask_max_side`` > 0 asks for person masks (only blazepose gives them); ``threads``: LiteRT threads of
    each BlazePose model."""
    if name == "blazepose":
        from lib.people.blazepose_backend import BlazePoseBackend

        return BlazePoseBackend(
            blazepose_dir,
            min_score=min_score,
            detect_every=detect_every,
            mask_max_side=mask_max_side,
            reacquire_frames=reacquire_frames,
            threads=threads,
        )
    if name == "file":
        from lib.people.detection_file import DetectionFileBackend

        if not detection_file:
            raise PeopleError("DEMO.PEOPLE 'file' needs DEMO.DETECTION_FILE (a COCO result JSON)")
        return DetectionFileBackend(detection_file, frame_offset=frame_offset, min_score=min_score)
    if name == "onnx":
        from lib.people.onnx_backend import OnnxBackend

        return OnnxBackend(onnx_detector, onnx_pose, min_score=min_score)
    raise PeopleError(f"unknown people backend {name!r}; choose one of {', '.join(BACKENDS)}")
