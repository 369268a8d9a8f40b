"""Plots shared by every command (matplotlib, Agg backend, PNG files written atomically)."""

from __future__ import annotations

import io as _bytes_io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sampletune import io  # noqa: E402


def save_figure(fig, path: str | Path) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    buf = _bytes_io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    io.write_bytes(path, buf.getvalue())
    return Path(path)


def learning_curves(histories: Mapping[str, Sequence[dict]], path: str | Path,
                    title: str = "") -> Path:
    """Train loss and validation/test accuracy per epoch, one line per named run."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, history in histories.items():
        epochs = [r["epoch"] + 1 for r in history]
        ax_loss.plot(epochs, [r["train_loss"] for r in history], label=name)
        for key, style in (("val_acc", "-"), ("test_acc", "--")):
            pts = [(r["epoch"] + 1, r[key]) for r in history if key in r]
            if pts:
                ax_acc.plot(*zip(*pts, strict=True), style, label=f"{name} {key[:-4]}")
    ax_loss.set(xlabel="epoch", ylabel="train loss (CE)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy")
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)
