"""Shared test helpers (importable: pytest puts ``tests/`` on ``sys.path``)."""

import torch

FAST_BO = {"n_init": 3, "num_restarts": 2, "raw_samples": 32}  # a cheap BO agent for tests


def swift_features(n=300):
    """Features of ``n`` examples, 40% of them noisy with a larger loss, and the noise mask."""
    g = torch.Generator().manual_seed(0)
    noisy = torch.rand(n, generator=g) < 0.4
    loss = torch.rand(n, generator=g, dtype=torch.float64) + 2.0 * noisy
    return {"loss": loss, "renormed_entropy": torch.rand(n, generator=g, dtype=torch.float64),
            "grad_norm": loss + 0.1,
            "train_loss": loss + torch.rand(n, generator=g, dtype=torch.float64)}, noisy


class Stop(Exception):
    """Raised by :class:`KillAfter` to simulate a killed run."""


class KillAfter:
    """An observer that kills training (raises :class:`Stop`) at training step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_batch(self, report):
        if report.step == self.step:
            raise Stop
