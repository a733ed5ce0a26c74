"""Frames in (a video file or an image folder) and an annotated video out, with OpenCV.

Frames are BGR uint8 (H, W, 3) as OpenCV gives them, already turned upright: the rotation stored in a
phone video's metadata is applied here, so every later stage sees the frame as it is meant to be viewed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lib.demo.errors import DemoError
from lib.io import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class VideoInfo:
    """What later stages need to know about the source. Sizes are those of the upright frames."""

    path: Path
    fps: float
    width: int
    height: int
    num_frames: int  # frames in the selected range (for a video: the container's count, may be approximate)
    start: int  # first frame index of the range
    rotation: int  # degrees clockwise applied to the decoded frames (0, 90, 180, 270)


class FrameSource:
    """A video file or an image folder, restricted to the frames ``[start, end)``.

    Iterating yields ``(frame_index, frame)`` with frame indices counted from the start of the video
    (not of the range), so outputs can be matched to the original video. It can be iterated more than
    once (the demo reads the frames again to draw the overlay).
    """

    def __init__(self, path: str | Path, start: int = 0, end: int | None = None, image_fps: float = 30.0):
        self.path = Path(path)
        if not self.path.exists():
            raise DemoError(f"input not found: {self.path} (pass a video file or a folder of images)")
        if start < 0 or (end is not None and end >= 0 and end <= start):
            raise DemoError(f"empty frame range [{start}, {end}): the start must be >= 0 and below the end")
        self.start = start
        self.end = None if end is None or end < 0 else end
        if self.path.is_dir():
            self._images = _list_images(self.path)[self.start : self.end]
            if not self._images:
                raise DemoError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.path} for the frame range")
            first = _read_image(self._images[0])
            self.info = VideoInfo(
                self.path, image_fps, first.shape[1], first.shape[0], len(self._images), start, 0
            )
        else:
            self._images = None
            self.info = self._probe_video()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if self._images is not None:
            for i, image_path in enumerate(self._images):
                frame = _read_image(image_path)
                if frame.shape[:2] != (self.info.height, self.info.width):
                    raise DemoError(
                        f"{image_path} is {frame.shape[1]}x{frame.shape[0]} but the first image is "
                        f"{self.info.width}x{self.info.height}; all images of a folder must have one size"
                    )
                yield self.start + i, frame
            return
        cap = self._open()
        try:
            _skip(cap, self.start)
            index = self.start
            while self.end is None or index < self.end:
                ok, frame = cap.read()
                if not ok:
                    break
                yield index, rotate_frame(frame, self.info.rotation)
                index += 1
        finally:
            cap.release()

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise DemoError(f"cannot read {self.path} as a video (unknown format or a damaged file)")
        # Rotate ourselves from the metadata, so that the result does not depend on the OpenCV build.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        return cap

    def _probe_video(self) -> VideoInfo:
        if self.path.stat().st_size == 0:
            raise DemoError(f"{self.path} is empty (0 bytes)")
        cap = self._open()
        try:
            rotation = round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360
            if rotation not in (0, 90, 180, 270):
                rotation = 0
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            _skip(cap, self.start)
            ok, frame = cap.read()
        finally:
            cap.release()
        if not ok:
            where = f"at frame {self.start}" if self.start else ""
            raise DemoError(f"no frame could be decoded from {self.path} {where}".rstrip())
        frame = rotate_frame(frame, rotation)
        if not np.isfinite(fps) or fps <= 0:
            fps = 30.0  # some containers carry no rate; the timing of outputs then assumes 30 fps
        stop = count if self.end is None else min(count, self.end)
        num_frames = max(stop - self.start, 1) if count > 0 else 0
        return VideoInfo(
            self.path, float(fps), frame.shape[1], frame.shape[0], num_frames, self.start, rotation
        )


def build_frame_source(cfg, path: str | Path) -> FrameSource:
    """The video or image folder at ``path`` with the DEMO.* frame range and image-folder rate."""
    d = cfg.DEMO
    return FrameSource(path, start=d.START_FRAME, end=d.END_FRAME, image_fps=d.IMAGE_FOLDER_FPS)


def rotate_frame(frame: np.ndarray, degrees: int) -> np.ndarray:
    """The frame turned ``degrees`` clockwise (0, 90, 180 or 270)."""
    return frame if degrees == 0 else cv2.rotate(frame, _ROTATE[degrees])


def _skip(cap: cv2.VideoCapture, count: int) -> None:
    """Advance by decoding (exact for every codec, unlike seeking by CAP_PROP_POS_FRAMES)."""
    for _ in range(count):
        if not cap.grab():
            return


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _read_image(path: Path) -> np.ndarray:
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise DemoError(f"cannot read the image {path}")
    return frame


def write_video(
    path: str | Path,
    frames: Iterable[tuple[int, np.ndarray]],
    fps: float,
    draw: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> int:
    """Write ``frames`` (``(index, BGR frame)`` pairs) as an mp4 (mp4v), each passed through ``draw``.

    The file appears only when complete: it is written to a temporary file in the same folder and
    renamed at the end; on any error nothing is left behind. Returns the number of frames written.
    """
    path = Path(path)
    written = 0
    with atomic_path(path) as tmp:
        writer = None
        try:
            for index, frame in frames:
                image = frame if draw is None else draw(index, frame)
                if writer is None:
                    height, width = image.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                    if not writer.isOpened():
                        raise DemoError(f"OpenCV cannot write an mp4 video to {path}")
                writer.write(np.ascontiguousarray(image, dtype=np.uint8))
                written += 1
        finally:
            if writer is not None:
                writer.release()
        if written == 0:
            raise DemoError(f"no frames to write to {path}")
    return written
