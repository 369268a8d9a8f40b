"""Figures of an AutoSampling search (autosampling-journal.txt, Figs. 2, 4 and 5), as PNG files.

Stages are windows of epochs ending at the stage epochs (those at which per-example losses
were kept): stage ``k`` covers epochs ``(e_{k-1}, e_k]``. Sampling frequency is draws per
example per epoch within the window (uniform sampling: 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from sampletune.autosampling.schedule import RecordedSchedule
from sampletune.plots import plt, save_figure


def stage_frequencies(schedule: RecordedSchedule, stage_epochs: Sequence[int]
                      ) -> list[np.ndarray]:
    """For each stage, float64 ``(n,)`` draws per example per epoch inside its window."""
    bounds = [0, *stage_epochs]
    return [schedule.counts(lo, hi) / max(hi - lo, 1)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def count_histograms(schedule: RecordedSchedule, stage_epochs: Sequence[int],
                     path: str | Path, segments: int = 500) -> Path:
    """Fig. 2: mean sampling frequency of consecutive segments of examples, per stage; the
    x axis is ordered by the last stage's ranking."""
    n = schedule.num_examples
    segments = min(segments, n)
    segment = np.arange(n) * segments // n
    size = np.bincount(segment, minlength=segments)
    hists = [np.bincount(segment, weights=f, minlength=segments) / size
             for f in stage_frequencies(schedule, stage_epochs)]
    order = np.argsort(-hists[-1], kind="stable")
    fig, axes = plt.subplots(len(hists), 1, figsize=(8, 1.9 * len(hists)), sharex=True,
                             squeeze=False)
    bounds = [0, *stage_epochs]
    for k, (ax, h) in enumerate(zip(axes[:, 0], hists, strict=True)):
        ax.bar(np.arange(segments), h[order], width=1.0)
        ax.axhline(1.0, color="k", lw=0.6, ls="--")
        ax.set_ylabel("draws/epoch")
        lo, hi = bounds[k] + 1, bounds[k + 1]
        ax.set_title(f"epochs {lo}-{hi}" if hi > lo else f"epoch {hi}", fontsize=9)
    axes[-1, 0].set_xlabel(f"{segments} segments of consecutive examples "
                           "(ordered by the last stage)")
    fig.tight_layout()
    return save_figure(fig, path)


def frequency_vs_loss(schedule: RecordedSchedule, losses: Mapping[int, np.ndarray],
                      path: str | Path, examples: int = 500, seed: int = 0) -> dict[int, float]:
    """Fig. 4: loss and sampling frequency of a random subset of examples at each stage.

    Returns the Spearman correlation between frequency and loss over *all* examples, per
    stage epoch (the paper reports the two are not obviously correlated).
    """
    stage_epochs = sorted(losses)
    freqs = stage_frequencies(schedule, stage_epochs)
    n = schedule.num_examples
    subset = np.sort(np.random.default_rng(seed).choice(n, size=min(examples, n),
                                                        replace=False))
    fig, axes = plt.subplots(len(stage_epochs), 1, figsize=(9, 2.2 * len(stage_epochs)),
                             squeeze=False)
    rho = {}
    for ax, e, f in zip(axes[:, 0], stage_epochs, freqs, strict=True):
        loss = np.asarray(losses[e], np.float64)
        rho[e] = float(spearmanr(f, loss).statistic)
        x = np.arange(len(subset))
        ax.plot(x, loss[subset], color="tab:red", lw=0.7)
        ax.set_ylabel("loss", color="tab:red")
        twin = ax.twinx()
        twin.plot(x, f[subset], color="tab:blue", lw=0.7)
        twin.set_ylabel("draws/epoch", color="tab:blue")
        ax.set_title(f"epoch {e}: Spearman rho = {rho[e]:.2f} (all {n} examples)", fontsize=9)
    axes[-1, 0].set_xlabel(f"{len(subset)} random training examples")
    fig.tight_layout()
    save_figure(fig, path)
    return rho


def convergence(curves: Mapping[str, Sequence[dict]], path: str | Path,
                key: str = "test_acc") -> Path:
    """Fig. 5: ``key`` per epoch, one line per named search (e.g. uniform vs mixture)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, records in curves.items():
        ax.plot([r["epoch"] + 1 for r in records], [r[key] for r in records], label=label)
    ax.set(xlabel="epoch", ylabel=key.replace("_", " "))
    ax.legend()
    return save_figure(fig, path)


def search_figures(out: Path, schedule: RecordedSchedule, losses: Mapping[int, np.ndarray],
                   curves: Mapping[str, Sequence[dict]]) -> dict[int, float]:
    """``histograms.png``, ``frequency_vs_loss.png`` and ``convergence.png`` in ``out``;
    returns :func:`frequency_vs_loss`'s correlations."""
    count_histograms(schedule, sorted(losses), out / "histograms.png")
    convergence(curves, out / "convergence.png")
    return frequency_vs_loss(schedule, losses, out / "frequency_vs_loss.png")
