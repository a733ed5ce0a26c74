"""Run logging: a text log, ``metrics.csv`` and TensorBoard events in the run folder.

Only the main process writes; on other ranks every method is a no-op.
"""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import numpy as np

CSV_FIELDS = ("epoch", "iteration", "split", "metric", "value")


class RunLogger:
    def __init__(self, run_dir: Path | None, enabled: bool = True) -> None:
        self.enabled = enabled and run_dir is not None
        self.text = _text_logger(run_dir / "log.txt" if self.enabled else None)
        self._writer = None
        self._csv_path = run_dir / "metrics.csv" if self.enabled else None
        self._tb_dir = run_dir / "tensorboard" if self.enabled else None
        if self.enabled and not self._csv_path.exists():
            with open(self._csv_path, "w", newline="") as f:
                csv.writer(f).writerow(CSV_FIELDS)

    def info(self, message: str) -> None:
        if self.enabled:
            self.text.info(message)

    def warning(self, message: str) -> None:
        if self.enabled:
            self.text.warning(f"warning: {message}")

    @property
    def writer(self):
        """TensorBoard writer, created on first use (keeps the import off the start-up path)."""
        if self._writer is None and self.enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self._tb_dir))
        return self._writer

    def scalars(
        self, split: str, values: dict[str, float], iteration: int, epoch: int, csv_too: bool
    ) -> None:
        """Log ``values`` under ``split/name`` to TensorBoard and, when ``csv_too``, to metrics.csv."""
        if not self.enabled:
            return
        for name, value in values.items():
            self.writer.add_scalar(f"{split}/{name}", value, iteration)
        if csv_too:
            with open(self._csv_path, "a", newline="") as f:
                csv.writer(f).writerows([epoch, iteration, split, k, f"{v:.6g}"] for k, v in values.items())

    def image(self, tag: str, image_hwc: np.ndarray, iteration: int) -> None:
        """Log an (H, W, 3) uint8 RGB image to TensorBoard."""
        if self.enabled:
            self.writer.add_image(tag, image_hwc, iteration, dataformats="HWC")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for handler in list(self.text.handlers):
            handler.close()
            self.text.removeHandler(handler)


def _text_logger(path: Path | None) -> logging.Logger:
    """A logger writing to stdout and, when given, to ``path``; independent of the root logger."""
    logger = logging.getLogger(f"pmce.run.{id(path)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stdout)] + ([logging.FileHandler(path)] if path else [])
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger
