"""Figures of swift-sampler.txt: Fig. 1 (noise density and learned probability over the
(loss, renormed entropy) plane), Fig. 2b (mean probability against loss percentile) and
Fig. 3 (best score so far against trial, per agent and transform). PNG, Agg backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from sampletune.plots import plt, save_figure


def plane_figure(loss: Tensor, entropy: Tensor, noisy: Tensor, probs: Tensor,
                 path: str | Path, bins: int = 30, xlabel: str = "loss") -> Path:
    """Fig. 1: (a) density of noisy examples, (b) mean sampling probability (times N, so
    1 = uniform), both over the (loss, renormed entropy) plane; ``xlabel`` names the loss
    feature used (``loss`` or ``train_loss``). All inputs ``(N,)``."""
    x, y = loss.double().numpy(), entropy.double().numpy()
    edges = (np.linspace(x.min(), x.max() + 1e-9, bins + 1),
             np.linspace(y.min(), y.max() + 1e-9, bins + 1))
    noisy_np = noisy.numpy().astype(bool)
    count, _, _ = np.histogram2d(x, y, bins=edges)
    noisy_count, _, _ = np.histogram2d(x[noisy_np], y[noisy_np], bins=edges)
    mass, _, _ = np.histogram2d(x, y, bins=edges, weights=probs.double().numpy() * len(x))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.where(count > 0, mass / count, np.nan)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    extent = (edges[0][0], edges[0][-1], edges[1][0], edges[1][-1])
    panels = ((noisy_count / max(noisy_np.sum(), 1), "(a) density of noisy examples", "magma"),
              (mean_prob, "(b) sampling probability x N", "viridis"))
    for ax, (grid, title, cmap) in zip(axes, panels, strict=True):
        im = ax.imshow(grid.T, origin="lower", aspect="auto", extent=extent, cmap=cmap)
        ax.set(xlabel=f"{xlabel} (CE)", ylabel="renormed entropy $E^r$ (eq. 11)", title=title)
        fig.colorbar(im, ax=ax)
    return save_figure(fig, path)


def loss_percentile_figure(loss: Tensor, probs: Tensor, path: str | Path,
                           bins: int = 20, xlabel: str = "loss") -> Path:
    """Fig. 2b: mean sampling probability (times N) of the examples in each loss-percentile
    bin; ``xlabel`` names the loss feature. ``loss``, ``probs`` ``(N,)``."""
    order = np.argsort(loss.double().numpy(), kind="stable")
    p = probs.double().numpy()[order] * len(order)
    chunks = np.array_split(p, bins)
    centres = [(i + 0.5) * 100 / bins for i in range(bins)]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(centres, [c.mean() for c in chunks], width=100 / bins * 0.9)
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1, label="uniform")
    ax.set(xlabel=f"{xlabel} percentile (w_share)", ylabel="mean probability x N")
    ax.legend()
    return save_figure(fig, path)


def best_so_far(scores: Sequence[float | None]) -> list[float]:
    """Running maximum of trial scores; failed trials (``None``) keep the previous best
    (NaN before the first success)."""
    best, out = float("nan"), []
    for s in scores:
        if s is not None and not (best >= s):
            best = s
        out.append(best)
    return out


def search_curves_figure(runs: Mapping[str, Sequence[Sequence[float | None]]],
                         path: str | Path) -> Path:
    """Fig. 3: best validation score so far against trial. ``runs`` maps a label such as
    ``"bo-cgf"`` to one score list per seed; the line is the mean over seeds."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, seeds in runs.items():
        curves = np.array([best_so_far(s) for s in seeds], dtype=float)
        ax.plot(np.arange(1, curves.shape[1] + 1), np.nanmean(curves, axis=0), label=label)
    ax.set(xlabel="trial", ylabel="best validation accuracy so far")
    ax.legend()
    return save_figure(fig, path)
