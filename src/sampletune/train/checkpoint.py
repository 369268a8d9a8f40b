"""A run directory's checkpoint: written atomically after an epoch (every
``TrainConfig.checkpoint_every`` seconds, and after the last), with the epoch records in
``metrics.jsonl`` beside it, and read back so that a killed run resumes from its last
checkpoint and ends with exactly the weights of an uninterrupted run.

``checkpoint.pt`` holds the trainer (weights, optimizer, step, generator, selector), the
sampler's and every other stateful observer's state, the epoch records, the last finished
epoch, the wall seconds so far and early stopping's best weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Sampler

from sampletune import io
from sampletune.errors import ConfigError
from sampletune.train.hooks import Observer, Stateful
from sampletune.train.trainer import Trainer

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"


@dataclass
class Progress:
    """A run between epochs, besides the trainer: the finished epochs' records, the epoch to
    train next, wall seconds spent so far (over resumed sessions) and the model state of
    early stopping's best epoch."""

    history: list[dict] = field(default_factory=list)
    next_epoch: int = 0
    elapsed: float = 0.0
    best_state: dict | None = None


def save_checkpoint(run_dir: Path, trainer: Trainer, sampler: Sampler[int],
                    observers: Sequence[Observer], progress: Progress) -> None:
    """Write ``checkpoint.pt`` and ``metrics.jsonl`` into ``run_dir`` after an epoch. Called
    on every rank (the trainer's state is gathered); rank 0 writes."""
    state = {
        "trainer": trainer.state_dict(),
        "sampler": sampler.state_dict() if isinstance(sampler, Stateful) else None,
        "observers": [o.state_dict() for o in _stateful(observers, sampler)],
        "history": progress.history, "epoch": progress.next_epoch - 1,
        "elapsed": progress.elapsed, "best_state": progress.best_state,
    }
    if trainer.world.rank == 0:
        io.save_torch(run_dir / CHECKPOINT_FILE, state)
        io.write_jsonl(run_dir / METRICS_FILE, progress.history)


def resume(run_dir: Path, trainer: Trainer, sampler: Sampler[int],
           observers: Sequence[Observer]) -> Progress:
    """Load ``run_dir``'s checkpoint into the trainer, the sampler and the stateful
    observers and return the run's progress; a fresh start when there is none. A
    checkpoint of another run is a :class:`ConfigError`."""
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        return Progress()
    # RNG states must stay CPU tensors; load_state_dict moves the rest to the device.
    state = io.load_torch(path, "checkpoint", map_location="cpu")
    try:
        return _restore(state, trainer, sampler, observers)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
        raise ConfigError("checkpoint", f"{path} does not fit this run "
                          f"({io.describe_error(err)})",
                          "the run's own settings, or --restart") from None


def _restore(state: dict, trainer: Trainer, sampler: Sampler[int],
             observers: Sequence[Observer]) -> Progress:
    trainer.load_state_dict(state["trainer"])
    if isinstance(sampler, Stateful):
        sampler.load_state_dict(state["sampler"])
    stateful = _stateful(observers, sampler)
    if len(stateful) != len(state["observers"]):
        raise ValueError(f"it holds {len(state['observers'])} observer states, this run has "
                         f"{len(stateful)} stateful observers")
    for obs, obs_state in zip(stateful, state["observers"], strict=True):
        obs.load_state_dict(obs_state)
    history, epoch, elapsed = state["history"], state["epoch"], state["elapsed"]
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= -1
            and isinstance(history, list)
            and [r.get("epoch") if isinstance(r, dict) else None for r in history]
            == list(range(epoch + 1))):
        raise ValueError(f"its history does not hold one record for each of epochs 0..{epoch}")
    if not (isinstance(elapsed, int | float) and math.isfinite(elapsed) and elapsed >= 0):
        raise ValueError(f"its elapsed time is {elapsed!r}")
    return Progress(history, epoch + 1, float(elapsed), state.get("best_state"))


def _stateful(observers: Sequence[Observer], sampler: Sampler[int]) -> list[Stateful]:
    """Observers whose state a checkpoint keeps (the sampler's own state is kept apart)."""
    return [o for o in observers if o is not sampler and isinstance(o, Stateful)]
