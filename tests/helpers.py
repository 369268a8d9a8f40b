"""Shared test helpers (importable: pytest puts ``tests/`` on ``sys.path``)."""

import torch


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


class Stop(Exception):
    """Raised by :class:`KillAfter` to simulate a killed run."""


class KillAfter:
    """An observer that kills training (raises :class:`Stop`) at training step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_batch(self, report):
        if report.step == self.step:
            raise Stop
