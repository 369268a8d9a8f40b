"""The pure steps of AutoSampling (autosampling-journal.txt, section 4): plans, exploit, explore.

Nothing here trains a model. Every random draw takes an explicit ``numpy.random.Generator``;
:func:`worker_rng` derives it from ``(seed, cycle, worker)`` only, so any engine that runs
the workers (in process, on Ray actors, after a resume) draws the same sub-schedules.

Vocabulary: an *interval* is N_s mini-batches (Algorithm 1); a *cycle* is the run of
epochs between two exploration steps (N_u + 1 epochs, or the warm-up; Algorithm 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sampletune.errors import check
from sampletune.seeding import numpy_generator

EXPLORATIONS = ("uniform", "random", "mixture")  # section 5.4


def plan_cycles(epochs: int, warmup: int, nu: int) -> list[int]:
    """Epochs in each exploration cycle: the warm-up (if any), then ``nu + 1`` each.

    Section 5.2: explore every N_u + 1 epochs, the first time after ``warmup`` epochs. The
    last cycle is cut short at ``epochs``. ``sum(result) == epochs``.
    """
    check(epochs >= 1, "epochs", f"{epochs} must be positive", ">= 1")
    check(warmup >= 0, "warmup", f"{warmup} is negative", ">= 0")
    check(nu >= 0, "nu", f"{nu} is negative", ">= 0")
    cycles = [min(warmup, epochs)] if warmup > 0 else []
    remaining = epochs - sum(cycles)
    while remaining > 0:
        cycles.append(min(nu + 1, remaining))
        remaining -= cycles[-1]
    return cycles


def plan_intervals(steps_per_epoch: int, interval: int) -> list[int]:
    """Mini-batches in each exploitation interval of one epoch: N_s each, the last shorter.

    Intervals never straddle an epoch end, so the best worker after an epoch's last
    interval gives that epoch's validation point. ``sum(result) == steps_per_epoch``.
    """
    check(interval >= 1, "interval", f"{interval} must be positive", ">= 1")
    full, rest = divmod(int(steps_per_epoch), int(interval))
    return [interval] * full + ([rest] if rest else [])


def exploit(scores: Sequence[float]) -> int:
    """Eq. (5): the worker with the best validation score; ties go to the lowest worker id."""
    s = np.asarray(scores, dtype=np.float64)
    check(s.size >= 1 and not np.isnan(s).any(), "scores", "need one finite score per worker")
    return int(np.argmax(s))  # argmax returns the first maximum


def estimate_distribution(indices: np.ndarray, num_examples: int) -> np.ndarray:
    """Eq. (6): ``P(x) = count(x in H*) / |H*|`` from a recorded schedule's indices.

    ``indices`` is any int array of training-set positions; returns float64 ``(num_examples,)``
    summing to one.
    """
    idx = np.asarray(indices, dtype=np.int64).ravel()
    check(idx.size > 0, "indices", "the recorded schedule is empty")
    check(idx.min() >= 0 and idx.max() < num_examples, "indices",
          f"out of range for {num_examples} examples")
    counts = np.bincount(idx, minlength=num_examples).astype(np.float64)
    return counts / counts.sum()


def smooth_distribution(p: np.ndarray, beta: float) -> np.ndarray:
    """Eq. (7), first term: ``log(P(D) + beta)``, renormalised; float64 ``(N,)``.

    With ``beta == 1`` examples never picked keep probability zero (the uniform epochs of
    the mixture cover them); larger ``beta`` pulls the distribution towards uniform.
    """
    check(beta >= 1.0, "beta", f"{beta} is below 1", ">= 1")
    w = np.log(np.asarray(p, dtype=np.float64) + beta)
    return w / w.sum()


def draw_stream(weights: np.ndarray | None, num_examples: int, uniform_epochs: int,
                rng: np.random.Generator) -> np.ndarray:
    """Eq. (7): one sub-schedule stream drawn from ``Mixture(weights, N_u x uniform(D))``.

    One epoch of ``num_examples`` i.i.d. draws from ``weights`` joined with
    ``uniform_epochs`` permutations of the data set, and the union shuffled. With
    ``weights=None`` (uniform: warm-up, and the ``uniform``/``random`` exploration types) it
    is plain training: ``uniform_epochs + 1`` consecutive permutations. Returns int64
    ``((uniform_epochs + 1) * num_examples,)``.
    """
    n = int(num_examples)
    if weights is None:
        return np.concatenate([rng.permutation(n) for _ in range(uniform_epochs + 1)]
                              ).astype(np.int64)
    check(len(weights) == n, "weights", f"has {len(weights)} entries for {n} examples")
    drawn = rng.choice(n, size=n, replace=True, p=weights)
    parts = [drawn] + [rng.permutation(n) for _ in range(uniform_epochs)]
    return rng.permutation(np.concatenate(parts)).astype(np.int64)


def explore_weights(exploration: str, last_cycle: np.ndarray | None, num_examples: int,
                    beta: float) -> np.ndarray | None:
    """Algorithm 2's exploration step: the distribution the next cycle's draws come from.

    ``mixture`` estimates P(D) from the last cycle's recorded indices (eq. 6) and smooths it
    (eq. 7); ``uniform``/``random`` (and the first cycle, ``last_cycle is None``) keep the
    uniform distribution, returned as ``None``.
    """
    check(exploration in EXPLORATIONS, "exploration", f"unknown type {exploration!r}",
          ", ".join(EXPLORATIONS))
    if exploration != "mixture" or last_cycle is None:
        return None
    return smooth_distribution(estimate_distribution(last_cycle, num_examples), beta)


def worker_rng(seed: int, cycle: int, worker: int) -> np.random.Generator:
    """The generator of worker ``worker``'s draws in cycle ``cycle``: from these three alone
    (:func:`sampletune.seeding.numpy_generator`, the stream of ``default_rng([seed, cycle,
    worker])``)."""
    return numpy_generator(seed, cycle, worker)


def cycle_streams(weights: np.ndarray | None, num_examples: int, uniform_epochs: int,
                  batches: int, batch_size: int, seed: int, cycle: int, workers: int
                  ) -> list[np.ndarray]:
    """Each worker's sub-schedules for one cycle, as int64 ``(batches, batch_size)`` arrays.

    Draws :func:`draw_stream` from :func:`worker_rng` and keeps its first
    ``batches * batch_size`` indices (whole mini-batches; the tail of a short last cycle
    is dropped). A uniform stream is consecutive permutations, so only those the cycle
    uses are drawn (the same prefix, whatever ``uniform_epochs``).
    """
    need = batches * batch_size
    have = (uniform_epochs + 1) * num_examples
    check(need <= have, "batches", f"{need} indices asked of a stream of {have}")
    if weights is None:
        uniform_epochs = min(uniform_epochs, max(-(-need // num_examples), 1) - 1)
    return [draw_stream(weights, num_examples, uniform_epochs,
                        worker_rng(seed, cycle, w))[:need].reshape(batches, batch_size)
            for w in range(workers)]
