"""Charts drawn with OpenCV (no plotting library): line plots and bar charts with a title, axis labels,
ticks, grid and legend.

Images are (H, W, 3) uint8 BGR on white, like the renderer's; sizes are (height, width) in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_SCALE = 0.45
TITLE_SCALE = 0.6
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
WHITE = (255, 255, 255)
# BGR of matplotlib's first tab10 colours, so that the charts look familiar.
PALETTE = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148))
# Space around the plotting area: left (tick labels + y label), top (title), right, bottom (x label).
MARGINS = (75, 40, 20, 55)


@dataclass(frozen=True)
class Axes:
    """The plotting area (pixel box) and the data ranges it shows."""

    left: int
    top: int
    right: int
    bottom: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def to_pixels(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Data coordinates (N,), (N,) -> (N, 2) int32 pixels."""
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        px = self.left + (np.asarray(x, np.float64) - x0) / (x1 - x0) * (self.right - self.left)
        py = self.bottom - (np.asarray(y, np.float64) - y0) / (y1 - y0) * (self.bottom - self.top)
        return np.round(np.stack([px, py], axis=-1)).astype(np.int32)


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """About ``count`` round tick values (steps 1, 2 or 5 x 10^k) covering [low, high]."""
    raw = (high - low) / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return np.arange(first, high + step * 1e-6, step)


def format_tick(value: float, ticks: np.ndarray) -> str:
    """A tick label with just the decimals the tick spacing needs."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def padded_range(low: float, high: float, from_zero: bool, head_room: float = 0.05) -> tuple[float, float]:
    """A data range with 5% room below (none when it starts at 0, for non-negative quantities) and
    ``head_room`` above; never empty."""
    low = min(low, 0.0) if from_zero else low
    span = high - low if high > low else max(abs(high), 1.0)
    return (low if from_zero else low - 0.05 * span, high + head_room * span)


def put_text(
    image: np.ndarray, text: str, x: float, y: float, scale: float = TEXT_SCALE, align: str = "left"
) -> None:
    """Draw ``text`` vertically centred on ``y``; ``align`` left / center / right places it about ``x``."""
    (width, height), _ = cv2.getTextSize(text, FONT, scale, 1)
    shift = {"left": 0, "center": -width // 2, "right": -width}[align]
    cv2.putText(image, text, (int(x + shift), int(y + height // 2)), FONT, scale, BLACK, 1, cv2.LINE_AA)


def put_vertical_text(image: np.ndarray, text: str, x: float, y: float, anchor: str = "center") -> None:
    """Draw ``text`` reading upwards, centred on ``x``; centred on ``y``, or starting below it ('top')."""
    (width, height), baseline = cv2.getTextSize(text, FONT, TEXT_SCALE, 1)
    patch = np.full((height + baseline + 2, width + 2, 3), 255, np.uint8)
    cv2.putText(patch, text, (1, height + 1), FONT, TEXT_SCALE, BLACK, 1, cv2.LINE_AA)
    patch = cv2.rotate(patch, cv2.ROTATE_90_COUNTERCLOCKWISE)
    top = int(y) if anchor == "top" else int(y) - patch.shape[0] // 2
    left = int(x) - patch.shape[1] // 2
    rows = slice(max(top, 0), min(top + patch.shape[0], image.shape[0]))
    cols = slice(max(left, 0), min(left + patch.shape[1], image.shape[1]))
    inner = patch[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
    image[rows, cols] = np.minimum(image[rows, cols], inner)  # dark text over whatever is there


def draw_axes(
    image: np.ndarray, axes: Axes, title: str, xlabel: str, ylabel: str, x_ticks: bool = True
) -> None:
    """Grid, ticks with labels, frame, title and axis labels around ``axes``."""
    y_ticks = nice_ticks(*axes.y_range)
    for value in y_ticks:
        _, py = axes.to_pixels(axes.x_range[0], value)
        cv2.line(image, (axes.left, int(py)), (axes.right, int(py)), GRID, 1)
        cv2.line(image, (axes.left - 4, int(py)), (axes.left, int(py)), BLACK, 1)
        put_text(image, format_tick(value, y_ticks), axes.left - 7, py, align="right")
    if x_ticks:
        ticks = nice_ticks(*axes.x_range, count=8)
        for value in ticks:
            px, _ = axes.to_pixels(value, axes.y_range[0])
            cv2.line(image, (int(px), axes.bottom), (int(px), axes.bottom + 4), BLACK, 1)
            put_text(image, format_tick(value, ticks), px, axes.bottom + 14, align="center")
    cv2.rectangle(image, (axes.left, axes.top), (axes.right, axes.bottom), BLACK, 1)
    put_text(image, title, (axes.left + axes.right) / 2, MARGINS[1] / 2, TITLE_SCALE, align="center")
    if xlabel:
        put_text(image, xlabel, (axes.left + axes.right) / 2, image.shape[0] - 14, align="center")
    put_vertical_text(image, ylabel, 14, (axes.top + axes.bottom) / 2)


def draw_legend(image: np.ndarray, axes: Axes, labels: Sequence[str]) -> None:
    """Colour keys of ``labels`` (palette order) in a white box at the top right of the plotting area."""
    width = max(cv2.getTextSize(label, FONT, TEXT_SCALE, 1)[0][0] for label in labels) + 40
    right, top = axes.right - 8, axes.top + 8
    cv2.rectangle(image, (right - width, top), (right, top + 18 * len(labels) + 6), WHITE, -1)
    cv2.rectangle(image, (right - width, top), (right, top + 18 * len(labels) + 6), BLACK, 1)
    for i, label in enumerate(labels):
        y = top + 12 + 18 * i
        cv2.line(image, (right - width + 6, y), (right - width + 28, y), PALETTE[i % len(PALETTE)], 2)
        put_text(image, label, right - width + 34, y)


def blank(size: tuple[int, int]) -> np.ndarray:
    return np.full((*size, 3), 255, np.uint8)


def line_plot(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[int, int] = (420, 800),
) -> np.ndarray:
    """One line per entry ``label: (x (N,), y (N,))``, coloured in palette order, with a legend (the y
    range has room above the data for it)."""
    image = blank(size)
    xs = np.concatenate([np.asarray(x, np.float64) for x, _ in series.values()])
    ys = np.concatenate([np.asarray(y, np.float64) for _, y in series.values()])
    left, top, right, bottom = MARGINS
    x_range = padded_range(xs.min(), xs.max(), from_zero=False)
    legend_room = 0.1 + 0.07 * len(series)
    y_range = padded_range(ys.min(), ys.max(), from_zero=bool(ys.min() >= 0), head_room=legend_room)
    axes = Axes(left, top, size[1] - right, size[0] - bottom, x_range, y_range)
    draw_axes(image, axes, title, xlabel, ylabel)
    for i, (x, y) in enumerate(series.values()):
        points = axes.to_pixels(x, y)
        cv2.polylines(image, [points], False, PALETTE[i % len(PALETTE)], 2, cv2.LINE_AA)
    draw_legend(image, axes, list(series))
    return image


def bar_chart(
    labels: Sequence[str],
    values: np.ndarray,
    title: str,
    ylabel: str,
    size: tuple[int, int] = (460, 800),
) -> np.ndarray:
    """One bar per label (names written upwards below the bars), each with its value on top."""
    label_room = max(cv2.getTextSize(label, FONT, TEXT_SCALE, 1)[0][0] for label in labels) + 10
    image = blank(size)
    left, top, right, _ = MARGINS
    values = np.asarray(values, np.float64)
    axes = Axes(left, top, size[1] - right, size[0] - label_room - 10, (0.0, float(len(values))),
                padded_range(0.0, float(values.max()), from_zero=True))  # fmt: skip
    draw_axes(image, axes, title, xlabel="", ylabel=ylabel, x_ticks=False)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        (x0, y_top), (x1, y_base) = axes.to_pixels(np.array([i + 0.15, i + 0.85]), np.array([value, 0.0]))
        cv2.rectangle(image, (int(x0), int(y_top)), (int(x1), int(y_base)), PALETTE[0], -1)
        put_text(image, f"{value:.0f}", (x0 + x1) / 2, y_top - 8, scale=0.35, align="center")
        put_vertical_text(image, label, (x0 + x1) / 2, axes.bottom + 6, anchor="top")
    return image
