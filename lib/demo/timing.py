"""Per-stage wall time and frames per second, for the demo's speed report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """``with timer.stage("people", frames=n): ...`` records seconds and frames per stage."""

    def __init__(self) -> None:
        self.stages: dict[str, tuple[float, int]] = {}

    @contextmanager
    def stage(self, name: str, frames: int = 0) -> Iterator[dict]:
        """The yielded dict's ``frames`` may be set inside the block when the count is known later."""
        info = {"frames": frames}
        start = time.perf_counter()
        try:
            yield info
        finally:
            seconds, count = self.stages.get(name, (0.0, 0))
            self.stages[name] = (seconds + time.perf_counter() - start, count + int(info["frames"]))

    def report(self) -> str:
        """One line per stage: seconds and frames/s."""
        lines = []
        for name, (seconds, frames) in self.stages.items():
            rate = f"{frames / seconds:8.1f} frames/s" if seconds > 0 and frames else " " * 17
            lines.append(f"{name:<12s} {seconds:7.2f} s  {rate}  ({frames} frames)")
        return "\n".join(lines)

    def rates(self) -> dict[str, float]:
        """Stage -> frames per second (stages that counted frames)."""
        return {
            name: round(frames / seconds, 2)
            for name, (seconds, frames) in self.stages.items()
            if seconds > 0 and frames
        }
