"""Shared test helpers (importable: pytest puts ``tests/`` on ``sys.path``)."""

from pathlib import Path

import torch

FAST_BO = {"n_init": 3, "num_restarts": 2, "raw_samples": 32}  # a cheap BO agent for tests


def swift_features(n=300):
    """Features of ``n`` examples of one class, 40% of them noisy with a larger loss, and the
    noise mask (``class_train_loss`` is ``train_loss`` shifted by a constant: the same ranks)."""
    from sampletune.features import class_relative

    g = torch.Generator().manual_seed(0)
    noisy = torch.rand(n, generator=g) < 0.4
    loss = torch.rand(n, generator=g, dtype=torch.float64) + 2.0 * noisy
    entropy = torch.rand(n, generator=g, dtype=torch.float64)
    train_loss = loss + torch.rand(n, generator=g, dtype=torch.float64)
    return {"loss": loss, "renormed_entropy": entropy, "grad_norm": loss + 0.1,
            "train_loss": train_loss,
            "class_train_loss": class_relative(train_loss, torch.zeros(n, dtype=torch.int64),
                                               (~noisy).double())}, noisy


def tiny_splits():
    """A small in-memory 3-class problem shaped like images (1, 4, 4), with 30% noise (the
    ``tiny_data`` fixture; a function so that spawned processes can build it too)."""
    from sampletune.data import RawDataset, make_splits

    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 1, 4, 4, generator=g) * 2
    y = torch.arange(300) % 3
    x = centers[y] + torch.randn(300, 1, 4, 4, generator=g)
    yt = torch.arange(90) % 3
    xt = centers[yt] + torch.randn(90, 1, 4, 4, generator=g)
    raw = RawDataset("tiny", x, y, xt, yt, num_classes=3, kind="image", hflip=False)
    return make_splits(raw, seed=0, noise=0.3)


class LazyX(torch.utils.data.Dataset):
    """Inputs served one at a time, as for data that does not fit in memory (a split that is
    not in memory: the streaming loader)."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


class Stop(Exception):
    """Raised by :class:`KillAfter` to simulate a killed run."""


class KillAfter:
    """An observer that kills training (raises :class:`Stop`) at training step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_batch(self, report):
        if report.step == self.step:
            raise Stop


def checkpoint_epoch(run_dir):
    """The last finished epoch that ``run_dir``'s checkpoint holds (a killed run's resume
    point: tests of resuming mid-way check that there is one)."""
    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["epoch"]


class CleanMass:
    """A cheap, picklable stand-in for the fine-tune: the probability mass on clean examples;
    raises :class:`Stop` at trial ``stop_at`` (a killed search)."""

    def __init__(self, noisy, stop_at=None):
        self.noisy, self.stop_at = noisy, stop_at

    def __call__(self, probs, trial):
        if trial == self.stop_at:
            raise Stop
        return float(probs[~self.noisy].sum())


def spawn_two_ranks(worker, args: tuple, results: list[Path]) -> None:
    """``torch.multiprocessing.spawn(worker, args, nprocs=2)`` for a gloo job whose ranks
    each write their file of ``results`` (atomically) before the final barrier. Gloo can
    abort a rank in its teardown ("terminate called without an active exception", SIGABRT)
    after both are done: that is not a failure of the test; a rank killed before both files
    exist is."""
    import torch.multiprocessing as mp

    try:
        mp.spawn(worker, args=args, nprocs=2)
    except mp.ProcessExitedException:
        if not all(Path(r).exists() for r in results):
            raise
