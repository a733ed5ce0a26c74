"""The training loop for one stage: exact resume, periodic validation, atomic checkpoints, DDP-aware.

The trainer receives built objects (model, optimiser, scheduler, loss function, loader, validation
function) and plain settings; it never reads the config.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from lib.engine.checkpoint import capture_rng_state, restore_rng_state, save_checkpoint
from lib.engine.logger import RunLogger
from lib.errors import UserError

NONFINITE_FRAMES = "NONFINITE_FRAMES"  # validation metrics: frames whose predictions hold NaN / inf (if any)

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    val_every: int = 1  # epochs between validations, and after the last one (0: never)
    save_every: int = 5  # epochs between kept epoch_NNN.pth checkpoints (0: never)
    checkpoint_every_iters: int = 0  # also refresh last.pth every N steps (0: at epoch ends only)
    stop_after_iters: int = 0  # stop (resumably) once this many steps are done in total (0: no limit)
    grad_clip: float = 0.0  # max gradient norm (0: no clipping)
    amp: str = "none"  # 'none', 'bf16' (CUDA or CPU) or 'fp16' (CUDA only) mixed precision
    log_every: int = 20  # steps between logged training scalars
    select_metric: str = "MPJPE"  # validation metric (lower is better) that chooses best.pth
    max_nonfinite_steps: int = 3  # consecutive non-finite steps skipped (no update); one more stops the run


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    epoch_step: int = 0  # batches done in the running epoch
    iteration: int = 0  # optimiser steps so far
    best: float = math.inf  # best validation value of select_metric


LossFn = Callable[[object, dict, int], dict[str, torch.Tensor]]  # (output, batch, epoch) -> terms


class DivergenceError(UserError, RuntimeError):
    """Training produced a non-finite loss or gradient in more consecutive steps than allowed, or weights
    holding NaN / inf were about to be saved. Nothing non-finite is ever written."""


class Trainer:
    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        loss_fn: LossFn,
        loader: torch.utils.data.DataLoader,
        validate: Callable[[nn.Module], dict[str, float]] | None,
        preview: Callable[[nn.Module], np.ndarray] | None = None,
        logger: RunLogger,
        run_dir: Path | None,
        settings: TrainSettings,
        device: torch.device,
        config_text: str,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.loss_fn, self.loader, self.validate = loss_fn, loader, validate
        self.logger, self.run_dir, self.settings = logger, run_dir, settings
        self.preview = preview  # model -> RGB image logged at every validation
        self.device, self.config_text = device, config_text
        self.rank, self.world_size = rank, world_size
        self.state = TrainState()
        self.nonfinite_in_a_row = 0  # consecutive skipped steps
        self.last_saved: str | None = None  # 'last.pth (step N)', for the divergence message
        # bf16 autocast also on CPU: ~1.7x faster steps with native bfloat16 (lib/models/precision.py)
        amp_on = settings.amp == "bf16" or (settings.amp == "fp16" and device.type == "cuda")
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=AMP_DTYPES[settings.amp])) if amp_on else nullcontext
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp_on and settings.amp == "fp16")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ----------------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until ``settings.epochs`` are complete or ``stop_after_iters`` steps are done."""
        s = self.settings
        while self.state.epoch < s.epochs:
            if not self.train_epoch():
                self.save("last.pth")
                self.logger.info(f"stopped after {self.state.iteration} steps; resume with --resume")
                return self.state
            self.state.epoch += 1
            self.state.epoch_step = 0
            self.scheduler.step()
            # The last epoch is always validated: best.pth must be able to be the final weights.
            if s.val_every and (self.state.epoch % s.val_every == 0 or self.state.epoch == s.epochs):
                self.run_validation()
            self.save("last.pth")
            if s.save_every and self.state.epoch % s.save_every == 0:
                self.save(f"epoch_{self.state.epoch:03d}.pth")
        return self.state

    def train_epoch(self) -> bool:
        """One epoch from ``state.epoch_step`` on; False when stopped early by ``stop_after_iters``."""
        s, state = self.settings, self.state
        batches_per_epoch = len(self.loader)
        self.loader.sampler.set_epoch(state.epoch, start=state.epoch_step * self.loader.batch_size)
        if hasattr(self.loader.dataset, "set_epoch"):
            self.loader.dataset.set_epoch(state.epoch)
        self.model.train()
        progress = tqdm(total=batches_per_epoch, initial=state.epoch_step, desc=f"epoch {state.epoch + 1}",
                        disable=not (self.is_main and sys.stderr.isatty()), leave=False)  # fmt: skip
        window_start, window_samples = time.perf_counter(), 0
        for batch in self.loader:
            terms, grad_norm, finite = self.step(batch)
            state.iteration += 1
            state.epoch_step += 1
            self.track_finite(finite, terms, grad_norm)
            window_samples += batch["pose2d"].shape[0] * self.world_size
            progress.update()
            if state.iteration % s.log_every == 0:
                rate = window_samples / (time.perf_counter() - window_start)
                self.log_step(terms, grad_norm, rate, progress)
                window_start, window_samples = time.perf_counter(), 0
            if s.checkpoint_every_iters and state.iteration % s.checkpoint_every_iters == 0:
                self.save("last.pth")
            if s.stop_after_iters and state.iteration >= s.stop_after_iters:
                progress.close()
                return False
        progress.close()
        return True

    def step(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool]:
        """One optimiser step; returns the detached loss terms, the gradient norm before clipping and
        whether both were finite. A non-finite step is skipped: the weights and the optimiser's moments
        stay as they were."""
        batch = {
            k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
        }
        with self.autocast():
            output = self.model(batch["pose2d"], batch["img_feat"])
        # float32 losses: the outputs are float32, and the mesh -> joint regression in bf16 would round
        # the coordinates by up to 2 mm
        terms = self.loss_fn(output, batch, self.state.epoch + 1)  # epochs are 1-based in the paper
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        max_norm = self.settings.grad_clip if self.settings.grad_clip > 0 else math.inf
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        finite = self.all_finite(terms["total"].detach(), grad_norm)
        if finite:
            self.scaler.step(self.optimizer)
        self.scaler.update()  # with fp16, a non-finite step also lowers the loss scale
        return {k: v.detach() for k, v in terms.items()}, grad_norm, finite

    def all_finite(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> bool:
        """Whether the loss and the gradient norm are finite on every rank: the step's one host sync.
        Under fp16 an infinite gradient is the loss scaler's business (it skips the step and lowers the
        scale), so only the loss counts there."""
        finite = torch.isfinite(loss)
        if not self.scaler.is_enabled():
            finite = finite & torch.isfinite(grad_norm)
        if self.world_size > 1:  # ranks must agree to skip: their losses differ
            finite = finite.to(torch.int32)
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite)

    def track_finite(self, finite: bool, terms: dict[str, torch.Tensor], grad_norm: torch.Tensor) -> None:
        """Warn about a skipped step; stop the run after more than ``max_nonfinite_steps`` in a row."""
        if finite:
            self.nonfinite_in_a_row = 0
            return
        self.nonfinite_in_a_row += 1
        limit, state = self.settings.max_nonfinite_steps, self.state
        where = f"step {state.iteration} (epoch {state.epoch + 1})"
        detail = nonfinite_detail(terms, grad_norm)
        if self.nonfinite_in_a_row > limit:
            raise DivergenceError(self.divergence_message(where, detail))
        self.logger.warning(
            f"{where}: {detail}; the step is skipped (no update), {self.nonfinite_in_a_row} in a row of at "
            f"most {limit} (TRAIN.MAX_NONFINITE_STEPS)"
        )

    def divergence_message(self, where: str, detail: str) -> str:
        saved = "No checkpoint was saved."
        if self.last_saved:
            saved = f"Nothing was saved after the divergence; {self.last_saved} holds the last saved weights."
        return (
            f"training diverged: {self.nonfinite_in_a_row} steps in a row up to {where} had a non-finite "
            f"loss or gradient (at most TRAIN.MAX_NONFINITE_STEPS = {self.settings.max_nonfinite_steps} are "
            f"skipped); {detail}. Likely cause: a learning rate too high for this model (now "
            f"{self.optimizer.param_groups[0]['lr']:g}: lower TRAIN.LR or set TRAIN.GRAD_CLIP), or NaN / inf "
            f"in the input data. {saved}"
        )

    # ----------------------------------------------------------------------------------------------
    def log_step(
        self, terms: dict[str, torch.Tensor], grad_norm: torch.Tensor, rate: float, progress
    ) -> None:
        values = {name: float(_mean_over_ranks(v, self.world_size)) for name, v in terms.items()}
        if not self.is_main:
            return
        values.update(lr=self.optimizer.param_groups[0]["lr"], grad_norm=float(grad_norm), samples_per_s=rate)
        self.logger.scalars("train", values, self.state.iteration, self.state.epoch + 1, csv_too=False)
        progress.set_postfix(loss=f"{values['total']:.4f}", samples_s=f"{rate:.0f}")

    def run_validation(self) -> None:
        if self.validate is None:
            return
        metrics = self.validate(self.model) if self.is_main else {}
        _barrier(self.world_size)
        if not self.is_main:
            return
        self.logger.scalars("val", metrics, self.state.iteration, self.state.epoch, csv_too=True)
        summary = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
        self.logger.info(f"epoch {self.state.epoch} validation: {summary}")
        if self.preview is not None:  # the bare network: a DDP forward on one rank could wait for the others
            self.logger.image("val/mesh", self.preview(unwrap(self.model)), self.state.iteration)
        if metrics.get(NONFINITE_FRAMES):
            self.logger.warning(
                f"epoch {self.state.epoch} validation: {metrics[NONFINITE_FRAMES]:.0f} frames have "
                "non-finite predictions (NaN / inf); best.pth is not updated"
            )
        value = metrics.get(self.settings.select_metric, math.inf)
        if math.isfinite(value) and value < self.state.best:
            self.state.best = value
            self.save("best.pth")

    # ----------------------------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        return {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            **asdict(self.state),
            "rng": capture_rng_state(),
            "config": self.config_text,
        }

    def save(self, name: str) -> None:
        """Write checkpoint ``name`` atomically; weights holding NaN / inf are never written."""
        if not self.is_main or self.run_dir is None:
            return
        if not weights_finite(unwrap(self.model)):
            raise DivergenceError(
                f"the weights hold NaN / inf at step {self.state.iteration}: {name} is not written "
                f"({self.last_saved or 'no checkpoint'} keeps the last finite weights)"
            )
        save_checkpoint(self.checkpoint(), self.run_dir / name)
        if name == "last.pth":
            self.last_saved = f"last.pth (step {self.state.iteration})"

    def resume(self, checkpoint: dict) -> None:
        """Continue exactly where ``checkpoint`` left off (weights, optimiser, schedule, RNG, position)."""
        unwrap(self.model).load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = TrainState(**{k: checkpoint[k] for k in ("epoch", "epoch_step", "iteration", "best")})
        self.last_saved = f"the resumed checkpoint (step {self.state.iteration})"
        restore_rng_state(checkpoint["rng"])


def nonfinite_detail(terms: dict[str, torch.Tensor], grad_norm: torch.Tensor) -> str:
    """Which loss terms are non-finite, and the gradient norm (host copies: only for skipped steps)."""
    values = {name: float(value) for name, value in terms.items()}
    bad = [f"{name}={value}" for name, value in values.items() if not math.isfinite(value)]
    loss = f"non-finite loss terms {', '.join(bad)}" if bad else f"finite loss (total={values['total']:.4g})"
    return f"{loss}, gradient norm {float(grad_norm):.4g}"


def weights_finite(model: nn.Module) -> bool:
    """Whether every floating-point parameter and buffer is finite (one host sync)."""
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _mean_over_ranks(value: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / world_size


def _barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()
