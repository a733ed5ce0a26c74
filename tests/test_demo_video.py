"""Video and image-folder reading, rotation, frame ranges, the atomic video writer and input errors."""

import struct

import cv2
import numpy as np
import pytest

from lib.demo.errors import DemoError
from lib.demo.video import FrameSource, rotate_frame, write_video

W, H, N, FPS = 96, 64, 12, 25.0


def circle_frame(i: int) -> np.ndarray:
    """A white disc moving right by 4 px a frame on black."""
    frame = np.zeros((H, W, 3), dtype=np.uint8)
    cv2.circle(frame, (16 + 4 * i, 32), 8, (255, 255, 255), -1)
    return frame


def disc_x(frame: np.ndarray) -> float:
    mask = frame[..., 0] > 128
    return float(np.nonzero(mask)[1].mean())


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "circles.mp4"
    assert write_video(path, ((i, circle_frame(i)) for i in range(N)), FPS) == N
    return path


def test_video_reads_back_every_frame(video):
    source = FrameSource(video)
    info = source.info
    assert (info.width, info.height, info.fps, info.num_frames, info.rotation) == (W, H, FPS, N, 0)
    frames = list(source)
    assert [i for i, _ in frames] == list(range(N))
    for i, frame in frames:
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        assert disc_x(frame) == pytest.approx(16 + 4 * i, abs=1.0)
    assert len(list(source)) == N  # can be iterated again


def test_frame_range_keeps_original_frame_indices(video):
    source = FrameSource(video, start=3, end=7)
    frames = list(source)
    assert [i for i, _ in frames] == [3, 4, 5, 6]
    assert source.info.num_frames == 4 and source.info.start == 3
    assert disc_x(frames[0][1]) == pytest.approx(16 + 4 * 3, abs=1.0)


def test_image_folder(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:06d}.png"), circle_frame(i))
    (tmp_path / "notes.txt").write_text("not an image")
    source = FrameSource(tmp_path, start=1, image_fps=10.0)
    assert (source.info.width, source.info.height, source.info.fps, source.info.num_frames) == (W, H, 10.0, 4)
    frames = list(source)
    assert [i for i, _ in frames] == [1, 2, 3, 4]
    assert np.array_equal(frames[0][1], circle_frame(1))  # png is lossless


def set_display_rotation(path, matrix: tuple[int, ...]) -> None:
    """Overwrite the display matrix in the mp4's track header (version 0 'tkhd' box), as phones do."""
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    assert box > 0 and data[box + 4] == 0
    offset = box + 4 + 4 + 20 + 8 + 8  # version/flags, times/id/duration, reserved, layer..volume
    assert struct.unpack_from(">9i", data, offset) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    struct.pack_into(">9i", data, offset, *matrix)
    path.write_bytes(bytes(data))


def test_rotation_metadata_is_applied(tmp_path):
    """A video whose metadata says 'show it turned 90 degrees counter-clockwise' (what ffmpeg writes
    for -display_rotation 90) comes out upright: the top-left corner ends up bottom-left."""
    path = tmp_path / "phone.mp4"
    frame = np.zeros((H, W, 3), np.uint8)
    frame[:16, :16] = 255
    write_video(path, ((i, frame) for i in range(3)), FPS)
    set_display_rotation(path, (0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30))
    source = FrameSource(path)
    assert source.info.rotation == 270 and (source.info.width, source.info.height) == (H, W)
    for _, upright in source:
        assert upright.shape == (W, H, 3)
        assert upright[-8:, :8].mean() > 200 and upright[:8, :8].mean() < 50


def test_rotate_frame_turns_clockwise():
    frame = np.zeros((2, 3, 3), dtype=np.uint8)
    frame[0, 0] = 255  # top-left
    assert rotate_frame(frame, 0) is frame
    r90 = rotate_frame(frame, 90)
    assert r90.shape == (3, 2, 3) and r90[0, 1, 0] == 255  # top-left -> top-right
    assert rotate_frame(frame, 180)[1, 2, 0] == 255
    assert rotate_frame(frame, 270)[2, 0, 0] == 255


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _mkdir(path):
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.mp4", "not found"),
        (lambda p: _write(p / "empty.mp4", b""), "empty"),
        (lambda p: _write(p / "junk.mp4", b"\x00not a video" * 100), "video"),
        (lambda p: _mkdir(p / "folder"), "no images"),
    ],
)
def test_bad_inputs_raise_clear_errors(tmp_path, make, message):
    with pytest.raises(DemoError, match=message):
        FrameSource(make(tmp_path))


def test_range_past_the_end_and_empty_range(video):
    with pytest.raises(DemoError, match="no frame could be decoded"):
        FrameSource(video, start=N + 5)
    with pytest.raises(DemoError, match="empty frame range"):
        FrameSource(video, start=5, end=5)


def test_writer_applies_the_callback(tmp_path):
    path = tmp_path / "out" / "overlay.mp4"

    def draw(index, frame):
        out = frame.copy()
        out[:, :8] = (0, 0, 255)  # a red band
        return out

    assert write_video(path, ((i, circle_frame(i)) for i in range(4)), FPS, draw) == 4
    frames = list(FrameSource(path))
    assert len(frames) == 4 and frames[0][1][:, :4, 2].mean() > 200
    assert [p.name for p in path.parent.iterdir()] == ["overlay.mp4"]


def test_writer_leaves_nothing_on_error(tmp_path):
    def frames():
        yield 0, circle_frame(0)
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError, match="renderer failed"):
        write_video(tmp_path / "overlay.mp4", frames(), FPS)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DemoError, match="no frames"):
        write_video(tmp_path / "overlay.mp4", iter(()), FPS)
    assert list(tmp_path.iterdir()) == []


def test_source_from_config(video):
    from lib.config import get_cfg
    from lib.demo.video import build_frame_source

    source = build_frame_source(get_cfg(opts=["DEMO.START_FRAME", "2", "DEMO.END_FRAME", "5"]), video)
    assert [i for i, _ in source] == [2, 3, 4]
