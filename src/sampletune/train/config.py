"""Training settings, validated before any work starts."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace

from sampletune.errors import check, check_flag, check_int, check_number
from sampletune.seeding import check_seed

LR_SCHEDULES = ("step", "linear", "cosine", "constant")
AMP_MODES = ("off", "bf16", "fp16")
# Upper bounds that catch typos (1e30, an extra zero) before any work. MAX_LR: the largest
# published SGD learning rates (Goyal et al.'s linear scaling: 0.1 per 256 examples, 3.2 at
# batch 8k) are below 10; weight decay multiplies the weights by (1 - lr * wd) each step and
# is ~1e-4..5e-2 in practice, so 1 or more only ever means a typo.
MAX_LR = 10.0
MAX_WEIGHT_DECAY = 1.0
MAX_EPOCHS = 100_000
# Settings that change how a run is saved, not its results: run identities leave them out,
# so a run resumes under other values.
NOT_IN_IDENTITY = ("checkpoint_every",)
DEVICE_FORMS = "auto, cpu, cuda, cuda:N, mps"
_DEVICE = re.compile(r"auto|(cpu|mps)(:0)?|cuda(:\d+)?")


@dataclass(frozen=True)
class TrainConfig:
    """SGD settings for one training run.

    ``budget`` is B of budgeted-importance-sampling.txt section 3: the fraction of a full
    training's forward/backward passes. Runs draw ``round(N * B)`` examples per epoch,
    rounded down to whole mini-batches below a full budget
    (:func:`sampletune.samplers.base.epoch_draws`), for the same ``epochs`` (unif-SGD, p-SGD,
    any ``--sampler`` and ``swift search``'s trainings); scan-SGD instead
    trains ``round(epochs * B)`` full epochs. The LR schedule is always defined on the
    budgeted number of iterations, so it completes its decay within the budget.
    """

    epochs: int = 40  # epochs of a full training (T)
    batch_size: int = 128
    lr: float = 0.1  # SGD learning rate
    momentum: float = 0.9
    nesterov: bool = False  # Nesterov momentum
    weight_decay: float = 5e-4
    lr_schedule: str = "step"  # step, linear, cosine or constant, over the budgeted steps
    # step-schedule milestones as fractions of training (method runs: 1/3 2/3)
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1  # step-schedule factor at each milestone
    final_lr: float = 1e-6  # where the linear and cosine schedules end
    budget: float = 1.0  # budget B in (0, 1]: N*B examples per epoch
    seed: int = 0
    device: str = "cpu"  # auto, cpu, cuda, cuda:N, mps
    eval_every: int = 1  # evaluate val/test every this many epochs (and at the end)
    loader_workers: int = 2  # DataLoader workers for data that does not fit in memory
    # mixed precision: off, bf16 (CPU or CUDA) or fp16 (CUDA, with a grad scaler)
    amp: str = "off"
    compile: bool = False  # train through torch.compile(model) (gains: benchmarks/gpu.py)
    # wall seconds between a run directory's checkpoints (0: after every epoch; an
    # autosampling search's: every interval); the last epoch always writes one, so a killed
    # run loses at most this much work. It does not
    # change results: a run resumes under another value
    checkpoint_every: float = 30.0

    def __post_init__(self):
        self._check_types()
        check(1 <= self.epochs <= MAX_EPOCHS, "epochs",
              f"{self.epochs} is outside [1, {MAX_EPOCHS}]", f"1..{MAX_EPOCHS}")
        check(self.batch_size >= 1, "batch_size", f"{self.batch_size} must be positive",
              ">= 1, at most the training split's size")
        check(0 < self.lr <= MAX_LR, "lr", f"{self.lr} is outside (0, {MAX_LR:g}]",
              f"0 < lr <= {MAX_LR:g}")
        check(0 <= self.momentum < 1, "momentum", f"{self.momentum} is outside [0, 1)",
              "0 <= momentum < 1")
        check(not self.nesterov or self.momentum > 0, "nesterov", "needs momentum > 0")
        check(0 <= self.weight_decay < MAX_WEIGHT_DECAY, "weight_decay",
              f"{self.weight_decay} is outside [0, {MAX_WEIGHT_DECAY:g})",
              f"0 <= weight_decay < {MAX_WEIGHT_DECAY:g}")
        check(self.lr_schedule in LR_SCHEDULES, "lr_schedule",
              f"unknown schedule {self.lr_schedule!r}", ", ".join(LR_SCHEDULES))
        check(all(0 < m < 1 for m in self.milestones), "milestones",
              f"{list(self.milestones)} must be fractions of training", "each in (0, 1)")
        ms = self.milestones
        check(all(a < b for a, b in zip(ms, ms[1:], strict=False)), "milestones",
              f"{list(self.milestones)} must increase", "increasing fractions in (0, 1)")
        check(0 < self.gamma <= 1, "gamma", f"{self.gamma} is outside (0, 1]")
        check(0 <= self.final_lr, "final_lr", f"{self.final_lr} is negative", ">= 0")
        check(self.final_lr < self.lr or self.lr_schedule not in ("linear", "cosine"), "lr",
              f"{self.lr:g} is not above the {self.lr_schedule} schedule's end point "
              f"final_lr={self.final_lr:g}", f"lr > {self.final_lr:g}")
        check(0 < self.budget <= 1, "budget", f"{self.budget} is outside (0, 1]", "0 < budget <= 1")
        check(self.loader_workers >= 0, "loader_workers", f"{self.loader_workers} is negative",
              ">= 0")
        check(self.eval_every >= 1, "eval_every", f"{self.eval_every} must be positive", ">= 1")
        check(math.isfinite(self.checkpoint_every) and self.checkpoint_every >= 0,
              "checkpoint_every", f"{self.checkpoint_every} is not a number of seconds",
              ">= 0 (0: after every epoch)")
        check(math.isfinite(self.final_lr), "final_lr", f"{self.final_lr} is not finite",
              ">= 0")
        self._check_ints()
        check_amp(self.amp, self.device)

    def _check_types(self) -> None:
        """Each field's type, before the ranges (whose messages stay): a string, bool or
        float where another type belongs is refused, not cast; integrality is
        :meth:`_check_ints`'."""
        for name in ("epochs", "batch_size", "eval_every", "loader_workers", "seed"):
            check_number(getattr(self, name), name, "an integer")
        for name in ("lr", "momentum", "weight_decay", "gamma", "final_lr", "budget",
                     "checkpoint_every"):
            check_number(getattr(self, name), name, "a finite number")
        check_flag(self.nesterov, "nesterov")
        check_flag(self.compile, "compile")
        check(isinstance(self.milestones, tuple), "milestones",
              f"{self.milestones!r} is not a tuple", "a tuple of fractions in (0, 1)")
        for m in self.milestones:
            check_number(m, "milestones", "fractions in (0, 1)")
        for name in ("lr_schedule", "amp"):
            check(isinstance(getattr(self, name), str), name,
                  f"{getattr(self, name)!r} is not a string")
        check(isinstance(self.device, str) and _DEVICE.fullmatch(self.device) is not None,
              "device", f"unknown device {self.device!r}", DEVICE_FORMS)

    def _check_ints(self) -> None:
        """The integer fields are integers (1.5 is not cast to 1) and the seed a seed."""
        check_int(self.epochs, "epochs", 1, MAX_EPOCHS)
        check_int(self.batch_size, "batch_size", 1,
                  allowed=">= 1, at most the training split's size")
        check_int(self.eval_every, "eval_every", 1)
        check_int(self.loader_workers, "loader_workers", 0)
        check_seed(self.seed, bits=64)  # derived seeds (FineTuner's seed * 10_007) pass here

    def replace(self, **changes) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d


def check_amp(amp: str, device: str) -> None:
    """``amp`` is one of :data:`AMP_MODES`, and fp16 trains on CUDA (its grad scaler runs
    there only); ``device`` ``auto`` passes, to be checked once resolved."""
    check(amp in AMP_MODES, "amp", f"unknown mode {amp!r}", ", ".join(AMP_MODES))
    check(amp != "fp16" or device == "auto" or device.startswith("cuda"), "amp",
          f"fp16 needs a CUDA device (its grad scaler runs there only), not {device!r}",
          "off or bf16 on this device")
